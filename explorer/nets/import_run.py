"""An import's run folder: the files a finished training run leaves that `evaluate`, `ship` and
the studies read (model.keras, config.json, history.json), and import.json, what was imported
from where and how it was proven. Written whole or not at all: into a hidden folder beside
`out`, renamed to `out` at the end, removed if anything fails on the way.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def check_out(out: Path) -> Path:
    """`out` if an import may be written there: not yet there, or an empty folder.

    Raises:
        ValueError: `out` is a file, or a folder that holds files (a run, say).
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already holds files; choose another --out")
    return out


def run_config(provenance: dict) -> dict:
    """config.json of an import: the net's fields `ship` records, no epoch trained here."""
    spec = provenance["spec"]
    return {"depth": spec["depth"], "version": spec["version"], "residual": spec["residual"],
            "shortcut": spec["shortcut"], "epochs": 0, "imported_from": provenance["file"]}


def write_run(out: Path, model, provenance: dict) -> None:
    """Writes the imported `model` and its `provenance` (import.json) as the run folder `out`.

    Raises:
        ValueError: the folder cannot be written (the reason from the system), or `out` was
            filled meanwhile.
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    except OSError as err:
        raise ValueError(f"cannot write {out}: {err.strerror or err}") from None
    try:
        model.save(staging / "model.keras")
        (staging / "import.json").write_text(json.dumps(provenance, indent=1))
        (staging / "config.json").write_text(json.dumps(run_config(provenance), indent=1))
        (staging / "history.json").write_text(json.dumps({"epochs": []}))
        check_out(out)
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise ValueError(f"cannot write {out}: {err.strerror or err}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def file_layers(checkpoint_path, block: str) -> list[str]:
    """The names a block's weighted layers have in the file an import came from (its mapping in
    import.json beside the checkpoint), input to output; [] for a checkpoint that is no import,
    a file of this app (no mapping) or a block without weights mapped.

    Args:
        checkpoint_path: the imported run folder's model.keras.
        block: a block of this app's net ("stage2_block1").
    """
    try:
        provenance = json.loads((Path(checkpoint_path).parent / "import.json").read_text())
    except (OSError, ValueError):
        return []
    return [pair["file"] for pair in provenance.get("mapping") or []
            if str(pair.get("model", "")).startswith(f"{block}_")]
