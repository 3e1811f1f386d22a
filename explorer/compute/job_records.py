"""A job's record: who started it, its config, its state, where it ran (job.json in its folder),
and the small file helpers the job manager writes its folder with."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from explorer.train.config import TrainConfig


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
    machine: str = ""  # the host name of the worker that trains it
    worker: str = ""  # that worker's address
    future: object = None  # its Dask future, while queued or running
    stop_requested: bool = False

    def record(self) -> dict:
        return {"id": self.id, "owner": self.owner, "config": self.config.to_dict(),
                "state": self.state, "created": self.created, "started": self.started,
                "ended": self.ended, "error": self.error, "label": self.label, "group": self.group,
                "machine": self.machine}


def time_limit(job_seconds: float, manager_seconds: float) -> float:
    """The tighter of a job's own time limit and the manager's cap; 0 on either side means
    none there (so a manager without a cap keeps the job's own limit)."""
    limits = [seconds for seconds in (job_seconds, manager_seconds) if seconds > 0]
    return min(limits) if limits else 0


def load_jobs(root: Path) -> dict:
    """The jobs recorded in `root`'s sub-folders, by id; those the app died under are stopped."""
    jobs = {}
    if not root.exists():
        return jobs
    for path in root.glob("*/job.json"):
        record = read_json(path)
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
                  label=record.get("label", ""), group=record.get("group", ""),
                  machine=record.get("machine", ""))
        jobs[job.id] = job
    return jobs


def run_key(config: TrainConfig) -> str:
    """What makes two jobs the same run (`TrainConfig.run_fields`), as a key."""
    return json.dumps(config.run_fields(), sort_keys=True)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_atomic(path: Path, data: bytes) -> None:
    """Writes `data` beside `path` and moves it there: a reader never sees half a file."""
    with contextlib.suppress(OSError):
        temporary = path.with_name(path.name + ".part")
        temporary.write_bytes(data)
        os.replace(temporary, path)
