"""Classify images with shipped or session-trained checkpoints.

One preprocessing path: `prepare` turns any upload into the 32x32 uint8 RGB image the model
sees, and the model normalizes it itself (`models.py`), exactly as in training and
evaluation. Checkpoints are named, never addressed by a path from a request: shipped ones
by their manifest name, session ones by job id (looked up by `jobs.JobManager`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .specs import CIFAR_CLASSES

# Shipped checkpoints; EXPLORER_PRETRAINED points elsewhere (tests, benchmarks, own models).
PRETRAINED = Path(os.environ.get("EXPLORER_PRETRAINED",
                                 Path(__file__).resolve().parents[1] / "pretrained"))
MAX_PIXELS = 40_000_000  # refuse decompression bombs (a 4000x3000 photo is 12 M)
MAX_BYTES = 10 * 1024 * 1024


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


@functools.lru_cache(maxsize=6)
def _load(path: str, mtime_ns: int):
    from .training import load_checkpoint

    return load_checkpoint(path)


def load(path: Path):
    """A loaded model, cached per file (and reloaded when the file changes)."""
    path = Path(path)
    return _load(str(path), path.stat().st_mtime_ns)


# ----------------------------------------------------------------------------- images


def _open(image) -> Image.Image:
    """A PIL image from a path, bytes, a numpy array or a PIL image; clear errors otherwise."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3) or image.size == 0 or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4)):
            raise ValueError(f"not an image array (shape {image.shape}): gray, RGB or RGBA")
        array = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image  # Pillow wants (H, W)
        if array.dtype != np.uint8:
            top = float(array.max()) if array.size else 1.0
            array = np.clip(array / (top if top > 1 else 1.0) * 255, 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise ValueError("the uploaded file is missing")
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
        image = path.read_bytes()
    if isinstance(image, (bytes, bytearray)):
        if not image:
            raise ValueError("the file is empty")
        # only raster formats people upload: Pillow would otherwise open whatever it
        # recognizes by content (a PostScript file named x.png runs Ghostscript)
        return Image.open(io.BytesIO(image), formats=UPLOAD_FORMATS)
    raise ValueError("no image given")


def _upload_formats() -> tuple[str, ...]:
    Image.init()  # the raster formats people upload, as far as this Pillow reads them
    wanted = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "PPM", "AVIF")
    return tuple(name for name in wanted if name in Image.OPEN)


UPLOAD_FORMATS = _upload_formats()  # JPEG covers MPO (multi-picture JPEGs from cameras)


