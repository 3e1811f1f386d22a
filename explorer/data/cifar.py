"""CIFAR-10 from one of three sources, as uint8 arrays in [0, 255].

Sources:
    "keras"       `keras.datasets.cifar10.load_data()` (needs internet the first time).
    a path        a class-folder archive (.tar.gz, .tgz, .tar) or directory laid out as
                  `train/<class>/*.jpg` and `test/<class>/*.jpg`: how the offline JPEG copy
                  is read, and how a user brings their own images.
    "synthetic"   small generated images with learnable class structure (tests, offline demos).

The default source is `$EXPLORER_DATA`, else "keras". Decoded archives are cached as .npy
files under `$EXPLORER_CACHE` (default `~/.cache/resnet-explorer`) so a second load is
fast. Normalization is not done here: the model normalizes its own inputs (`models.py`),
so training, evaluation and inference share one preprocessing path.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from explorer.core.specs import CIFAR_CLASSES

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif"}


@dataclass
class Dataset:
    x_train: np.ndarray  # (N, 32, 32, 3) uint8
    y_train: np.ndarray  # (N,) int64 labels
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: str  # what was loaded, for display and for the manifest
    notice: str = ""  # shown in the UI when a fallback was used


def default_source() -> str:
    return os.environ.get("EXPLORER_DATA", "keras")


def cache_dir() -> Path:
    return Path(os.environ.get("EXPLORER_CACHE", Path.home() / ".cache" / "resnet-explorer"))


def load_cifar10(source: str | None = None) -> Dataset:
    """Loads CIFAR-10 (or a folder laid out like it) into memory.

    Args:
        source: "keras" (downloads once), "synthetic", or a path to a `.tar.gz` archive or a
            folder of `train/<class>/*.jpg` and `test/<class>/*.jpg`; None for
            `$EXPLORER_DATA`, else "keras".

    Returns:
        A `Dataset` of uint8 images and int labels.

    Raises:
        ValueError: the source cannot be read (missing, not an archive, no images, offline).
    """
    source = str(source or default_source()).strip()
    if source == "synthetic":
        return synthetic()
    if source == "keras":
        return _load_keras()
    path = Path(source).expanduser()
    if not path.exists():
        raise ValueError(f"data source {source!r} is neither 'keras', 'synthetic' nor an "
                         "existing archive or folder")
    return _load_path(path)


def load_or_synthetic(source: str | None = None) -> Dataset:
    """Like `load_cifar10`, but falls back to generated data with a visible notice."""
    try:
        return load_cifar10(source)
    except ValueError as err:
        data = synthetic()
        data.notice = f"Using generated data, not CIFAR-10: {err}"
        return data


def _load_keras() -> Dataset:
    import keras  # deferred: importing this module must not load Keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as err:  # noqa: BLE001 - network errors come in many types
        raise ValueError(
            "could not download CIFAR-10 with keras.datasets "
            f"({type(err).__name__}); point EXPLORER_DATA or --data at an archive or folder "
            "of class folders, or use 'synthetic'") from None
    return Dataset(x_train, y_train.reshape(-1).astype(np.int64), x_test,
                   y_test.reshape(-1).astype(np.int64), CIFAR_CLASSES, "keras")


def _cache_key(path: Path) -> str:
    """Changes whenever the archive, or any file in the folder, changes."""
    if path.is_file():
        stat = path.stat()
        state = f"{stat.st_size}|{stat.st_mtime_ns}"
    else:
        entries = [(str(f), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in sorted(path.glob("*/*/*")) if f.is_file()]
        state = hashlib.sha1(repr(entries).encode()).hexdigest()
    text = f"{path.resolve()}|{state}|v1"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _load_path(path: Path) -> Dataset:
    cached = cache_dir() / _cache_key(path)
    names = ("x_train", "y_train", "x_test", "y_test")
    if all((cached / f"{n}.npy").exists() for n in names) and (cached / "classes.txt").exists():
        arrays = [np.load(cached / f"{n}.npy") for n in names]
        classes = tuple((cached / "classes.txt").read_text().split("\n"))
        return Dataset(*arrays, classes, str(path))
    files = _archive_files(path) if path.is_file() else _folder_files(path)
    data = _decode(files, str(path))
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for n in names:
            np.save(tmp / f"{n}.npy", getattr(data, n))
        (tmp / "classes.txt").write_text("\n".join(data.classes))
        tmp.replace(cached)  # atomic: a half-written cache is never read
    except OSError:
        pass  # an unwritable cache only costs speed
    return data


def _archive_files(path: Path):
    """Yields (split, class, bytes) from a tar archive."""
    try:
        with tarfile.open(path) as archive:
            for member in archive:
                parts = Path(member.name).parts
                parts = parts[parts.index("train" if "train" in parts else "test"):] \
                    if ("train" in parts or "test" in parts) else parts
                if not member.isfile() or len(parts) != 3 or parts[0] not in ("train", "test"):
                    continue
                if Path(parts[2]).suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                yield parts[0], parts[1], archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a readable tar archive: {err}") from None


def _folder_files(path: Path):
    for split in ("train", "test"):
        for cls_dir in sorted((path / split).glob("*")):
            if cls_dir.is_dir():
                for f in sorted(cls_dir.iterdir()):
                    if f.suffix.lower() in IMAGE_SUFFIXES:
                        yield split, cls_dir.name, f.read_bytes()


def _decode(files, source: str) -> Dataset:
    images = {"train": [], "test": []}
    labels = {"train": [], "test": []}
    for split, cls, raw in files:
        try:
            with Image.open(io.BytesIO(raw)) as img:
                img = img.convert("RGB")
                if img.size != (32, 32):
                    img = img.resize((32, 32), Image.Resampling.BICUBIC)
                images[split].append(np.asarray(img, dtype=np.uint8))
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise ValueError(f"{source}: an image in {split}/{cls} cannot be read "
                             f"({type(err).__name__})") from None
        labels[split].append(cls)
    if not images["train"] or not images["test"]:
        raise ValueError(f"{source} holds no train/<class>/ and test/<class>/ images")
    found = set(labels["train"]) | set(labels["test"])
    classes = CIFAR_CLASSES if found <= set(CIFAR_CLASSES) else tuple(sorted(found))
    index = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(0)  # a fixed shuffle, so subsets are class-balanced prefixes
    out = []
    for split in ("train", "test"):
        x = np.stack(images[split])
        y = np.array([index[c] for c in labels[split]], dtype=np.int64)
        order = rng.permutation(len(y))
        out += [x[order], y[order]]
    return Dataset(*out, classes, source)


def synthetic(num_train: int = 2000, num_test: int = 500, seed: int = 0) -> Dataset:
    """Generated 32x32 images with learnable class structure (tests, offline demos).

    Each class is a color and an oriented stripe pattern, plus noise and random shifts, so a
    small net learns it in an epoch or two.

    Args:
        num_train: number of training images.
        num_test: number of test images.
        seed: seed of the generator; the same seed gives the same images.

    Returns:
        A `Dataset` of (N, 32, 32, 3) uint8 images and int64 labels in 0..9, with CIFAR-10's
        class names and source "synthetic".
    """
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 10, n)
        yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
        angle = y[:, None, None] * np.pi / 10
        phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
        wave = np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 0.6 + phase)
        hue = np.stack([np.cos(y * 0.63), np.cos(y * 0.63 + 2.1), np.cos(y * 0.63 + 4.2)], -1)
        img = 128 + 60 * wave[..., None] * hue[:, None, None, :] + rng.normal(0, 25, (n, 32, 32, 3))
        return np.clip(img, 0, 255).astype(np.uint8), y.astype(np.int64)

    x_train, y_train = make(num_train)
    x_test, y_test = make(num_test)
    return Dataset(x_train, y_train, x_test, y_test, CIFAR_CLASSES, "synthetic")


def resolve_source(source: str | None = None) -> tuple[str, str]:
    """A cheap check, before starting work, that `source` can be had without decoding it.

    Args:
        source: as for `load_cifar10`.

    Returns:
        (the source to use, a notice for the page or ""): "synthetic" with a notice when the
        source is a missing path, or "keras" while CIFAR-10 was never downloaded and cannot be.
    """
    source = str(source or default_source()).strip()
    if source == "synthetic":
        return source, ""
    if source == "keras":
        if _keras_cifar_cached():
            return source, ""
        if host_reachable():
            return source, ""
        return "synthetic", ("CIFAR-10 cannot be downloaded here (offline) and EXPLORER_DATA "
                             "is not set: using generated data instead.")
    if Path(source).expanduser().exists():  # absolute, so a job in another folder finds it
        return str(Path(source).expanduser().resolve()), ""
    return "synthetic", f"data source {source!r} not found: using generated data instead."


def _keras_cifar_cached() -> bool:
    """Whether `keras.datasets.cifar10` has its files already (Keras 3 extracts them to
    KERAS_HOME/datasets/cifar-10-batches-py-target/cifar-10-batches-py; Keras 2 did not nest)."""
    datasets = keras_home() / "datasets"
    return any((folder / "test_batch").exists() for folder in (
        datasets / "cifar-10-batches-py-target" / "cifar-10-batches-py", datasets / "cifar-10-batches-py"))


def keras_home() -> Path:
    """Where Keras keeps downloads (KERAS_HOME, else ~/.keras), as keras.src.backend.config."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


# Answers of host_reachable: url -> (answer, when asked). A process-wide memo, like lru_cache.
_REACHABLE: dict[str, tuple[bool, float]] = {}
_RECHECK_OFFLINE_S = 300


def host_reachable(url: str = "https://www.cs.toronto.edu") -> bool:
    """Whether a download host answers within 3 s. A yes is kept for the process; a no is
    asked again after 5 minutes (a network can come back). Every Start asks, and an offline
    probe would otherwise wait out its timeout each time."""
    answer, asked = _REACHABLE.get(url, (None, 0.0))
    if answer or (answer is False and time.time() - asked < _RECHECK_OFFLINE_S):
        return answer
    try:
        with urllib.request.urlopen(url, timeout=3):
            answer = True
    except urllib.error.HTTPError:  # the host answered (a 403 for a bare bucket root): online
        answer = True
    except OSError:
        answer = False
    _REACHABLE[url] = (answer, time.time())
    return answer
