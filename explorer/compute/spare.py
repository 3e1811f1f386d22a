"""Spare training processes: Python, TensorFlow and the training code already loaded,
waiting for the next job; and `SparePool`, the job manager's side of them.

Starting a job's process costs about 6 s on a 2-core CPU before it reads a single image
(Python, then TensorFlow's import). The app's job manager keeps a spare ready per running
slot (see `jobs.JobManager`): a job that starts takes a spare, whose first curve point then comes
that much sooner, and a new spare warms up behind it. A spare serves one job and exits, so a
job still gets a process of its own (its own TensorFlow settings, its own Stop).

    python -m explorer.compute.spare ROOT [--prepare CONFIG]   (ROOT: the manager's run folder, named
                                                        so `pgrep` finds it)

With `--prepare`, a TrainConfig's JSON file (the page's default job), the spare also builds,
compiles and traces that job's model after its imports (`training.prepare`, 15 s on 2 cores)
while no job trains: that job, handed to it, trains its first step in about a second instead
of 12. A request stops the preparation between its stages; a job that starts elsewhere defers
it. The manager gives the flag to one spare at a time; each spare says its state in the
manager's folder (spare-PID.state: warm, preparing, ready) and the manager hands each job to
the best one (`SparePool.take`).

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

BUSY_MARKER = "jobs-running"  # in the manager's folder while a job runs (`SparePool.mark_busy`)


def warm_up() -> None:
    """Imports what every training job imports before its first step (the costly part of a
    new process)."""
    from explorer.core import runtime

    runtime.quiet_tensorflow()  # before TensorFlow's import, as `cli.main` does for `train`
    runtime.fast_training()
    from explorer.train import training

    if training.tensorflow_backend():
        import tensorflow  # noqa: F401 - imported for its side effect: a loaded TensorFlow


def state_path(root: Path, pid: int) -> Path:
    """Where the spare `pid` says its state (see `say`)."""
    return root / f"spare-{pid}.state"


def say(root: Path, state: str) -> None:
    """Tells the manager this spare's state ("warm", "preparing", "ready"; "starting" until
    the first), in `root`/spare-PID.state."""
    path = state_path(root, os.getpid())
    try:
        path.with_suffix(".tmp").write_text(state)
        path.with_suffix(".tmp").replace(path)
    except OSError:  # the manager's folder is gone: the manager then takes spares by age
        pass


def prepare_job(root: Path, path: str, stream=None) -> bool:
    """Prepares the job whose config is in `path` (see `training.prepare`) while no job
    trains (`BUSY_MARKER`), until a request arrives on `stream` (stdin); a job that starts
    meanwhile defers it until the jobs are done. Returns whether the job is ready. A failure
    leaves a spare that serves any job as before."""
    import select

    from explorer.train.config import TrainConfig
    from explorer.train.training import prepare

    stream = stream or sys.stdin
    busy = root / BUSY_MARKER

    def requested(wait: float = 0.0) -> bool:
        return bool(select.select([stream], [], [], wait)[0])

    config = TrainConfig.from_dict(json.loads(Path(path).read_text()))
    while not requested():
        if busy.exists():  # a job trains: preparing now (15 s of both cores) would slow it
            requested(0.5)
            continue
        say(root, "preparing")
        try:
            if prepare(config, lambda: requested() or busy.exists()):
                say(root, "ready")
                return True
        except Exception as err:  # noqa: BLE001 - a spare that prepared nothing still serves
            print(f"preparing {path} failed: {err!r}", file=sys.stderr)
            break
        say(root, "warm")
    say(root, "warm")
    return False


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
    import runpy  # the job runs as `python -m explorer ARGV` would: the command line sits above this layer

    sys.argv = ["explorer", *request["argv"]]
    try:
        runpy.run_module("explorer", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


# ----------------------------------------------------------------------------- the manager's side


def child_environment() -> dict:
    """The environment of a job's process (and of a spare): the app's, but a job trains on the
    app's machine, so a TF_CONFIG the app was started with must not make it a worker of a
    cluster run (those are the CLI's). (The app's oneDNN setting passes on with its mark, and
    the job's `kernels.fast_training` turns them back on.)"""
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
        prepare: the TrainConfig of the job one spare prepares ahead (the page's default),
            or None.
    """

    def __init__(self, root: Path, wanted: int, cwd: Path, prepare=None):
        self.root, self.wanted, self.cwd = root, wanted, cwd
        self.processes: list[subprocess.Popen] = []
        self.prepared_job = None  # the job one spare prepares (`--prepare`), and that spare
        self.preparing: subprocess.Popen | None = None
        if prepare is not None and wanted:
            self.prepared_job = prepare
            root.mkdir(parents=True, exist_ok=True)
            (root / "prepared-job.json").write_text(json.dumps(prepare.to_dict()))

    def missing(self) -> bool:
        """Whether fewer than `wanted` spares are alive (dead ones are dropped)."""
        for process in self.processes:
            if process.poll() is not None:
                state_path(self.root, process.pid).unlink(missing_ok=True)
        self.processes = [process for process in self.processes if process.poll() is None]
        return len(self.processes) < self.wanted

    def refill(self) -> None:
        """Starts spares until `wanted` are alive (fewer where a process cannot start); one of
        them prepares `prepared_job` where no live spare does."""
        while self.missing():
            command = [sys.executable, "-m", "explorer.compute.spare", str(self.root)]
            prepares = self.prepared_job is not None and self.preparing not in self.processes
            if prepares:
                command += ["--prepare", str(self.root / "prepared-job.json")]
            try:
                process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    cwd=self.cwd, env=child_environment(), preexec_fn=die_with_parent)  # noqa: PLW1509 - one C call
            except (OSError, subprocess.SubprocessError):
                return  # jobs start processes of their own instead
            self.processes.append(process)
            if prepares:
                self.preparing = process

    def mark_busy(self, busy: bool) -> None:
        """Says to the spares whether a job is running: none starts preparing meanwhile."""
        if self.prepared_job is None:
            return
        marker = self.root / BUSY_MARKER
        if busy and not marker.exists():
            marker.touch()
        elif not busy:
            marker.unlink(missing_ok=True)

    def state(self, process) -> str:
        """What a spare said of itself last (see `say`): "starting" until it is warm."""
        path = state_path(self.root, process.pid)
        try:
            return path.read_text()
        except OSError:
            return "starting"

    def take(self, argv: list[str], log: Path, config=None):
        """Hands a job's command (`python -m explorer <argv>`, output to `log`) to the best
        spare: for the prepared job (`config` is `prepared_job`, bar bookkeeping) the one that
        holds it ready; else a warm idle one, oldest first, before the ready one, before one
        still preparing (it stops at its next stage), before one still importing. Returns its
        process, or None where no spare is alive."""
        default = config is not None and self.prepared_job is not None and \
            config.run_fields() == self.prepared_job.run_fields()
        ranks = {"ready": 0, "warm": 1} if default else {"warm": 0, "ready": 1}
        ranks.update(preparing=2, starting=3)
        for process in sorted(self.processes, key=lambda process: ranks.get(self.state(process), 3)):
            self.processes.remove(process)
            state_path(self.root, process.pid).unlink(missing_ok=True)
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
            state_path(self.root, process.pid).unlink(missing_ok=True)
        self.processes = []


if __name__ == "__main__":
    warm_up()
    say(Path(sys.argv[1]), "warm")
    if sys.argv[2:3] == ["--prepare"]:
        prepare_job(Path(sys.argv[1]), sys.argv[3])
    sys.exit(serve())
