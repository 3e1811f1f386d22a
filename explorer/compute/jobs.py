"""Background training jobs: start, status, stop; bounded, thread-safe, per session.

Each job is a subprocess running `python -m explorer train ... --out RUNS/<job id>`, not a
thread, for three reasons: a crash or out-of-memory kill in TensorFlow cannot take the app
down with it; Stop is immediate and certain (a thread cannot be killed mid-step, a process
can, and the checkpoint it leaves is always whole because it is written atomically); and
TensorFlow's process-wide settings (mixed precision policy, device placement) stay per job.

The job's folder holds job.json (who started it, its config, its final state), and the
files the training writes (status.json, history.json, model.keras, ...), so a restarted app
lists earlier runs. Jobs survive browser disconnects: nothing here depends on a page.

Where asked (`spares`, as the app does), a job's process is not started for it: the manager
keeps spare processes with Python and TensorFlow already loaded (`explorer.spare`), hands one
the job's command, and warms a new spare behind it. That saves the ~6 s a new process takes
before it reads an image.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from explorer.compute.spare import SparePool, child_environment, die_with_parent
from explorer.train.config import TrainConfig

# A new spare process waits until the jobs running have passed their first compiled call, or
# this long after their start: on 2 cores its import (~6 s of CPU) made their first curve
# point come 5-7 s later (bench/first_point.py).
SPARE_WAIT_SECONDS = 60.0


@dataclass
class Job:
    id: str
    owner: str  # the session that started it; only that session may stop it
    config: TrainConfig
    out: Path
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    error: str = ""
    label: str = ""  # e.g. "ResNet-20 v1" or "Plain-20 v1", for charts
    group: str = ""  # race mode: both twins share a group id
    process: subprocess.Popen | None = None
    stop_requested: bool = False

    def record(self) -> dict:
        return {"id": self.id, "owner": self.owner, "config": self.config.to_dict(),
                "state": self.state, "created": self.created, "started": self.started,
                "ended": self.ended, "error": self.error, "label": self.label, "group": self.group}


def time_limit(job_seconds: float, manager_seconds: float) -> float:
    """The tighter of a job's own time limit and the manager's cap; 0 on either side means
    none there (so a manager without a cap keeps the job's own limit)."""
    limits = [seconds for seconds in (job_seconds, manager_seconds) if seconds > 0]
    return min(limits) if limits else 0


class JobManager:
    """Runs at most `max_running` jobs at once; the rest wait in order.

    Args:
        root: folder holding one sub-folder per job.
        max_running: jobs training at the same time (others are queued).
        max_epochs: per-job epoch cap (shared hosts).
        max_seconds: per-job wall-time cap; the job stops and keeps its last checkpoint.
        max_queued: queued jobs beyond this are refused with a clear "busy" message.
        max_per_owner: queued plus running jobs of one session.
        max_kept: ended jobs kept on disk.
        spares: processes kept warm for the next jobs (see `explorer.spare`); at most
            `max_running` (a race starts two jobs at once), none where no job can run. The
            app asks for them (`ui.session`); 0 by default, so a manager made for a moment
            (a test, a script) leaves no idle processes behind.
        prepare: the TrainConfig of the job one spare builds and traces ahead (the page's
            default job: its first curve point then comes about 10 s sooner), or None.
    """

    def __init__(self, root, max_running=1, max_epochs=50, max_seconds=3600.0, max_queued=8,
                 max_per_owner=4, max_kept=200, spares=0, prepare=None):
        self.root = Path(root).resolve()  # children run in the repo root: no relative paths
        self.max_running = max_running
        # queued plus running jobs of one session: one user cannot hold every slot for hours
        self.max_per_owner = max_per_owner
        # ended jobs kept on disk (model, backup, TensorBoard files): older ones are removed as
        # new ones start, so the run folder does not grow without bound
        self.max_kept = max_kept
        self.max_epochs = max_epochs
        self.max_seconds = max_seconds
        self.max_queued = max_queued
        self._jobs: dict[str, Job] = {}
        # warm processes the next jobs take, started by the pump thread (see `spare.die_with_parent`)
        self._spares = SparePool(self.root, max(0, min(spares, max_running)),
                                 Path(__file__).resolve().parents[2], prepare)
        self._lock = threading.RLock()
        self._closed = threading.Event()  # set by shutdown: the pump starts nothing more
        self._load_previous()
        self._pump_thread = threading.Thread(target=self._pump_forever, daemon=True)
        self._pump_thread.start()

    # ------------------------------------------------------------------ public

    def start(self, config: TrainConfig, owner: str, label: str = "", group: str = "") -> str:
        """Queues a training job; returns its id.

        Raises:
            ValueError: the config is invalid or over this host's caps, the owner has
                `max_per_owner` jobs queued or running, the queue is full, or the run folder
                cannot be created.

        Ended jobs beyond the newest `max_kept` are removed (records and folders).
        """
        return self.start_group([config], owner, group, [label])[0]

    def start_group(self, configs: list[TrainConfig], owner: str, group: str = "",
                    labels: list[str] | None = None) -> list[str]:
        """Queues several jobs (a race: a plain net and its residual twin) all or none, so a
        full queue never leaves one of them running without the other."""
        labels = labels or [""] * len(configs)
        for config in configs:
            config.validate()
            if config.epochs > self.max_epochs:
                raise ValueError(f"at most {self.max_epochs} epochs per job on this host "
                                 f"(asked for {config.epochs})")
        with self._lock:
            active = sum(j.owner == owner and j.state in ("queued", "running") for j in self._jobs.values())
            if active + len(configs) > self.max_per_owner:
                raise ValueError(f"you have {active} jobs queued or running (at most {self.max_per_owner} "
                                 "at a time here); stop one or wait for it to end")
            queued = sum(j.state == "queued" for j in self._jobs.values())
            if queued + len(configs) > self.max_queued:
                raise ValueError(f"busy: {queued} jobs are already waiting; try again later")
            jobs = []
            for config, label in zip(configs, labels):
                job_id = uuid.uuid4().hex[:12]
                out = self.root / job_id
                try:
                    out.mkdir(parents=True)
                except OSError as err:
                    for made in jobs:
                        shutil.rmtree(made.out, ignore_errors=True)
                    raise ValueError(f"cannot create the run folder {out}: {err.strerror or err}") from None
                jobs.append(Job(job_id, owner, config, out, label=label or config.spec().name, group=group))
            for job in jobs:
                self._jobs[job.id] = job
                self._save(job)
            ended = sorted((j for j in self._jobs.values() if j.state not in ("queued", "running")),
                           key=lambda j: j.created, reverse=True)
            pruned = ended[self.max_kept:]
            for job in pruned:
                del self._jobs[job.id]
        for job in pruned:  # outside the lock: removing files takes a while
            shutil.rmtree(job.out, ignore_errors=True)
        return [job.id for job in jobs]

    def status(self, job_id: str) -> dict:
        """A job's state, progress (epoch, step, ETA), queue position, device, history and error.

        Raises:
            ValueError: no job has this id.
        """
        job = self._get(job_id)
        live = _read_json(job.out / "status.json") or {}  # file reads stay outside the lock
        history = _read_json(job.out / "history.json") or {"epochs": [], "grad_norms": {}}
        with self._lock:  # the pump thread reaps finished jobs every 0.25 s; no need here
            position = None
            if job.state == "queued":
                waiting = sorted((j for j in self._jobs.values() if j.state == "queued"),
                                 key=lambda j: j.created)
                position = [j.id for j in waiting].index(job.id) + 1
            return {
                "id": job.id, "state": job.state, "label": job.label, "group": job.group,
                "residual": job.config.residual,
                "epoch": live.get("epoch", len(history.get("epochs", []))),
                "epochs": job.config.epochs, "step": live.get("step", 0),
                "current_epoch": live.get("current_epoch"), "phase": live.get("phase"),
                "steps_per_epoch": live.get("steps_per_epoch"), "eta_seconds": live.get("eta_seconds"),
                "queue_position": position, "device": live.get("device", ""),
                "data": live.get("data", job.config.data), "history": history, "error": job.error,
                "has_checkpoint": (job.out / "model.keras").exists(),
            }

    def stop(self, job_id: str, owner: str) -> dict:
        """Stops a queued or running job of `owner` (SIGTERM, then SIGKILL after 10 s); its last
        finished epoch stays on disk. Returns the job's status.

        Raises:
            ValueError: no job has this id, or it belongs to another owner.
        """
        job = self._get(job_id)
        with self._lock:
            if job.owner != owner:
                raise ValueError("this job belongs to another session and cannot be stopped from here")
            job.stop_requested = True
            process = job.process
            if job.state == "queued":
                self._finish(job, "stopped")
            elif job.state == "running" and process is not None:
                process.send_signal(signal.SIGTERM)  # the checkpoint on disk is always whole
        deadline = time.time() + 10
        while job.state == "running" and time.time() < deadline:
            time.sleep(0.1)  # the pump thread marks it stopped once the process has exited
        if process is not None and process.poll() is None:
            process.kill()
        return self.status(job_id)

    def list(self, owner: str | None = None) -> list[dict]:
        """Jobs newest first (id, label, state, group, epochs, created), of `owner` when given."""
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)
            return [{"id": j.id, "label": j.label, "state": j.state, "group": j.group,
                     "epochs": j.config.epochs, "created": j.created}
                    for j in jobs if owner is None or j.owner == owner]

    def checkpoint(self, job_id: str, owner: str | None = None) -> Path:
        """The model file of a job, looked up by id (never a path from a request).

        Args:
            owner: when given, the job must belong to this session.
        """
        job = self._get(job_id)
        if owner is not None and job.owner != owner:
            raise ValueError(f"job {job_id} belongs to another session")
        path = job.out / "model.keras"
        if not path.exists():
            raise ValueError(f"job {job_id} has no finished epoch yet")
        return path

    def shutdown(self):
        """Kills every running job and spare, and stops the pump, which would otherwise warm new
        spares behind them (tests; the app relies on PR_SET_PDEATHSIG instead)."""
        self._closed.set()
        with self._lock:
            for job in self._jobs.values():
                if job.process is not None and job.process.poll() is None:
                    job.process.kill()
            self._spares.shutdown()

    # ------------------------------------------------------------------ internals

    def _get(self, job_id) -> Job:
        job = self._jobs.get(str(job_id).strip()) if isinstance(job_id, str) else None
        if job is None:
            raise ValueError(f"unknown job id {str(job_id)[:40]!r}")
        return job

    def _save(self, job: Job):
        try:
            tmp = job.out / "job.json.tmp"
            tmp.write_text(json.dumps(job.record()))
            os.replace(tmp, job.out / "job.json")
        except OSError:
            pass  # a full disk must not break status reporting

    def _load_previous(self):
        if not self.root.exists():
            return
        for path in self.root.glob("*/job.json"):
            record = _read_json(path)
            if not record:
                continue
            try:
                config = TrainConfig.from_dict(record["config"])
                state, job_id, owner, created = (record["state"], record["id"], record["owner"],
                                                 record["created"])
            except (ValueError, TypeError, KeyError):
                continue  # a damaged record must not keep the app from starting
            if state in ("queued", "running"):  # the app died under it
                state, record["error"] = "stopped", "the app restarted while this job ran"
            job = Job(job_id, owner, config, path.parent, state=state,
                      created=created, started=record.get("started"),
                      ended=record.get("ended"), error=record.get("error", ""),
                      label=record.get("label", ""), group=record.get("group", ""))
            self._jobs[job.id] = job

    def _pump_forever(self):
        """The only thread that starts jobs: it lives as long as the app, and each job is
        tied to it (see `spare.die_with_parent`), so a killed app leaves no orphan training."""
        while not self._closed.is_set():
            try:
                with self._lock:
                    if not self._closed.is_set():
                        self._pump()
            except Exception:  # noqa: BLE001 - this thread must outlive any one bad job
                traceback.print_exc()
            self._closed.wait(0.25)

    def _pump(self):
        """Reaps finished processes and starts queued jobs; runs on the pump thread only,
        with the lock held."""
        for job in self._jobs.values():
            if job.state != "running" or job.process is None:
                continue
            code = job.process.poll()
            if code is None:
                if self.max_seconds and time.time() - job.started > self.max_seconds + 600:
                    # the job's own cap (checked at epoch ends) should have stopped it by now
                    job.process.kill()
                    self._finish(job, "stopped", "time cap exceeded; the last finished epoch is kept")
                continue
            if job.stop_requested:
                self._finish(job, "stopped")
            elif code == 0:
                live = _read_json(job.out / "status.json") or {}
                self._finish(job, "done" if live.get("state") == "done" else "stopped",
                             "" if live.get("state") == "done" else "time cap reached")
            else:
                self._finish(job, "failed", _failure_reason(job.out / "train.log", code))
        running = sum(j.state == "running" for j in self._jobs.values())
        for job in sorted(self._jobs.values(), key=lambda j: j.created):
            if running >= self.max_running:
                break
            if job.state == "queued":
                self._launch(job)
                running += 1
        self._spares.mark_busy(running > 0)
        if self._spares.missing() and not self._jobs_starting():  # else its import would slow them
            self._spares.refill()

    def _jobs_starting(self) -> bool:
        """Whether a running job has yet to finish its first compiled call (loading data,
        building, tracing), for at most `SPARE_WAIT_SECONDS` after its start."""
        for job in self._jobs.values():
            if job.state == "running" and job.started and time.time() - job.started < SPARE_WAIT_SECONDS:
                phase = (_read_json(job.out / "status.json") or {}).get("phase")
                if phase not in ("training", "testing"):
                    return True
        return False

    def _launch(self, job: Job):
        """Writes the job's exact config beside it and runs `train --config` on it."""
        config = dataclasses.replace(job.config, max_seconds=time_limit(job.config.max_seconds,
                                                                        self.max_seconds))
        args = ["train", "--config", str(job.out / "config.json"), "--out", str(job.out)]
        try:
            (job.out / "config.json").write_text(json.dumps(config.to_dict()))
            job.process = self._spares.take(args, job.out / "train.log", config)
            if job.process is None:
                with open(job.out / "train.log", "ab") as log:  # the child keeps its own copy
                    job.process = subprocess.Popen(
                        [sys.executable, "-m", "explorer", *args], stdout=log, stderr=subprocess.STDOUT,
                        cwd=self._spares.cwd, env=child_environment(),
                        preexec_fn=die_with_parent)  # noqa: PLW1509 - one C call, no locks
        except (OSError, subprocess.SubprocessError) as err:
            self._finish(job, "failed", f"could not start training: {err}")
            return
        job.state, job.started = "running", time.time()
        self._save(job)

    def _finish(self, job: Job, state: str, error: str = ""):
        job.state, job.ended, job.error = state, time.time(), error
        job.process = None
        self._save(job)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _failure_reason(log_path: Path, code: int) -> str:
    """The most telling line of a failed run's log."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("error:") or "Error" in line.split(":")[0]:
            return line[:500]
    if code < 0:
        return f"killed by signal {-code}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return lines[-1][:500] if lines else f"exit status {code}"
