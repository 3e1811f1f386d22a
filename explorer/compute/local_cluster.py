"""The app's own workers: `dask worker` processes started beside the app, dying with it.

The same command (`worker_command`) adds a machine to a cluster: a worker that trains says so
with the Dask resource `JOB=1`, a GPU machine with `GPU=1` too.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

WORKERS = "EXPLORER_WORKERS"  # how many local workers (default: one per core, at most 4)
TRAINERS = "EXPLORER_MAX_JOBS"  # how many local workers train jobs, beside those (default 2: a race)
TRAINING_SLOT = "JOB"  # the worker resource a training job asks for: one job at a time a worker
MAX_LOCAL_WORKERS = 4  # each holds TensorFlow and its models (0.5-2 GB)
WORKER_PRELOAD = "explorer.compute.worker"  # sets TensorFlow up in a worker before its first task
ROOT = Path(__file__).resolve().parents[2]  # the repository: local workers run here


class EngineError(RuntimeError):
    """The engine could not answer: a worker died during the task, or no cluster answers."""


def worker_command(address: str, gpu: bool = False, trains: bool = True) -> list[str]:
    """The command that adds a worker to the cluster at `address` (run in a checkout of this
    repository, with its requirements installed).

    Args:
        address: the scheduler's address, "tcp://host:8786".
        gpu: advertise the machine's GPU, so training jobs ask for it.
        trains: advertise a training slot (`JOB=1`): the worker takes training jobs, one at a
            time (a worker without it answers studies only).

    Returns:
        The argument list: `dask worker ADDRESS --nthreads 1 --preload explorer.compute.worker`,
        with `--resources "JOB=1"` (and `GPU=1` on a GPU machine).
    """
    command = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
               "--preload", WORKER_PRELOAD, "--no-dashboard"]
    resources = ([f"{TRAINING_SLOT}=1"] if trains else []) + (["GPU=1"] if gpu else [])
    return command + (["--resources", " ".join(resources)] if resources else [])


def local_workers(requested: str | None = None) -> int:
    """How many workers the app's own cluster starts: `EXPLORER_WORKERS`, or one per core, at
    most `MAX_LOCAL_WORKERS`.

    Raises:
        ValueError: the setting is not a whole number from 1 to `MAX_LOCAL_WORKERS`.
    """
    if requested is None:
        requested = os.environ.get(WORKERS)
    if requested in (None, ""):
        return max(1, min(os.cpu_count() or 1, MAX_LOCAL_WORKERS))
    try:
        count = int(requested)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_LOCAL_WORKERS:
        raise ValueError(f"{WORKERS} must be a whole number from 1 to {MAX_LOCAL_WORKERS}; got {requested!r}")
    return count


class Spawner:
    """Starts local workers from one thread that lives as long as the app: Linux sends a child
    its parent-death signal when the *thread* that started it ends (`die_with_parent`), and a
    first call may come from a request's thread."""

    def __init__(self, address: str, scratch: str):
        self.address, self.scratch = address, scratch
        self._requests: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, name="engine-workers", daemon=True).start()

    def start(self, count: int, trains: bool = False) -> list[subprocess.Popen]:
        answer: queue.Queue = queue.Queue()
        self._requests.put((count, trains, answer))
        processes = answer.get()
        if isinstance(processes, Exception):
            raise EngineError(f"cannot start the engine's workers: {processes}")
        return processes

    def _serve(self):
        while True:
            count, trains, answer = self._requests.get()
            try:
                answer.put([self._start_worker(trains) for _ in range(count)])
            except Exception as err:  # noqa: BLE001 - handed to the caller, raised there
                answer.put(err)

    def _start_worker(self, trains: bool) -> subprocess.Popen:
        """A local worker process: `worker_command`, dying with the app (a killed app leaves
        no worker behind), its output in the app's."""
        command = [*worker_command(self.address, trains=trains), "--local-directory", self.scratch]
        return subprocess.Popen(command, cwd=ROOT, env=worker_environment(), stdin=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)  # noqa: PLW1509 - one C call


def worker_environment() -> dict:
    """The environment of a local worker: the app's, but a TF_CONFIG the app was started with
    must not make it a worker of a cluster run (those are the CLI's). The app's oneDNN setting
    passes on with its mark, and the worker's preload (`explorer.compute.worker`) turns the
    kernels back on."""
    environment = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    return {**environment, "PYTHONUNBUFFERED": "1", "DASK_LOGGING__DISTRIBUTED": "warning"}


def local_trainers(requested: str | None = None) -> int:
    """How many training workers the app's own cluster starts: `EXPLORER_MAX_JOBS` (default 2,
    so a race's two nets train side by side), 0 for none.

    Raises:
        ValueError: the setting is not a whole number from 0 to `MAX_LOCAL_WORKERS`.
    """
    requested = os.environ.get(TRAINERS, "2") if requested is None else requested
    try:
        count = int(requested)
    except ValueError:
        count = -1
    if not 0 <= count <= MAX_LOCAL_WORKERS:
        raise ValueError(f"{TRAINERS} must be a whole number from 0 to {MAX_LOCAL_WORKERS}; "
                         f"got {requested!r}")
    return count


def _load_prctl():
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None  # not Linux: workers outlive a killed app and end when the scheduler goes


_PRCTL = _load_prctl()  # resolved here: the forked child must not import or take locks


def die_with_parent():
    """In the child, before exec: ask Linux to send SIGTERM when the launching thread dies,
    even by kill -9."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG

