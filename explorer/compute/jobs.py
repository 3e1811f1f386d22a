"""Background training jobs: start, status, stop; bounded, thread-safe, per session.

Each job is a task on the engine (`job_task.run_job`), run by a worker that trains (Dask
resource `JOB`; the app starts its own, and a machine that joins says `--resources JOB=1`, with
`GPU=1` where it has one: jobs then ask for a GPU worker). Dask keeps the queue: a job waits
in the scheduler until such a worker is free. The worker sends the job's files to the page as
they change (events on the job's topic) and this manager writes them into the job's folder
here, so the page shows a job on another machine exactly as one on this machine: curves,
status, heatmaps, the model to download and classify with; the app never reads a worker's disk.

The job's folder holds job.json (who started it, its config, its final state, the machine it
ran on) and the files the training wrote (status.json, history.json, model.keras), so a
restarted app lists earlier runs. Jobs survive browser disconnects: nothing here depends on
a page.

Hand-made here, and why: the per-session and queue caps (Dask has no notion of a session),
and the folder records (the page's, read by Classify and the Train tab).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import threading
import time
import uuid
from pathlib import Path

from explorer.compute import job_task
from explorer.compute.engine import TRAINING_SLOT, USER, EngineError, Step
from explorer.compute.job_records import Job, load_jobs, read_json, run_key, time_limit, write_atomic
from explorer.train.config import PREPARE_STAGES, TrainConfig

STOP_SECONDS = 2.5  # Stop waits this long for the job to end at a batch, then restarts its worker
OVERTIME_SECONDS = 600  # past its time cap by this much (an epoch that never ends): stopped
WORKERS_SECONDS = 2.0  # how often a status asks the scheduler which workers are still there


class JobManager:
    """Queues jobs on the engine and keeps their records; the engine's training workers run them.

    Args:
        root: folder holding one sub-folder per job.
        engine: the `engine.Engine` the jobs run on (None: the app's, `engine.engine()`).
        max_epochs: per-job epoch cap (shared hosts).
        max_seconds: per-job wall-time cap; the job stops and keeps its last checkpoint.
        max_queued: queued jobs beyond this are refused with a clear "busy" message.
        max_per_owner: queued plus running jobs of one session.
        max_kept: ended jobs kept on disk.
        prepare: the TrainConfig of the job a training worker builds and traces ahead, as a
            warm-up task (the page's default job: its first curve point then comes about 10 s
            sooner), or None.
    """

    def __init__(self, root, engine=None, max_epochs=50, max_seconds=3600.0, max_queued=8,
                 max_per_owner=4, max_kept=200, prepare=None):
        self.root = Path(root).resolve()
        self._engine = engine
        # queued plus running jobs of one session: one user cannot hold every slot for hours
        self.max_per_owner = max_per_owner
        # ended jobs kept on disk: older ones are removed as new ones start, so the run
        # folder does not grow without bound
        self.max_kept = max_kept
        self.max_epochs = max_epochs
        self.max_seconds = max_seconds
        self.max_queued = max_queued
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._prepared: str | None = None  # the prepared job's run key, while a worker holds it
        self._to_prepare = prepare  # prepared again once the job that took it has ended
        self._workers: tuple[float, set[str] | None] = (0.0, None)  # when asked, the addresses then
        self._jobs.update(load_jobs(self.root))
        if prepare is not None:
            self._prepare(prepare)

    @property
    def engine(self):
        if self._engine is None:
            from explorer.compute.engine import engine  # deferred: a manager made for a listing starts none

            self._engine = engine()
        return self._engine

    # ------------------------------------------------------------------ public

    def start(self, config: TrainConfig, owner: str, label: str = "", group: str = "") -> str:
        """Queues a training job; returns its id.

        Raises:
            ValueError: the config is invalid or over this host's caps, the owner has
                `max_per_owner` jobs queued or running, the queue is full, no worker can
                train, or the run folder cannot be created.

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
        for job in jobs:
            self._submit(job)
        return [job.id for job in jobs]

    def status(self, job_id: str) -> dict:
        """A job's state, progress (epoch, step, ETA), queue position, machine and device,
        history and error.

        Raises:
            ValueError: no job has this id.
        """
        job = self._get(job_id)
        if job.state == "running" and self.max_seconds and time.time() - job.started > (
                self.max_seconds + OVERTIME_SECONDS):
            self._end_running(job, "stopped", "time cap exceeded; the last finished epoch is kept")
        if job.state == "running" and job.worker and self._gone(job.worker):
            self._lost(job)
        live = read_json(job.out / "status.json") or {}  # file reads stay outside the lock
        history = read_json(job.out / "history.json") or {"epochs": [], "grad_norms": {}}
        with self._lock:
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
                "queue_position": position, "device": live.get("device", ""), "machine": job.machine,
                "data": live.get("data", job.config.data), "subset": job.config.subset,
                "history": history, "error": job.error,
                "has_checkpoint": (job.out / "model.keras").exists(),
            }

    def stop(self, job_id: str, owner: str) -> dict:
        """Stops a queued or running job of `owner` within `STOP_SECONDS` (at its next batch,
        or by restarting its worker); its last finished epoch stays. Returns its status.

        Raises:
            ValueError: no job has this id, or it belongs to another owner.
        """
        job = self._get(job_id)
        with self._lock:
            if job.owner != owner:
                raise ValueError("this job belongs to another session and cannot be stopped from here")
            if job.state not in ("queued", "running"):
                return self.status(job_id)
            job.stop_requested = True
        self._set_stop(job)
        if job.state == "queued":
            with contextlib.suppress(Exception):
                job.future.cancel()
            self._finish(job, "stopped")
            return self.status(job_id)
        deadline = time.time() + STOP_SECONDS
        while job.state == "running" and time.time() < deadline:
            time.sleep(0.05)  # the task's end is reported by `_ended`
        if job.state == "running":
            self._end_running(job, "stopped")
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

    def config(self, job_id: str, owner: str | None = None) -> TrainConfig:
        """The config a job trains (its net: `.spec()`); of this session's jobs when `owner` is given."""
        job = self._get(job_id)
        if owner is not None and job.owner != owner:
            raise ValueError(f"job {job_id} belongs to another session")
        return job.config

    def shutdown(self):
        """Stops every queued or running job (tests; the app's workers die with it)."""
        for job in list(self._jobs.values()):
            if job.state in ("queued", "running"):
                with contextlib.suppress(ValueError):
                    self.stop(job.id, job.owner)

    # ------------------------------------------------------------------ the engine's side

    def _submit(self, job: Job) -> None:
        """Hands the job to the engine: a task that only a training worker takes (a GPU one
        when one has joined), its events written into the job's folder."""
        engine = self.engine
        if not engine.can_train():
            self._finish(job, "failed", "no worker of the engine trains jobs: start one with "
                                        f"`--resources {TRAINING_SLOT}=1` (see the README)")
            return
        engine.start_trainers()
        limit = time_limit(job.config.max_seconds, self.max_seconds)
        config = dataclasses.replace(job.config, max_seconds=limit)
        resources = {TRAINING_SLOT: 1, **({"GPU": 1} if engine.has_gpu() else {})}
        home = None
        if run_key(config) == self._prepared:  # the worker that holds it ready
            home, self._prepared = ("prepared", self._prepared), None
        job.future = engine.submit(job_task.run_job, job.id, config.to_dict(), priority=USER,
                                   events=lambda message: self._event(job, message),
                                   resources=resources, home=home)
        job.future.add_done_callback(lambda future: self._ended(job, future))

    def _event(self, job: Job, message: dict) -> None:
        """An event of the job's task (on the client's event loop: quick file writes only)."""
        name, data = message.get("name"), message.get("data")
        if name == "started":
            with self._lock:
                if job.state == "queued":
                    job.state, job.started = "running", time.time()
                job.machine, job.worker = data.get("machine", ""), data.get("worker", "")
            self._save(job)
        elif name in job_task.FILES and job.state == "running":
            write_atomic(job.out / name, data)

    def _ended(self, job: Job, future) -> None:
        """The task has ended (on a thread of its own): its final files, then its state."""
        try:
            result = self.engine.result(future)
        except EngineError as err:
            result = {"state": "failed", "error": str(err), "files": {}}
        except Exception as err:  # noqa: BLE001 - cancelled (a queued job stopped), or the engine closed
            error = "" if job.stop_requested else f"{type(err).__name__}: {err}"
            result = {"state": "stopped" if job.stop_requested else "failed", "error": error, "files": {}}
        with self._lock:
            if job.state in ("queued", "running"):  # else Stop already ended it
                for name, data in result.get("files", {}).items():
                    write_atomic(job.out / name, data)
                state = "stopped" if job.stop_requested and result["state"] == "failed" else result["state"]
                self._finish(job, state, result.get("error", ""))
        if self._to_prepare is not None and self._prepared is None and run_key(job.config) == run_key(
                self._to_prepare):  # the default job was taken: the next one starts warm too
            self._prepare(self._to_prepare)

    def _set_stop(self, job: Job) -> None:
        from distributed import Event  # deferred: loaded with the engine, not with this module

        with contextlib.suppress(Exception):
            Event(job_task.stop_event_name(job.id), client=self.engine.client).set()

    def _gone(self, worker: str) -> bool:
        """Whether `worker` has left the cluster: asked at most every `WORKERS_SECONDS`, and
        again where the list asked before lacks it (a worker may have joined since)."""
        asked, addresses = self._workers
        if time.time() - asked > WORKERS_SECONDS or (addresses is not None and worker not in addresses):
            try:
                addresses = set(self.engine.workers())
            except Exception:  # noqa: BLE001 - no answer from the scheduler: no news of the worker
                addresses = None
            self._workers = (time.time(), addresses)
        return addresses is not None and worker not in addresses

    def _lost(self, job: Job) -> None:
        """The worker training `job` died: the job says so now. The engine would rerun the task
        on a worker that trains, which reports the death too, but only once one has joined (a
        restarted worker loads TensorFlow first: minutes on a busy machine; never, where its
        machine is gone)."""
        with contextlib.suppress(Exception):
            job.future.cancel()
        with self._lock:
            if job.state == "running":
                self._finish(job, "failed", job_task.DIED)

    def _end_running(self, job: Job, state: str, error: str = "") -> None:
        """Ends a job whose training did not stop at a batch: restarts its worker (the engine
        reruns the task there, which finds its Stop set and ends at once)."""
        job.stop_requested = True
        self._set_stop(job)
        if job.worker:  # the nanny kills it at once; its new process then takes a few seconds
            def restart(worker=job.worker):
                with contextlib.suppress(Exception):
                    self.engine.client.restart_workers([worker], timeout=60, raise_for_error=False)

            threading.Thread(target=restart, name="restart-worker", daemon=True).start()
        with self._lock:
            if job.state == "running":
                self._finish(job, state, error)

    def _prepare(self, config: TrainConfig) -> None:
        """A warm-up task: a training worker builds and traces `config` ahead; that job, when
        asked for, goes to that worker (the engine's `home`)."""
        key = run_key(config)

        def prepared(future):
            with contextlib.suppress(Exception):
                if future.result():
                    self._prepared = key

        # a step a stage (one pass at most): a job sent meanwhile waits for one of them
        steps = [Step(job_task.prepare_job, (config.to_dict(), 1)) for _ in PREPARE_STAGES]
        future = self.engine.warm_up(steps, home=("prepared", key), resources={TRAINING_SLOT: 1})
        future.add_done_callback(prepared)

    # ------------------------------------------------------------------ records

    def _get(self, job_id) -> Job:
        job = self._jobs.get(str(job_id).strip()) if isinstance(job_id, str) else None
        if job is None:
            raise ValueError(f"unknown job id {str(job_id)[:40]!r}")
        return job

    def _save(self, job: Job):
        with contextlib.suppress(OSError):  # a full disk must not break status reporting
            write_atomic(job.out / "job.json", json.dumps(job.record()).encode())

    def _finish(self, job: Job, state: str, error: str = ""):
        job.state, job.ended, job.error = state, time.time(), error
        job.future = None
        self._save(job)
