"""Files a task reads, carried to its worker through the engine: nothing depends on a shared disk.

A study of a checkpoint names it by its path on the app's machine (a shipped file, a job's
model the app wrote as its events came in, an image a visitor uploaded). A worker of the app's
own cluster reads that path; a worker on another machine cannot. So when the app has joined a
cluster started elsewhere, `Engine.submit` finds the paths in a task's arguments (`find_files`:
`.keras` checkpoints and images, in lists, tuples, dicts and dataclasses), sends each file's
bytes into the cluster once per file and version (`client.scatter`, the future kept by
`FileShipper` so the bytes stay there while the app may ask again), and hands them to the task
beside its arguments. On the worker `engine.call` writes each file to a folder of its own,
named by the bytes' sha256 and keeping the file's name (`local_copy`), and gives the task that
path in place of the app's (`replace_paths`).

Why by hand: Dask moves data a task needs, but a path is only a string to it; the worker's
copy is a file because Keras loads a `.keras` checkpoint from a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

from explorer.core.caches import BoundedCache

SHIP = "EXPLORER_SHIP_FILES"  # "1": always ship files, "0": never; unset: only to a cluster joined
SUFFIXES = (".keras", ".h5", ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")  # what a task reads from disk
MAX_FILE_BYTES = 512 * 2 ** 20  # a larger "checkpoint" is not sent through the scheduler
FOLDER = "resnet-explorer-files"  # under the worker's temporary folder


def _is_file_path(value) -> bool:
    return (isinstance(value, (str, os.PathLike)) and str(value).lower().endswith(SUFFIXES)
            and os.path.isfile(value))


def _walk(value, visit):
    """`value` with `visit` applied to every leaf in its lists, tuples, dicts and dataclasses."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_walk(item, visit) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_walk(item, visit) for item in value)
    if isinstance(value, dict):
        return {key: _walk(item, visit) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {field.name: _walk(getattr(value, field.name), visit)
                   for field in dataclasses.fields(value) if field.init}
        return dataclasses.replace(value, **changes)
    return visit(value)


def find_files(value) -> list[str]:
    """The paths of existing checkpoint and image files in a task's arguments, each once."""
    found: list[str] = []

    def visit(leaf):
        if _is_file_path(leaf) and str(leaf) not in found:
            found.append(str(leaf))
        return leaf

    _walk(value, visit)
    return found


def replace_paths(value, copies: dict[str, str]):
    """`value` with each path in `copies` (the app's) replaced by its copy (the worker's), a
    `Path` kept a `Path`."""
    def visit(leaf):
        if isinstance(leaf, (str, os.PathLike)) and str(leaf) in copies:
            return type(leaf)(copies[str(leaf)]) if isinstance(leaf, Path) else copies[str(leaf)]
        return leaf

    return _walk(value, visit)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_copy(name: str, sha256: str, data: bytes, root: Path | None = None) -> str:
    """In a worker: the path of its copy of a shipped file, written once per content.

    Args:
        name: the file's name on the app's machine (kept: results name their checkpoint).
        sha256: the bytes' digest, checked here.
        data: the file's bytes.
        root: the folder of copies; None for the system's temporary folder.

    Raises:
        ValueError: the bytes are not the ones the app sent (their sha256 differs).
    """
    if sha256_of(data) != sha256:
        raise ValueError(f"the copy of {name} that reached this worker is damaged (sha256 differs)")
    folder = (Path(tempfile.gettempdir()) / FOLDER if root is None else Path(root)) / sha256[:32]
    path = folder / Path(name).name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{path.name}.{os.getpid()}.partial"
        partial.write_bytes(data)
        os.replace(partial, path)  # whole or absent: two tasks may write the same copy at once
    return str(path)


def unpack(args, kwargs, files: dict | None):
    """In a worker: the task's arguments with the shipped files' paths replaced by local copies."""
    if not files:
        return args, kwargs
    copies = {path: local_copy(item["name"], item["sha256"], item["data"]) for path, item in files.items()}
    return replace_paths(args, copies), replace_paths(kwargs, copies)


def should_ship(joined: bool) -> bool:
    """Whether tasks carry their files: `EXPLORER_SHIP_FILES` if set, else when the app joined
    a cluster started elsewhere (the app's own workers read its disk)."""
    setting = os.environ.get(SHIP, "")
    return setting == "1" if setting in ("0", "1") else joined


class FileShipper:
    """In the app: each file's bytes sent into the cluster once per version, kept there for
    the next task that reads it (the last `keep` files).

    Args:
        client: the engine's `distributed.Client`.
        keep: files whose bytes stay in the cluster.
    """

    def __init__(self, client, keep: int = 16):
        self.client = client
        self._sent = BoundedCache(keep, lru=True)

    def ship(self, paths: list[str]) -> dict:
        """{path: {"name", "sha256", "data": a future of the bytes}} for a task's files.

        Raises:
            ValueError: a file is larger than `MAX_FILE_BYTES`.
        """
        shipped = {}
        for path in paths:
            stat = os.stat(path)
            key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)
            item = self._sent.get(key)
            if item is None:
                if stat.st_size > MAX_FILE_BYTES:
                    raise ValueError(f"{Path(path).name} is {stat.st_size / 2 ** 20:.0f} MiB, over the "
                                     f"{MAX_FILE_BYTES // 2 ** 20} MiB a task may carry to another machine")
                data = Path(path).read_bytes()
                item = {"name": Path(path).name, "sha256": sha256_of(data),
                        "data": self.client.scatter(data, hash=False)}
                self._sent.put(key, item)
            shipped[path] = item
        return shipped
