"""A user's model file read without running anything in it: the size cap checked before a byte
is read, the container (a `.keras` zip or a legacy `.h5` HDF5 file) checked before Keras or
h5py go further, the model's config as JSON, and a legacy `.h5` file's weight arrays as data.

Nothing here deserialises a layer: `import_layers` reads the config, and a `.keras` file is
handed to Keras (with `safe_mode=True`) only after that config has been checked. Every refusal
is one `ValueError` naming the file (its name only, never the folders it came from).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

# The largest model file read at all (checked on its size, before it is opened): a CIFAR ResNet
# of depth 1202, the largest the tutorial names, is about 80 MB with its optimizer state.
MAX_IMPORT_BYTES = 200 * 2**20
# What a `.keras` archive may unpack to, or a `.h5` file's weight arrays may hold: more than
# the file itself only where it is compressed, so a small file that unpacks to gigabytes (a
# zip bomb) is refused before it is unpacked.
MAX_UNPACKED_BYTES = 400 * 2**20
MAX_CONFIG_BYTES = 16 * 2**20  # the model's config.json
MAX_MEMBERS = 256  # files inside a `.keras` archive (Keras writes three, and assets)

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FORMATS = ("keras", "h5")


@dataclass
class ModelFile:
    """A model file, read as data.

    Args:
        path: the file.
        format: "keras" (the zip Keras 3 writes) or "h5" (the legacy HDF5 file).
        config: the model's config, the JSON object Keras serialises a model to.
        weights: a `.h5` file's weight arrays, {layer name: {weight name: array}} (weight
            names as Keras calls them: kernel, bias, gamma, beta, moving_mean,
            moving_variance); None for a `.keras` file, whose weights Keras loads.
        keras_version: the Keras version that wrote it, when the file says.
    """

    path: Path
    format: str
    config: dict
    weights: dict | None = None
    keras_version: str | None = None


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size < 10 * 2**20 else f"{size / 2**20:.0f} MB"


def read_model_file(path) -> ModelFile:
    """Reads a `.keras` or `.h5` model file as data, refusing what cannot be read safely.

    Args:
        path: the file (what it is, zip or HDF5, is read from its first bytes, not its name).

    Returns:
        The `ModelFile`.

    Raises:
        ValueError: no file there; it is over `MAX_IMPORT_BYTES`; it is neither a zip archive
            nor an HDF5 file; it is truncated or corrupt; it unpacks to more than
            `MAX_UNPACKED_BYTES`; it holds no model config (weights only).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no model file at {path.name}")
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise ValueError(f"{path.name} is {megabytes(size)}: a model file may be at most "
                         f"{megabytes(MAX_IMPORT_BYTES)}")
    with open(path, "rb") as handle:
        head = handle.read(len(HDF5_MAGIC))
    if head.startswith(ZIP_MAGIC):
        return _read_keras(path)
    if head == HDF5_MAGIC:
        return _read_h5(path)
    raise ValueError(f"{path.name} is neither a .keras file (a zip archive) nor a legacy .h5 file "
                     "(HDF5): save the model with model.save('name.keras')")


def _json(raw, name: str, what: str) -> dict:
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{name}: its {what} is not JSON (a damaged file)") from None
    if not isinstance(config, dict):
        raise ValueError(f"{name}: its {what} is not a model's config")
    return config


