"""A browser's own models, imported from files it uploaded (`importer.import_model`, run on the
engine): each a run folder like a finished job's, named "import:<id>" in the checkpoint menus.

An import belongs to the owner whose page made it (the menus list it there, a request of anyone
else is refused) and to the session that uploaded it: when that session ends (the page closed
or reloaded: Gradio's `unload`), its imports are removed with it. The store is bounded too,
per owner and in all, oldest first out, because an API client's session never says it ended.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from explorer.core.specs import net_name
from explorer.nets.importer import import_model

MAX_IMPORTS_PER_OWNER = 4
MAX_IMPORTS_KEPT = 50  # in all: the oldest removed first
RECORD = "owner.json"  # beside the run folder's files: who owns it, which session made it


def import_task(path: str, preprocess: str | None, data: str | None) -> tuple[dict, dict]:
    """An engine task: `import_model` of the file at `path` into a folder of the worker's own,
    returned as (its summary with the proof's images, {file name: bytes}). The run folder comes
    back as bytes because the worker may be on another machine than the app that keeps it.

    Raises:
        ValueError: the import's (see `import_model`).
    """
    with tempfile.TemporaryDirectory(prefix="resnet-explorer-import-") as folder:
        out = Path(folder) / "run"
        summary = import_model(path, out, preprocess=preprocess, data=data)
        proof = json.loads((out / "import.json").read_text())["proof"]
        files = {item.name: item.read_bytes() for item in out.iterdir() if item.is_file()}
    return {**summary, "proof_images": proof["images"], "proof_data": proof["data"]}, files


@dataclass(frozen=True)
class Imported:
    """One import: its id, owner, session, when it was made and what `import_model` said."""

    id: str
    owner: str
    session: str
    created: float
    summary: dict

    @property
    def label(self) -> str:
        net = net_name(self.summary.get("depth"), self.summary.get("version"), self.summary.get("residual"))
        return f"{net}, your {self.summary.get('file', 'file')} (imported)"


class ImportStore:
    """The imports of an app, kept under `root` (one folder an import, its id the name).

    Args:
        root: the folder of the imports (made on first use); imports already there (an app
            restarted) are read back, with their sessions long gone: removed.
        importer: `importer(path, preprocess)` returns what `import_task` does, or raises
            ValueError (the app runs `import_task` on the engine).
    """

    def __init__(self, root, importer, max_per_owner: int = MAX_IMPORTS_PER_OWNER,
                 max_kept: int = MAX_IMPORTS_KEPT):
        self.root, self.importer = Path(root), importer
        self.max_per_owner, self.max_kept = max_per_owner, max_kept
        self._lock = threading.Lock()
        self._imports: dict[str, Imported] = {}
        if self.root.is_dir():  # an earlier run's: their sessions ended with it
            for folder in self.root.iterdir():
                shutil.rmtree(folder, ignore_errors=True)

    def add(self, path, preprocess: str | None, owner: str, session: str) -> Imported:
        """Imports the file at `path` for `owner` (made by `session`).

        Raises:
            ValueError: the owner holds `max_per_owner` imports already, or the import failed
                (the importer's one line). Nothing is left behind then.
        """
        with self._lock:
            if sum(item.owner == owner for item in self._imports.values()) >= self.max_per_owner:
                raise ValueError(f"you have {self.max_per_owner} imported models already: closing the page "
                                 "removes them (or wait for the oldest to be removed)")
        summary, files = self.importer(str(path), preprocess)
        import_id = uuid.uuid4().hex[:12]
        summary = {**summary, "file": Path(str(path)).name, "path": str(self.root / import_id)}
        record = {"owner": owner, "session": session, "summary": summary}
        files = {**files, RECORD: json.dumps(record).encode()}
        self._write(import_id, files)
        item = Imported(import_id, owner, session, time.time(), summary)
        with self._lock:
            self._imports[import_id] = item
            removed = self._over_bound()
        for old in removed:
            shutil.rmtree(self.root / old, ignore_errors=True)
        return item

    def _write(self, import_id: str, files: dict) -> None:
        """The import's folder, whole or not at all: written beside, then renamed."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{import_id}-", dir=self.root))
        try:
            for name, data in files.items():
                (staging / Path(name).name).write_bytes(data)
            staging.rename(self.root / import_id)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise ValueError(f"the imported model could not be written: {err.strerror or err}") from None

    def _over_bound(self) -> list[str]:
        """Ids dropped, oldest first, until `max_kept` remain (under the lock)."""
        dropped = []
        for item in sorted(self._imports.values(), key=lambda i: i.created):
            if len(self._imports) <= self.max_kept:
                break
            dropped.append(self._imports.pop(item.id).id)
        return dropped

    def list(self, owner: str) -> list[Imported]:
        """The owner's imports, newest first."""
        with self._lock:
            return sorted((i for i in self._imports.values() if i.owner == owner), key=lambda i: -i.created)

    def checkpoint(self, import_id: str, owner: str | None = None) -> Path:
        """The model file of an import, looked up by id (never a path from a request).

        Raises:
            ValueError: no import has that id (removed, or never made), or it is another owner's.
        """
        with self._lock:
            item = self._imports.get(str(import_id))
        if item is None:
            raise ValueError(f"no imported model {str(import_id)[:40]!r}: imports are removed when the page "
                             "that made them closes; import the file again")
        if owner is not None and item.owner != owner:
            raise ValueError(f"imported model {import_id} belongs to another session")
        return self.root / item.id / "model.keras"

    def end_session(self, session: str) -> int:
        """Removes the imports a session made (its page closed); returns how many."""
        with self._lock:
            ended = [i.id for i in self._imports.values() if i.session == session]
            for import_id in ended:
                del self._imports[import_id]
        for import_id in ended:
            shutil.rmtree(self.root / import_id, ignore_errors=True)
        return len(ended)
