"""A training job as an engine task: what runs on the worker (`run_job`, `prepare_job`).

A job trains in the worker's own process, whose Python, TensorFlow and training code are
already loaded: a job's first step comes seconds sooner than in a new process, and the page's
default job, built and traced ahead by a warm-up task on the same worker (`prepare_job`),
trains its first step at once. Only workers that say they train (`--resources JOB=1`) take
jobs, one at a time each, so the workers that answer the page's studies stay free.

Nothing depends on a shared disk: the job writes its files (status.json, history.json,
model.keras) in the worker's own folder, and a thread beside it sends each file as it
changes to the page as an event on the job's topic; the task's result carries their final
state. The page writes them into its own run folder (`jobs.JobManager`).

Stop: the page sets the job's Dask `Event`; the thread sees it within `WATCH_SECONDS` and the
training stops at its next batch (`StopAtBatch` raises: an epoch cut short is never tested or
saved; the last finished epoch's checkpoint stays). A crash or an out-of-memory kill takes the
worker, never the page; the engine then reruns the task once, and the rerun reports the
failure instead of training again (`ran` is set).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
from pathlib import Path

from explorer.train.config import TrainConfig

WATCH_SECONDS = 0.25  # how often the watching thread sends changed files and looks for Stop
FILES = ("status.json", "history.json", "model.keras")  # what the page shows, in that order
DIED = "the worker training this job died (out of memory, or killed); its last finished epoch is kept"


class JobStopped(Exception):
    """Raised inside `fit` when the page asked the job to stop."""


def stop_event_name(job_id: str) -> str:
    return f"explorer-stop-{job_id}"


def ran_event_name(job_id: str) -> str:
    return f"explorer-ran-{job_id}"


def _stop_callback(stopped: threading.Event):
    """A Keras callback that ends `fit` at the next batch once `stopped` is set (made here:
    keras is loaded by the worker, not by whoever imports this module)."""
    import keras  # deferred: the page imports this module without loading Keras

    class StopAtBatch(keras.callbacks.Callback):
        def _check(self, *args, **kwargs):
            if stopped.is_set():
                raise JobStopped()

        on_train_batch_end = on_test_batch_end = on_epoch_begin = _check

    return StopAtBatch()


class _Watcher(threading.Thread):
    """Sends the job's files to the page as they change, and watches for Stop."""

    def __init__(self, worker, topic: str, out: Path, stop_event):
        super().__init__(name="job-watcher", daemon=True)
        self.worker, self.topic, self.out, self.stop_event = worker, topic, out, stop_event
        self.stopped = threading.Event()  # Stop asked (read by `StopAtBatch`)
        self.done = threading.Event()  # the job has ended: send once more, then leave
        self._sent: dict[str, tuple] = {}

    def run(self):
        while not self.done.wait(WATCH_SECONDS):
            with contextlib.suppress(Exception):  # a scheduler briefly away must not end the watch
                if not self.stopped.is_set() and self.stop_event.is_set():
                    self.stopped.set()
            self.send_changed()

    def send_changed(self) -> None:
        for name in FILES:
            path = self.out / name
            try:
                stat = path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                if self._sent.get(name) == stamp:
                    continue
                data = path.read_bytes()
            except OSError:
                continue  # not written yet, or being replaced (the writes are atomic)
            self._sent[name] = stamp
            self.worker.log_event(self.topic, {"name": name, "data": data})


def run_job(job_id: str, config: dict, topic: str) -> dict:
    """Trains one job in this worker (see the module docstring).

    Args:
        job_id: the page's id for the job (names its Stop event and its folder here).
        config: the job's `TrainConfig` as a dict.
        topic: the events topic the page listens to for this job.

    Returns:
        {"state": "done" | "stopped" | "failed", "error": str, "files": {name: bytes}}, the
        files being `FILES` and train.log (what the training said).
    """
    from distributed import Event, get_worker  # deferred: the page imports this module lazily too

    worker = get_worker()
    stop, ran = Event(stop_event_name(job_id)), Event(ran_event_name(job_id))
    if stop.is_set():
        return {"state": "stopped", "error": "", "files": {}}
    if ran.is_set():  # a rerun: the engine's first try of this job took its worker down
        return {"state": "failed", "error": DIED, "files": {}}
    ran.set()
    out = Path(worker.local_directory) / "jobs" / job_id
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    worker.log_event(topic, {"name": "started", "data": {"machine": socket.gethostname(),
                                                         "worker": worker.address}})
    watcher = _Watcher(worker, topic, out, stop)
    watcher.start()
    lines: list[str] = []
    try:
        state, error = _train(TrainConfig.from_dict(config), out, watcher.stopped, lines.append)
    finally:
        watcher.done.set()
        watcher.join()
    files = {"train.log": "".join(f"{line}\n" for line in lines).encode()}
    for name in FILES:
        with contextlib.suppress(OSError):
            files[name] = (out / name).read_bytes()
    shutil.rmtree(out, ignore_errors=True)
    return {"state": state, "error": error, "files": files}


def _train(config: TrainConfig, out: Path, stopped: threading.Event, log) -> tuple[str, str]:
    """Trains; returns (state, error). Nothing raised here reaches the worker as a traceback."""
    from explorer.train import training  # deferred: loads TensorFlow, as only a worker does

    try:
        training.train(config, out, verbose=0, log=log, callbacks=[_stop_callback(stopped)])
    except JobStopped:
        return "stopped", ""
    except ValueError as err:  # a bad request or unreadable data: the message is the user's
        return "failed", str(err)
    except Exception as err:  # noqa: BLE001 - a failed job is reported, the worker goes on
        return "failed", f"{type(err).__name__}: {err}"[:500]
    finally:
        _reset_precision()
    try:
        live = json.loads((out / "status.json").read_text())
    except (OSError, ValueError):
        live = {}
    if live.get("state") == "done":
        return "done", ""
    return "stopped", "time cap reached; the last finished epoch is kept"


def _reset_precision() -> None:
    """Puts Keras' global policy back to float32: a job's mixed precision must not follow the
    worker's next task."""
    import keras  # deferred: loaded by then (the job trained)

    keras.mixed_precision.set_global_policy("float32")


def prepare_job(config: dict, stages: int | None = None) -> bool:
    """A warm-up's step: builds, compiles and traces the page's default job in this worker
    (`training.prepare`: its next `stages`, None: all), so that job, sent here (the engine's
    `home`), trains at once. Returns whether it is ready."""
    from explorer.train import training  # deferred: loads TensorFlow, as only a worker does

    try:
        return training.prepare(TrainConfig.from_dict(config), stages)
    finally:
        _reset_precision()