def _checked_members(archive: zipfile.ZipFile, name: str) -> dict:
    """The archive's members by name, once their count, names and sizes are within bounds."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ValueError(f"{name} holds {len(infos)} files; a .keras file holds a few")
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        if info.filename.startswith("/") or ".." in parts:
            raise ValueError(f"{name} holds a file outside its own folder ({info.filename[:60]!r})")
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ValueError(f"{name} unpacks to {megabytes(unpacked)}, more than "
                         f"{megabytes(MAX_UNPACKED_BYTES)}: refused unread (a zip bomb?)")
    members = {info.filename: info for info in infos}
    for needed in ("config.json", "model.weights.h5"):
        if needed not in members:
            raise ValueError(f"{name} is a zip archive without {needed}: not a Keras model file "
                             "(model.save('name.keras') writes one)")
    if members["config.json"].file_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{name}: its config.json is {megabytes(members['config.json'].file_size)}; "
                         "a model's config is far smaller")
    return members


def _read_keras(path: Path) -> ModelFile:
    name = path.name
    try:
        with zipfile.ZipFile(path) as archive:
            members = _checked_members(archive, name)
            damaged = archive.testzip()  # every member read once: its CRC and its length
            if damaged is not None:
                raise ValueError(f"{name} is corrupt: {damaged} in it does not match its checksum")
            config = archive.read("config.json")
            metadata = archive.read("metadata.json") if "metadata.json" in members else b"{}"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError) as err:
        raise ValueError(f"{name} is not a complete .keras file: its zip archive is truncated or "
                         f"corrupt ({type(err).__name__})") from None
    try:
        version = json.loads(metadata).get("keras_version")
    except (ValueError, AttributeError):
        version = None
    return ModelFile(path, "keras", _json(config, name, "config.json"), None,
                     version if isinstance(version, str) else None)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_h5(path: Path) -> ModelFile:
    import h5py  # deferred: only a legacy .h5 file needs it (it ships with Keras)

    name = path.name
    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
            if raw is None:
                raise ValueError(f"{name} holds weights only, no model: save the whole model "
                                 "(model.save), not model.save_weights")
            config = _json(_text(raw), name, "model_config")
            group = handle.get("model_weights", handle)  # Keras' whole-model file, or a bare one
            weights = _h5_weights(group, name)
            version = handle.attrs.get("keras_version")
    except (OSError, KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"{name} is not a complete .h5 model file: truncated or corrupt "
                         f"({type(err).__name__})") from None
    return ModelFile(path, "h5", config, weights, None if version is None else _text(version))


def weight_name(full: str) -> str:
    """"conv2d/kernel:0" (Keras 2) or "conv2d/kernel" (Keras 3) -> "kernel"."""
    return full.rsplit("/", 1)[-1].split(":")[0]


def _h5_weights(group, name: str) -> dict:
    """{layer: {weight: float32 array}} of a legacy file, sizes checked before any is read."""
    datasets = {}
    total = 0
    for layer in map(_text, group.attrs.get("layer_names", [])):
        entries = {}
        for full in map(_text, group[layer].attrs.get("weight_names", [])):
            dataset = group[layer][full]
            if dataset.dtype.kind != "f":
                raise ValueError(f"{name}: weight {full!r} holds {dataset.dtype}, not numbers")
            total += dataset.size * dataset.dtype.itemsize
            entries[weight_name(full)] = dataset
        datasets[layer] = entries
    if total > MAX_UNPACKED_BYTES:
        raise ValueError(f"{name}'s weights hold {megabytes(total)}, more than "
                         f"{megabytes(MAX_UNPACKED_BYTES)}: refused unread")
    return {layer: {weight: np.asarray(dataset[()], np.float32) for weight, dataset in entries.items()}
            for layer, entries in datasets.items()}


@contextlib.contextmanager
def _keras_named(path: Path):
    """`path`, or a copy of it named model.keras: Keras reads a zip by its file's suffix (an
    upload's temporary file has another)."""
    if path.suffix == ".keras":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="import-") as folder:
        shutil.copyfile(path, Path(folder) / "model.keras")
        yield Path(folder) / "model.keras"


def load_keras_model(path: Path):
    """A checked `.keras` file loaded by Keras with `safe_mode=True` (no code in it runs), as
    `models.load_model` loads every checkpoint.

    Raises:
        ValueError: Keras could not load it (with Keras' reason, cut short).
    """
    from explorer.nets.models import load_model  # deferred: reading and checking a file needs no Keras

    try:
        with _keras_named(path) as named:
            return load_model(named)
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for a file it cannot load
        reason = " ".join(str(err).split())[:200]
        raise ValueError(f"Keras could not load {path.name} ({type(err).__name__}: {reason})") from None
