"""Studies of the shipped checkpoints, measured once and kept beside them.

A shipped checkpoint never changes (its sha256 is in the manifest), so the lesion study and
the loss landscape of it, at the settings the app opens with, need not be measured again for
every visitor. `python -m explorer precompute NAME... --data ARCHIVE` measures them with the
very functions the `lesion` and `landscape` commands run and writes one file per study to
`pretrained/studies/`: the result, the settings, the equivalent command line, the data it
was measured on (name and size) and the checkpoint's sha256. `lookup` serves a stored result
only when all of them match the request: another sample count, another archive or a file
that is no longer the shipped one is measured live. A test measures one again and compares.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path

from explorer.core.specs import ResNetSpec, make_spec
from explorer.shipped import pretrained

# The settings stored per study: what the Insight lab opens with on a CPU, and the tour's.
LESION_SAMPLES = (1000, 256)
LANDSCAPE_SETTINGS = ({"steps": 9, "samples": 128, "span": 1.0, "seed": 0},
                      {"steps": 5, "samples": 64, "span": 1.0, "seed": 0})


def studies_dir(root: Path | None = None) -> Path:
    return (pretrained.PRETRAINED if root is None else Path(root)) / "studies"


def _file(study: str, name: str, settings: dict, root: Path | None) -> Path:
    slug = ".".join(f"{key}{settings[key]}" for key in sorted(settings))
    return studies_dir(root) / f"{name}.{study}.{slug}.json"


def _data_identity(source) -> dict | None:
    """The data a result was measured on: the archive's or folder's name, and a file's size."""
    if not source:
        return None
    path = Path(str(source))
    return {"name": path.name, "bytes": path.stat().st_size if path.is_file() else None}


@functools.lru_cache(maxsize=64)
def _sha256_at(path: str, mtime_ns: int, size: int) -> str:
    return pretrained.sha256(Path(path))


def _digest(path) -> str:
    """A file's sha256, read once per version of the file: every study request of a checkpoint
    looks it up, once to find its manifest entry and once to check it."""
    stat = os.stat(path)
    return _sha256_at(str(path), stat.st_mtime_ns, stat.st_size)


def _shipped_name(checkpoint, root: Path | None) -> tuple[str, str] | None:
    """(manifest name, sha256) of a shipped checkpoint file, found by its path or, for a copy
    elsewhere (a worker's copy of a file the app sent, `compute.shipping`), by its sha256;
    None for any other file."""
    root = pretrained.PRETRAINED if root is None else Path(root)
    try:
        path = Path(checkpoint).resolve()
    except (OSError, TypeError):
        return None
    entries = pretrained.manifest(root)
    for entry in entries:
        if (root / entry["file"]).resolve() == path:
            return entry["name"], entry.get("sha256")  # none in a hand-made manifest: measured live
    try:
        digest = _digest(path) if path.suffix == ".keras" and path.is_file() else None
    except OSError:
        return None
    for entry in entries:
        if digest and entry.get("sha256") == digest:
            return entry["name"], digest
    return None


def shipped_net(name: str, root: Path | None = None) -> ResNetSpec | None:
    """The net of a shipped checkpoint, from its manifest entry, without reading the file.

    Args:
        name: a manifest entry's name, such as "resnet20_v1".
        root: the shipped checkpoints' folder; None for `pretrained.PRETRAINED`.

    Returns:
        The `ResNetSpec` of its "depth", "version", "residual" and "shortcut" (and "family",
        CIFAR-10 when it has none); None when `name` is not in the manifest, or its entry
        does not say or describes no valid network.

    Raises:
        ValueError: the manifest is damaged.
    """
    entry = next((e for e in pretrained.manifest(root) if e["name"] == name), None)
    try:
        return make_spec(entry["depth"], entry["version"], entry.get("family", "cifar"),
                         residual=entry["residual"], shortcut=entry["shortcut"])
    except (KeyError, TypeError, ValueError):
        return None


def lookup(study: str, checkpoint, settings: dict, source, root: Path | None = None) -> dict | None:
    """The stored result of `study` on `checkpoint` at `settings` on `source`, if one was
    measured on the very file and data; None otherwise (measure it live).

    Args:
        study: "lesion", "landscape" or "readout".
        checkpoint: the checkpoint's path (a shipped one has a manifest entry).
        settings: the study's settings, e.g. {"samples": 1000}.
        source: the data source the request measures on.
        root: the shipped checkpoints' folder; None for `pretrained.PRETRAINED`.

    Returns:
        The result as the study's function returned it, with "stored": the command and date
        it was measured with; or None. A result kept before results carried their "net" (see
        `specs.result_net`) gets it from the checkpoint's manifest entry.
    """
    shipped = _shipped_name(checkpoint, root)
    if shipped is None:
        return None
    name, sha = shipped
    path = _file(study, name, settings, root)
    try:
        record = json.loads(path.read_text())
        if (record["sha256"] != sha or record["settings"] != settings
                or record["data"] != _data_identity(source)):
            return None
        # the manifest's sha256 is the file's: a file changed under the same name is not it
        if _digest(checkpoint) != sha:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    result = dict(record["result"])
    if "net" not in result:  # kept before results carried their net: the manifest's entry says it
        net = shipped_net(name, root)
        if net is not None:
            result["net"] = net.to_config()
    return {**result, "stored": {"command": record["command"], "measured": record["measured"]}}


def store(study: str, name: str, settings: dict, source: str, result: dict, command: str,
          root: Path | None = None) -> Path:
    """Writes one measured study of the shipped checkpoint `name` (see the module docstring)."""
    entry = next((e for e in pretrained.manifest(root) if e["name"] == name), None)
    if entry is None:
        raise ValueError(f"no shipped checkpoint named {str(name)[:64]!r}")
    path = _file(study, name, settings, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"study": study, "checkpoint": name, "sha256": entry["sha256"], "settings": settings,
              "data": _data_identity(source), "command": command,
              "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "result": result}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)
    return path


def provenance(results: list[dict]) -> str:
    """A line on where stored results come from ("" when every result was measured now)."""
    kept = [result["stored"] for result in results if result.get("stored")]
    if not kept:
        return ""
    commands = "; ".join(f"`{entry['command']}` ({entry['measured']})" for entry in kept)
    return (f"Measured once for the shipped checkpoint{'s' if len(kept) > 1 else ''}, which never change "
            f"(sha256 checked), and kept in pretrained/studies/: {commands}.")