def prepare(image, size: int = 32) -> np.ndarray:
    """The size x size x 3 uint8 image the model sees (32x32 for the CIFAR-10 nets).

    Handles EXIF rotation, animation (first frame), transparency (composited on white),
    palette, grayscale, 16-bit and CMYK images; center-crops to a square and resizes with
    antialiasing.

    Args:
        image: a file path, the file's bytes, a numpy array (gray, RGB or RGBA; arrays that
            are not uint8 are rescaled to [0, 255]) or a PIL image.
        size: side of the output in pixels.

    Returns:
        A (size, size, 3) uint8 RGB array.

    Raises:
        ValueError: no image, a missing, empty or too large (over 10 MB) file, a non-image,
            a truncated or corrupt file, or a decompression bomb (over 40 million pixels).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = _open(image)
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"the image is too large ({img.width}x{img.height} pixels; "
                                 f"at most {MAX_PIXELS // 1_000_000} million)")
            img.seek(0)  # first frame of an animation
            if img.format in ("JPEG", "MPO"):
                img.draft(None, (8 * size, 8 * size))  # decode a big photo at 1/2-1/8 scale
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            side = min(img.size)
            if side < 1:
                raise ValueError("the image has no pixels")
            img = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS,
                               centering=(0.5, 0.5)) if img.size != (size, size) else img
            return np.asarray(img, dtype=np.uint8).copy()
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError("this file is not an image this app can read, or it is too large") from None
        except (OSError, SyntaxError, EOFError) as err:
            raise ValueError(f"the image cannot be decoded (truncated or corrupt: {err})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grayscale: scale to 8 bits
        array = np.asarray(img, dtype=np.float32)
        low = min(float(array.min()), 0.0)  # 32-bit images may hold negative values
        span = (float(array.max()) - low) or 1.0
        return Image.fromarray(((array - low) / span * 255).clip(0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "F":
        array = np.asarray(img, dtype=np.float64)
        span = (array.max() - array.min()) or 1.0
        return Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


# Sketch backgrounds a user can draw on (a red car on a grey road).
BACKGROUNDS = {"grey road": (128, 128, 128), "sky blue": (135, 190, 235), "grass green": (70, 140, 60),
               "sea blue": (30, 90, 160), "sand": (220, 200, 150), "white": (255, 255, 255)}


def sketch_background(color: str, size: int = 256) -> np.ndarray:
    """A size x size RGB canvas filled with one of `BACKGROUNDS`.

    Args:
        color: a key of `BACKGROUNDS`, such as "grey road".
        size: side of the canvas in pixels.

    Returns:
        A (size, size, 3) uint8 array.

    Raises:
        ValueError: `color` is not a key of `BACKGROUNDS`.
    """
    if color not in BACKGROUNDS:
        raise ValueError(f"unknown background {str(color)[:30]!r}; one of {', '.join(BACKGROUNDS)}")
    return np.zeros((size, size, 3), np.uint8) + np.array(BACKGROUNDS[color], np.uint8)


def sketch_image(value):
    """The composite image of a gr.Sketchpad / ImageEditor value (dict or array)."""
    if isinstance(value, dict):
        value = value.get("composite")
    if value is None:
        raise ValueError("draw something first")
    return value


# ----------------------------------------------------------------------------- classify


def classify(model, image, top: int = 5) -> tuple[dict, np.ndarray]:
    """The model's most likely classes for an image, and the image it saw.

    Args:
        model: a loaded `ResNet` (see `load`).
        image: anything `prepare` accepts (path, bytes, numpy array or PIL image).
        top: how many classes to return.

    Returns:
        ({class: probability} for the `top` classes, most likely first; the 32x32x3 uint8
        image the model saw).

    Raises:
        ValueError: the image cannot be read (see `prepare`).
    """
    from .training import predict

    pixels = prepare(image)
    probs = predict(model, pixels[None])[0]
    classes = class_names(model)
    order = np.argsort(probs)[::-1][:top]
    return {classes[i]: float(probs[i]) for i in order}, pixels


def class_names(model) -> list[str]:
    """The model's own class names, else CIFAR-10's for a 10-way net, else indices."""
    names = getattr(model, "class_names", None)
    if names:
        return list(names)
    count = model.spec.num_classes
    return list(CIFAR_CLASSES) if count == len(CIFAR_CLASSES) else [str(i) for i in range(count)]


def enlarge(pixels: np.ndarray, factor: int = 6) -> np.ndarray:
    """The same pixels, each shown as a factor x factor square (no smoothing), for display.

    Args:
        pixels: an (H, W, C) image array.
        factor: how many display pixels each image pixel becomes along each side.

    Returns:
        An (H * factor, W * factor, C) array of the same dtype.
    """
    return np.kron(pixels, np.ones((factor, factor, 1), dtype=pixels.dtype))


# ----------------------------------------------------------------------------- shipping


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
            holds no finished epoch, it finished an epoch while being shipped, the checkpoint cannot be loaded, the data cannot be had, or the manifest
            is damaged.
    """
    import re
    import shutil

    from .training import evaluate

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
        result = evaluate(copy, source)
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
        "test_accuracy": result["test_accuracy"], "n": result["n"],
        "data": (f"CIFAR-10 test set (JPEG copy), {Path(source).name}"
                 if Path(source).name == "cifar10-jpeg.tar.gz" else Path(source).name),
        "sha256": sha,
        "config": config,
    }
    entries = [e for e in manifest(root) if e["name"] != name] + [entry]
    tmp = root / "manifest.json.tmp"  # whole or not at all: the app reads it at any time
    tmp.write_text(json.dumps({"checkpoints": entries}, indent=1))
    os.replace(tmp, root / "manifest.json")
    return entry


