"""A run's folder: one trainer at a time, the epoch its backup holds, and the same run's options.

`training.train` checks these before it touches a run folder, so that two trainers, a damaged
backup or another run's options never overwrite a run's state.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from explorer.core.specs import is_whole
from explorer.train.config import TrainConfig

try:
    import fcntl
except ImportError:  # not POSIX (Windows): run folders go unlocked
    fcntl = None


@contextlib.contextmanager
def run_lock(out: Path):
    """Holds an exclusive lock on the run folder: two trainers resuming one backup would
    overwrite each other's backup, model and history. The system drops it when the process
    dies, `kill -9` included."""
    if fcntl is None:  # not POSIX: no lock, as before
        yield
        return
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(f"another process is training in {out}; stop it first or choose "
                             "another --out") from None
        yield


def backup_epoch(out: Path) -> int:
    """Epochs finished according to BackupAndRestore's metadata (0 without a backup)."""
    meta = out / "backup" / "training_metadata.json"
    if not meta.exists():
        return 0
    try:
        epoch = json.loads(meta.read_text())["epoch"]
        if not is_whole(epoch) or epoch < 0:
            raise TypeError
        return epoch
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{meta} is damaged ({type(err).__name__}); the run cannot resume from it: "
                         "copy backup/*.bkp over the files they back up (the epoch before), or "
                         "choose another --out") from None


def check_same_run(saved: Path, config: TrainConfig) -> None:
    """Refuses to resume the run whose config.json is `saved` with another config."""
    if not saved.exists():
        return
    there, here = TrainConfig.from_dict(json.loads(saved.read_text())).run_fields(), config.run_fields()
    differ = [key for key in here if there.get(key) != here[key]]
    if differ:  # name the fields: a relative --data from another folder reads as a new run
        details = "; ".join(f"{key}: {there.get(key)!r} there, {here[key]!r} here" for key in differ[:4])
        raise ValueError(f"{saved.parent} holds a different run ({saved}: {details}); "
                         "resume it with the same options or choose another --out")
