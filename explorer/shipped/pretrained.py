"""The catalog of checkpoints: the shipped ones in `pretrained/` (the manifest, `ship`, their
training histories) and the names a user picks checkpoints by.

Checkpoints are named, never addressed by a path from a request: shipped ones by their
manifest name, a session's own by "job:<id>" (looked up by `jobs.JobManager`, passed in).
`checkpoint_choices`, `resolve` and `twin_of` are that one lookup, for the app and the CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from explorer.core.specs import make_spec
from explorer.nets.checkpoints import evaluate
from explorer.nets.models import checkpoint_spec
from explorer.shipped.histories import error_history

# Shipped checkpoints; EXPLORER_PRETRAINED points elsewhere (tests, benchmarks, own models).
PRETRAINED = Path(os.environ.get("EXPLORER_PRETRAINED",
                                 Path(__file__).resolve().parents[2] / "pretrained"))


def manifest(root: Path | None = None) -> list[dict]:
    """Entries of `pretrained/manifest.json` (an empty list when there is none)."""
    root = PRETRAINED if root is None else Path(root)
    path = Path(root) / "manifest.json"
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())["checkpoints"]
        if not all(isinstance(e, dict) and "name" in e and "file" in e for e in entries):
            raise TypeError("an entry without name or file")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"the checkpoint manifest {path.name} is damaged ({err}); "
                         "rewrite it with `python -m explorer ship`") from None
    return entries


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MB chunks (the manifest's "sha256" of a checkpoint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_twin(name: str, root: Path | None = None) -> str | None:
    """The shipped checkpoint of the same architecture with shortcuts flipped, by name.

    Args:
        name: a manifest entry's name, such as "resnet20_v1".
        root: the folder holding the manifest; None for `PRETRAINED`.

    Returns:
        The name of the twin's entry (say "plain20_v1"), or None when none is shipped or
        `name` is not in the manifest.

    Raises:
        ValueError: the manifest is damaged.
    """
    root = PRETRAINED if root is None else Path(root)
    entries = manifest(root)
    fields = ("depth", "version", "shortcut")
    chosen = next((e for e in entries if e["name"] == name), None)
    if chosen is None or any(field not in chosen for field in (*fields, "residual")):
        return None
    return next((e["name"] for e in entries
                 if all(e.get(field) == chosen[field] for field in fields)
                 and e.get("residual") is (not chosen["residual"])), None)


def pretrained_path(name: str, root: Path | None = None) -> Path:
    """The file of a manifest entry, looked up by name.

    Args:
        name: the entry's "name" in `manifest.json`, such as "resnet20_v1".
        root: the folder holding the manifest and the checkpoint files; None for `PRETRAINED`.

    Returns:
        The path of the checkpoint file.

    Raises:
        ValueError: the name is not in the manifest, its file is missing, or the manifest is
            damaged.
    """
    root = PRETRAINED if root is None else Path(root)
    for entry in manifest(root):
        if entry["name"] == name:
            path = Path(root) / entry["file"]
            if not path.is_file():
                raise ValueError(f"checkpoint {name} is listed but its file {entry['file']} is missing")
            return path
    known = ", ".join(e["name"] for e in manifest(root)) or "none shipped"
    raise ValueError(f"unknown checkpoint {str(name)[:60]!r}; known: {known}")


def shipped_histories(root: Path | None = None, version: int | None = None) -> list[dict]:
    """Every shipped run's per-epoch training and test errors, from `histories/`.

    Args:
        root: the folder of shipped checkpoints, their manifest and `histories/`; None for
            `PRETRAINED` ($EXPLORER_PRETRAINED, else `pretrained/`).
        version: keeps only the runs of one ResNet version; None keeps all.

    Returns:
        A list, in manifest order, of {"label", "repeat", "depth", "version", "residual",
        "planned_epochs", "epochs"}: `epochs` is the per-epoch list of {"epoch",
        "train_error", "test_error", ...} from `histories/`. Entries without a history file
        are left out. A net shipped twice is a `repeat` the second time, labelled by its
        length ("ResNet-20 v1, 200 epochs").

    Raises:
        ValueError: the manifest is damaged, or an entry describes no valid network.
    """
    root = PRETRAINED if root is None else Path(root)
    runs = []
    labels = set()
    for entry in manifest(root):
        path = Path(root) / "histories" / f"{entry['name']}.json"
        if path.exists() and (version is None or entry.get("version") == version):
            missing = {"depth", "version", "residual", "shortcut"} - set(entry)
            if missing:
                raise ValueError(f"pretrained/manifest.json: {entry['name']} has a history but no "
                                 f"{', '.join(sorted(missing))}")
            spec = make_spec(entry["depth"], entry["version"], residual=entry["residual"],
                             shortcut=entry["shortcut"])
            # a second run of the same net (a longer schedule) is told apart by its length
            repeat = spec.name in labels
            label = f"{spec.name}, {entry.get('planned_epochs')} epochs" if repeat else spec.name
            labels.add(spec.name)
            runs.append({"label": label, "repeat": repeat, "depth": spec.depth, "version": spec.version,
                         "residual": spec.residual,
                         "planned_epochs": entry.get("planned_epochs"),
                         "epochs": json.loads(path.read_text())["epochs"]})
    return runs


def ship(run_dir, name: str, source: str, root: Path | None = None) -> dict:
    """Copies a run's model into `root`, evaluates it and records it in the manifest.

    The model is evaluated with the `evaluate` command's code on `source` and recorded in
    the manifest with its history (written to `histories/<name>.json`) and sha256. Every
    figure in the manifest is measured here, never typed in.

    Args:
        run_dir: a training run's folder (model.keras, history.json and config.json).
        name: the checkpoint's name; it is shipped as `<name>.keras` and replaces any manifest
            entry of that name.
        source: the data source to evaluate on (see `data.load_cifar10`).
        root: the folder of shipped checkpoints, their manifest and `histories/`; None for
            `PRETRAINED` ($EXPLORER_PRETRAINED, else `pretrained/`).

    Returns:
        The manifest entry written (file, name, architecture, epochs, test_accuracy, n, data,
        sha256 and the run's config).

    Raises:
        ValueError: `name` is not a plain name (lower-case letters, digits, _), the run
            holds no finished epoch, it finished an epoch while being shipped, the checkpoint
            cannot be loaded, the data cannot be had, or the manifest is damaged.
    """
    # a name becomes a file name in `root`: no folders, nothing a shell or URL must quote
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_]{0,63}", name):
        raise ValueError(f"a checkpoint name is lower-case letters, digits and _ "
                         f"(such as resnet20_v1), got {name!r}")
    root = PRETRAINED if root is None else Path(root)

    run = Path(run_dir)
    if not all((run / part).is_file() for part in ("model.keras", "history.json", "config.json")):
        raise ValueError(f"{run} holds no finished epoch (model.keras, history.json and config.json)")
    config = json.loads((run / "config.json").read_text())
    history = json.loads((run / "history.json").read_text())
    root = Path(root)
    (root / "histories").mkdir(parents=True, exist_ok=True)
    target = root / f"{name}.keras"
    model_time = (run / "model.keras").stat().st_mtime_ns
    copy = root / f".{name}.tmp.keras"  # load_model wants the .keras suffix
    shutil.copyfile(run / "model.keras", copy)
    # the model and the history must be of the same epoch: refuse a run caught between them
    if (run / "model.keras").stat().st_mtime_ns != model_time or \
            json.loads((run / "history.json").read_text()) != history:
        copy.unlink()
        raise ValueError(f"{run} finished an epoch while it was being shipped; pause the run "
                         "(kill -STOP) or ship it again")
    # evaluate the copy before it replaces anything: a failed evaluation leaves the shipped
    # file, its history and the manifest as they were
    try:
        result = evaluate(copy, source, tta="flip")
    except BaseException:
        copy.unlink(missing_ok=True)
        raise
    epochs = history["epochs"]
    sha = sha256(copy)
    os.replace(copy, target)
    (root / "histories" / f"{name}.json").write_text(json.dumps({
        "name": name, "config": config,
        "epochs": [{**errors, "learning_rate": e["learning_rate"], "seconds": e["seconds"]}
                   for e, errors in zip(epochs, error_history(epochs, digits=5))]}, indent=1))
    entry = {
        "file": target.name, "name": name, "depth": config["depth"], "version": config["version"],
        "residual": config["residual"], "shortcut": config["shortcut"],
        "epochs": len(epochs), "planned_epochs": config["epochs"],
        "test_accuracy": result["test_accuracy"], "test_accuracy_tta": result["test_accuracy_tta"],
        "n": result["n"],
        "data": (f"CIFAR-10 test set (JPEG copy), {Path(source).name}"
                 if Path(source).name == "cifar10-jpeg.tar.gz" else Path(source).name),
        "sha256": sha,
        "config": config,
    }
    if (run / "weights.json").is_file():  # which weights a run with averaging kept, and why
        entry["weights"] = json.loads((run / "weights.json").read_text())
    _write_entry(root, entry)
    return entry


def _write_entry(root: Path, entry: dict) -> None:
    """Replaces the manifest entry of `entry["name"]`, in place where there is one."""
    entries = manifest(root)
    names = [e["name"] for e in entries]
    if entry["name"] in names:
        entries[names.index(entry["name"])] = entry
    else:
        entries.append(entry)
    tmp = root / "manifest.json.tmp"  # whole or not at all: the app reads it at any time
    tmp.write_text(json.dumps({"checkpoints": entries}, indent=1))
    os.replace(tmp, root / "manifest.json")


def remeasure(name: str, source: str, root: Path | None = None) -> dict:
    """Evaluates a shipped checkpoint again with `evaluate`'s code, flips included, and
    records the figures in its manifest entry (for entries shipped before a new measure).

    Args:
        name: a manifest name.
        source: the data source to evaluate on (see `data.load_cifar10`).
        root: the folder of shipped checkpoints; None for `PRETRAINED`.

    Returns:
        The updated manifest entry.

    Raises:
        ValueError: no entry of that name, its file's sha256 differs from the manifest's
            (the file is not the one measured before), or the data cannot be had.
    """
    root = PRETRAINED if root is None else Path(root)
    entry = next((e for e in manifest(root) if e["name"] == name), None)
    if entry is None:
        raise ValueError(f"no shipped checkpoint named {str(name)[:64]!r} in {root / 'manifest.json'}")
    path = root / entry["file"]
    if sha256(path) != entry["sha256"]:
        raise ValueError(f"{path} is not the file the manifest lists (sha256 differs); ship it again")
    result = evaluate(path, source, tta="flip")
    entry = {**entry, "test_accuracy": result["test_accuracy"],
             "test_accuracy_tta": result["test_accuracy_tta"], "n": result["n"]}
    _write_entry(root, entry)
    return entry


# ----------------------------------------------------------------------------- names


def _accuracy_text(accuracy) -> str:
    return "not evaluated" if accuracy is None else f"{accuracy:.1%} test accuracy"


def checkpoint_choices(jobs=None, owner: str | None = None, imports=None) -> list[tuple[str, str]]:
    """The checkpoints a user may pick: shipped ones by manifest name, then the owner's
    finished jobs, then the models the owner imported.

    Args:
        jobs: the `jobs.JobManager` whose jobs count; None for shipped checkpoints only.
        owner: whose jobs and imports to list (a browser's owner token); None: none, never all.
        imports: the `imports.ImportStore` of the app; None for no import.

    Returns:
        (label, value) pairs: ("resnet20_v1 (91.3% test accuracy, shipped)", "resnet20_v1"), then
        ("ResNet-20 v1, job <id> (done)", "job:<id>") for each job done or stopped with a checkpoint,
        then "import:<id>" ones. A damaged manifest lists no shipped one (using one says why).
    """
    try:
        shipped = manifest()
    except ValueError:
        shipped = []
    choices = [(f"{entry['name']} ({_accuracy_text(entry.get('test_accuracy'))}, shipped)", entry["name"])
               for entry in shipped]
    for job in jobs.list(owner) if jobs is not None and owner is not None else []:
        if job["state"] in ("done", "stopped"):
            try:
                jobs.checkpoint(job["id"])
            except ValueError:
                continue
            choices.append((f"{job['label']}, job {job['id']} ({job['state']})", f"job:{job['id']}"))
    for item in imports.list(owner) if imports is not None and owner is not None else []:
        choices.append((item.label, f"import:{item.id}"))
    return choices


def most_accurate(choices: list[tuple[str, str]]) -> str | None:
    """The shipped checkpoint with the highest test accuracy in the manifest (the Classify
    tab opens on it), else the first choice; None when there is none."""
    try:
        shipped = [entry for entry in manifest() if entry.get("test_accuracy") is not None]
    except ValueError:  # a damaged manifest: using a checkpoint says why
        shipped = []
    return (max(shipped, key=lambda entry: entry["test_accuracy"])["name"] if shipped
            else choices[0][1] if choices else None)


def default_pair(choices: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """The opening pair of the Insight lab: the deepest shipped residual net whose plain twin
    is shipped too, and that twin (the paper's comparison); else the first of `choices` (as
    `checkpoint_choices` gives them) and None; (None, None) when there is none."""
    try:
        shipped = manifest()
        pairs = [(entry.get("depth", 0), entry["name"], shipped_twin(entry["name"]))
                 for entry in shipped if entry.get("residual")]
    except ValueError:  # a damaged manifest: using a checkpoint says why
        pairs = []
    pairs = sorted((pair for pair in pairs if pair[2]), reverse=True)
    if pairs:
        return pairs[0][1], pairs[0][2]
    return (choices[0][1] if choices else None), None


def shipped_for(spec) -> str | None:
    """The most accurate shipped checkpoint of exactly this net (depth, version, shortcuts and
    shortcut kind), or None: what the Architecture tab measures and deletes on the net drawn."""
    try:
        entries = [e for e in manifest() if (e.get("depth"), e.get("version"), e.get("residual"),
                                              e.get("shortcut", "projection")) == (
            spec.depth, spec.version, spec.residual, spec.shortcut) and spec.family == "cifar"]
    except ValueError:  # a damaged manifest: using a checkpoint says why
        return None
    return max(entries, key=lambda e: e.get("test_accuracy") or 0)["name"] if entries else None


def resolve(name, jobs=None, owner: str | None = None, imports=None) -> Path:
    """The file of a checkpoint, looked up by name: never a path from a request.

    Args:
        name: a manifest name ("resnet20_v1"), "job:<id>" for a job's checkpoint,
            "import:<id>" for a model the owner imported, or empty/None for the first shipped
            checkpoint (else the owner's first finished job).
        jobs: the `jobs.JobManager` that "job:<id>" names are looked up in.
        imports: the `imports.ImportStore` that "import:<id>" names are looked up in.
        owner: the job or import must be this owner's (a browser's token; the app always passes
            it). None skips the check (the command line, a notebook).

    Returns:
        The path of the checkpoint file.

    Raises:
        ValueError: the name is unknown, the job is unknown, another owner's or has no
            finished epoch, nothing is available yet, or the manifest is damaged.
    """
    if not name:
        shipped = manifest()
        if shipped:
            return pretrained_path(shipped[0]["name"])
        own = [value for _, value in checkpoint_choices(jobs, owner) if value.startswith("job:")]
        if not own:
            raise ValueError("no checkpoint available yet: train one on the Train tab")
        name = own[0]
    name = str(name)
    if is_own(name):
        kind, _, key = name.partition(":")
        store = jobs if kind == "job" else imports
        if store is None:  # none here (the CLI: a run folder, an import's too, is named by its path)
            raise ValueError(f"unknown {'job id' if kind == 'job' else 'imported model'} {key[:40]!r}")
        return store.checkpoint(key, owner=owner)
    return pretrained_path(name)


def is_own(name) -> bool:
    """Whether a checkpoint name is a browser's own model (a job's or an import), not a shipped one."""
    return bool(name) and str(name).startswith(("job:", "import:"))


def twin_of(name, path=None) -> str | None:
    """The shipped twin of a checkpoint (the same architecture with shortcuts flipped).

    Args:
        name: a checkpoint name as `checkpoint_choices` gives it.
        path: the file of a browser's own ("job:<id>", "import:<id>"): its net is read there.

    Returns:
        The twin's manifest name; None for empty names, a browser's own without `path`, no
        shipped twin, and a damaged manifest."""
    try:
        if is_own(name):
            return shipped_for(checkpoint_spec(path).twin()) if path is not None else None
        return shipped_twin(name) if name else None
    except ValueError:
        return None