def error_history(epochs: list[dict], digits: int | None = None) -> list[dict]:
    """Per-epoch training and test error from a run's history.

    Args:
        epochs: `history.json`'s "epochs": dicts with "epoch", "accuracy" and "val_accuracy".
        digits: rounds the errors to this many decimals; None keeps them as they are.

    Returns:
        A list of {"epoch", "train_error", "test_error"}, one per epoch.
    """
    def error(accuracy):
        return 1 - accuracy if digits is None else round(1 - accuracy, digits)

    return [{"epoch": e["epoch"], "train_error": error(e["accuracy"]),
             "test_error": error(e["val_accuracy"])} for e in epochs]


def shipped_histories(root: Path | None = None, version: int | None = None) -> list[dict]:
    """Every shipped run's per-epoch training and test errors, from `histories/`.

    Args:
        root: the folder of shipped checkpoints, their manifest and `histories/`; None for
            `PRETRAINED` ($EXPLORER_PRETRAINED, else `pretrained/`).
        version: keeps only the runs of one ResNet version; None keeps all.

    Returns:
        A list, in manifest order, of {"label", "depth", "version", "residual",
        "planned_epochs", "epochs"}: `epochs` is the per-epoch list of {"epoch",
        "train_error", "test_error", ...} from `histories/`. Entries without a history file
        are left out.

    Raises:
        ValueError: the manifest is damaged, or an entry describes no valid network.
    """
    root = PRETRAINED if root is None else Path(root)
    from .specs import make_spec

    runs = []
    for entry in manifest(root):
        path = Path(root) / "histories" / f"{entry['name']}.json"
        if path.exists() and (version is None or entry.get("version") == version):
            missing = {"depth", "version", "residual", "shortcut"} - set(entry)
            if missing:
                raise ValueError(f"pretrained/manifest.json: {entry['name']} has a history but no "
                                 f"{', '.join(sorted(missing))}")
            spec = make_spec(entry["depth"], entry["version"], residual=entry["residual"],
                             shortcut=entry["shortcut"])
            runs.append({"label": spec.name, "depth": spec.depth, "version": spec.version,
                         "residual": spec.residual,
                         "planned_epochs": entry.get("planned_epochs"),
                         "epochs": json.loads(path.read_text())["epochs"]})
    return runs


# The four runs of the paper's Figures 1 and 6 that the degradation view is about.
DEGRADATION_RUNS = ("Plain-20 v1", "Plain-56 v1", "ResNet-20 v1", "ResNet-56 v1")


