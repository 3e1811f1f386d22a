"""Spare training processes: Python, TensorFlow and the training code already loaded,
waiting for the next job; and `SparePool`, the job manager's side of them.

Starting a job's process costs about 6 s on a 2-core CPU before it reads a single image
(Python, then TensorFlow's import). The app's job manager keeps a spare ready per running
slot (see `jobs.JobManager`): a job that starts takes a spare, whose first curve point then comes
that much sooner, and a new spare warms up behind it. A spare serves one job and exits, so a
job still gets a process of its own (its own TensorFlow settings, its own Stop).

    python -m explorer.spare ROOT   (ROOT: the manager's run folder, named so `pgrep` finds it)

It reads one line of JSON from stdin, {"argv": [...], "log": PATH}: it sends its output to
PATH and runs `python -m explorer <argv>` in-process, exiting with its status. Spares serve
`train` commands only (the manager's jobs): TensorFlow is loaded as `train` loads it. An empty
stdin (the manager is gone, or did not need it) ends it with status 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def warm_up() -> None:
    """Imports what every training job imports before its first step (the costly part of a
    new process)."""
    from . import cli

    cli._quiet_tensorflow()  # before TensorFlow's import, as `main` does for `train`
    cli.fast_training()
    from . import training

    if training.tensorflow_backend():
        import tensorflow  # noqa: F401 - imported for its side effect: a loaded TensorFlow


def serve(stream=None) -> int:
    """Waits for one job on `stream` (stdin) and runs it; returns its exit status."""
    line = (stream or sys.stdin).readline()
    if not line.strip():
        return 0
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)  # the job writes its log as a process of its own would
    os.dup2(log, 2)
    os.close(log)
    from .cli import main

    return main(request["argv"])


# ----------------------------------------------------------------------------- the manager's side


def child_environment() -> dict:
    """The environment of a job's process (and of a spare): the app's, but a job trains on the
    app's machine, so a TF_CONFIG the app was started with must not make it a worker of a
    cluster run (those are the CLI's)."""
    return {**{k: v for k, v in os.environ.items() if k != "TF_CONFIG"}, "PYTHONUNBUFFERED": "1"}


def _load_prctl():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux: jobs outlive a killed app and finish on their own


_PRCTL = _load_prctl()  # resolved here: the forked child must not import or take locks


def die_with_parent():
    """In the child, before exec: ask Linux to send SIGTERM when the launching thread (the
    job manager's pump thread) dies, even by kill -9. Its checkpoints on disk stay whole."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


class SparePool:
    """The warm processes a job manager keeps; only its pump thread calls `refill` and `take`
    (the spares die with the thread that started them, see `die_with_parent`).

    Args:
        root: the manager's run folder (named on the spares' command line).
        wanted: spares to keep warm (0: none; every job starts a process of its own).
        cwd: the folder jobs run in (the repository root).
    """

    def __init__(self, root: Path, wanted: int, cwd: Path):
        self.root, self.wanted, self.cwd = root, wanted, cwd
        self.processes: list[subprocess.Popen] = []

    def missing(self) -> bool:
        """Whether fewer than `wanted` spares are alive (dead ones are dropped)."""
        self.processes = [process for process in self.processes if process.poll() is None]
        return len(self.processes) < self.wanted

    def refill(self) -> None:
        """Starts spares until `wanted` are alive (fewer where a process cannot start)."""
        while self.missing():
            try:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "explorer.spare", str(self.root)], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.cwd,
                    env=child_environment(), preexec_fn=die_with_parent))  # noqa: PLW1509 - one C call
            except (OSError, subprocess.SubprocessError):
                return  # jobs start processes of their own instead

    def take(self, argv: list[str], log: Path):
        """Hands a job's command (`python -m explorer <argv>`, output to `log`) to the oldest,
        warmest spare; returns its process, or None where no spare is alive."""
        while self.processes:
            process = self.processes.pop(0)
            if process.poll() is not None:
                continue
            try:
                process.stdin.write((json.dumps({"argv": argv, "log": str(log)}) + "\n").encode())
                process.stdin.close()
            except OSError:  # it died between the poll and the write
                process.kill()
                continue
            return process
        return None

    def shutdown(self) -> None:
        """Kills the spares (tests; a killed app's spares die with it, see `die_with_parent`)."""
        for process in self.processes:
            process.kill()
            process.wait()
        self.processes = []


if __name__ == "__main__":
    warm_up()
    sys.exit(serve())