def degradation_reading(runs: list[dict]) -> str:
    """What the runs show, in words computed from their numbers (Markdown).

    Compares the shallow and the deep net of each kind at the last epoch both reached (so a
    run still in training is compared fairly), and a plain net with its residual twin.

    Args:
        runs: dicts as returned by `shipped_histories` (a run without "depth", e.g. a live
            job, is listed but not compared).
    """
    if not runs:
        return "No shipped training histories yet (see `pretrained/README.md`)."
    lines = []
    for run in runs:
        last = run["epochs"][-1] if run["epochs"] else None
        if last is None:
            continue
        planned = run.get("planned_epochs")
        of = f" of {planned}" if planned and planned != len(run["epochs"]) else ""
        best = min(e["test_error"] for e in run["epochs"])
        lines.append(f"- **{run['label']}** after {last['epoch']}{of} epochs: training error "
                     f"{last['train_error']:.1%}, test error {last['test_error']:.1%} (best {best:.1%}).")

    def at(run, epoch):
        for entry in run["epochs"]:
            if entry["epoch"] == epoch:
                return entry
        raise ValueError(f"the history of {run['label']} has no epoch {epoch}")

    def compare(first, second, what):
        """(a sentence, whether `second` trains worse than `first`)."""
        epoch = min(first["epochs"][-1]["epoch"], second["epochs"][-1]["epoch"])
        a, b = at(first, epoch), at(second, epoch)
        worse = b["train_error"] > a["train_error"]
        return (f"- {what}: at epoch {epoch}, **{second['label']}** has {'higher' if worse else 'lower'} "
                f"training error than **{first['label']}** ({b['train_error']:.1%} against "
                f"{a['train_error']:.1%}; test error {b['test_error']:.1%} against {a['test_error']:.1%})."), worse

    # the paper's comparison: v1 nets only (a v2 bottleneck net is another family)
    known = {(r["residual"], r["depth"]): r for r in runs
             if r.get("depth") and r.get("version") == 1 and r["epochs"]}
    findings = []
    for residual, kind in ((False, "plain"), (True, "residual")):
        depths = sorted(d for res, d in known if res == residual)
        if len(depths) >= 2:
            line, worse = compare(known[residual, depths[0]], known[residual, depths[-1]], f"Deeper {kind} net")
            if worse and not residual:
                line += (" Higher training error for the deeper plain net is the degradation problem "
                         "(it is not overfitting: the training error itself is worse).")
            findings.append(line)
    for depth in sorted({d for _, d in known}):
        if (False, depth) in known and (True, depth) in known:
            findings.append(compare(known[False, depth], known[True, depth], f"Shortcuts at depth {depth}")[0])
    missing = [name for name in DEGRADATION_RUNS if name not in {r["label"] for r in runs}]
    text = "\n".join(lines)
    if findings:
        text += "\n\n**What these runs show**\n\n" + "\n".join(findings)
    if missing:
        text += (f"\n\nNot shipped yet: {', '.join(missing)}; comparisons are made only between shipped "
                 "runs (`pretrained/README.md` says how the rest is being trained).")
    return text


# ----------------------------------------------------------------------------- Grad-CAM


def gradcam_map(model, pixels: np.ndarray, class_name: str | None = None) -> tuple[np.ndarray, int, float]:
    """The Grad-CAM heat of one prepared image: ReLU(sum_k w_k A^k) with w_k the mean
    gradient of the class's logit over feature map A^k, scaled to a peak of 1.

    Args:
        model: a loaded `ResNet`.
        pixels: a (32, 32, 3) uint8 image, as `prepare` returns.
        class_name: one of the model's classes; None (or "" or "predicted") for the predicted one.

    Returns:
        (the (h, w) heat of the last feature map in [0, 1], the class's index, its probability).

    Raises:
        ValueError: `class_name` is not one of the model's.
    """
    import tensorflow as tf

    probs, outputs = model.forward(tf.constant(pixels[None]), training=False, collect=True)
    features = model.feature_map(outputs[-1])
    names = class_names(model)
    if class_name in (None, "", "predicted"):
        index = int(np.argmax(probs[0]))
    elif class_name in names:
        index = names.index(class_name)
    else:
        raise ValueError(f"unknown class {str(class_name)[:30]!r}; one of {', '.join(names)}")
    with tf.GradientTape() as tape:
        tape.watch(features)
        score = model.logits(features)[0, index]  # before the softmax (Selvaraju et al.)
    grads = tape.gradient(score, features)[0].numpy()
    fmap = features[0].numpy().astype(np.float32)
    cam = np.maximum((fmap * grads.mean(axis=(0, 1))).sum(-1), 0)
    return cam / (float(cam.max()) or 1.0), index, float(probs[0][index])


def gradcam(model, image, class_name: str | None = None, factor: int = 6) -> tuple[np.ndarray, str]:
    """Grad-CAM (Selvaraju et al. 2017) on the last convolutional feature map: where in the
    image the evidence for a class is. The class score differentiated is the logit, before
    the softmax, so each class gets its own map.

    Args:
        model: a loaded `ResNet` (see `load`).
        image: anything `prepare` accepts.
        class_name: one of the model's classes; None explains the predicted class.
        factor: how many times the 32x32 input is enlarged for display.

    Returns:
        (the heat overlaid on the enlarged input, an RGB uint8 array; a Markdown caption
        naming the class and its probability).

    Raises:
        ValueError: the image cannot be read, or `class_name` is not one of the model's.
    """
    pixels = prepare(image)
    cam, index, probability = gradcam_map(model, pixels, class_name)
    names = class_names(model)
    size = pixels.shape[0] * factor
    heat = np.asarray(Image.fromarray((cam * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR),
                      dtype=np.float32) / 255
    # grayscale picture under a red-to-yellow heat, so the heat shows on any colors
    gray = np.kron(pixels, np.ones((factor, factor, 1), dtype=np.uint8)).astype(np.float32).mean(-1)
    base = np.repeat(gray[..., None], 3, -1)
    color = np.stack([np.full_like(heat, 255), 255 * heat, np.zeros_like(heat)], -1)
    overlay = base * (1 - 0.6 * heat[..., None]) + color * 0.6 * heat[..., None]
    caption = (f"Grad-CAM for **{names[index]}** ({probability:.1%}): the warmer (red to yellow), the more a "
               "region raises its score."
               if cam.max() > 0 else
               f"Grad-CAM for **{names[index]}** ({probability:.1%}): no region raises its score; "
               "the evidence the net sees speaks against this class everywhere.")
    return overlay.clip(0, 255).astype(np.uint8), caption


# ----------------------------------------------------------------------------- ImageNet


IMAGENET_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"  # Keras's


@functools.lru_cache(maxsize=1)
def _imagenet_model(depth: int):
    import keras

    from .data import host_reachable, keras_home

    builders = {50: keras.applications.ResNet50, 101: keras.applications.ResNet101,
                152: keras.applications.ResNet152}
    weights = keras_home() / "models" / f"resnet{depth}_weights_tf_dim_ordering_tf_kernels.h5"
    if depth in builders and not weights.exists() and not host_reachable("https://storage.googleapis.com"):
        raise ValueError("the ImageNet weights cannot be downloaded here (no internet). Online, this "
                         "works with keras.applications.")
    from .models import BUILD_LOCK

    if depth not in builders:
        raise ValueError("keras.applications ships ImageNet weights for ResNet-50, 101 and 152")
    try:
        # the download (about 100 MB, no timeout in get_file) happens before BUILD_LOCK, which
        # every model build and checkpoint load of the app waits for; the same file and cache
        # as keras.applications' weights="imagenet"
        path = keras.utils.get_file(weights.name, IMAGENET_WEIGHTS_URL + weights.name, cache_subdir="models")
        with BUILD_LOCK:  # its initializers draw from the global random state (see models)
            return builders[depth](weights=path)
    except Exception as err:  # noqa: BLE001 - urllib, HTTP and file errors alike
        raise ValueError("the ImageNet weights cannot be downloaded here (no internet?): "
                         f"{type(err).__name__}. Online, this works with keras.applications.") from None


def classify_imagenet(image, depth: int = 50, top: int = 5) -> dict:
    """Top classes of a photo from a keras.applications ResNet with ImageNet weights.

    Args:
        image: anything `prepare` accepts; it is center-cropped and resized to 224x224.
        depth: 50, 101 or 152, the depths keras.applications ships weights for.
        top: how many classes to return.

    Returns:
        {ImageNet class name: probability} for the `top` classes, most likely first.

    Raises:
        ValueError: the image cannot be read, `depth` has no weights, or the weights or the
            class names cannot be downloaded.
    """
    import keras

    pixels = prepare(image, size=224).astype(np.float32)  # the same defensive decoding
    model = _imagenet_model(int(depth))
    probs = model.predict(keras.applications.resnet50.preprocess_input(pixels[None]), verbose=0)
    try:
        decoded = keras.applications.resnet50.decode_predictions(probs, top=top)[0]
    except Exception as err:  # noqa: BLE001 - the class index is another download
        raise ValueError(f"the ImageNet class names cannot be downloaded here: {type(err).__name__}") from None
    return {name: float(p) for _, name, p in decoded}
