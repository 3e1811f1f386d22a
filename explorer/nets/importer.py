"""Bring your own ResNet: a user's `.keras` or `.h5` CIFAR-10 ResNet made a model of this app,
its preprocessing inside it, and the mapping of its weights proven before anything is written.

`import_model(path, out, ...)` reads the file as data (`import_files`), refuses code in it
(`import_layers`), recognises the net (`import_graph`), builds this app's `ResNet` of that spec
with the preprocessing the file expects stored in its input statistics, copies the weights
layer by layer, and proves the copy (`import_proof`): the file's model on the images
preprocessed as it expects and the imported one on raw pixels give the same outputs. Only then
is the run folder written (`import_run`), which `evaluate`, `ship` and the studies read like a
training run's.

The tutorial (`subtract_pixel_mean=True`) feeds its nets x/255 minus the per-pixel mean of its
training images: stored as the mean 255*m per pixel and a std of 255, so the model's own
`(x - mean) / std` computes the same from raw pixels. A checkpoint of this app (its `ResNet`
class) already normalizes its raw pixels: it is imported as it is ("own").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.core.checks import one_of
from explorer.data.cifar import load_cifar10
from explorer.nets import import_files, import_graph, import_layers
from explorer.nets.import_files import ModelFile
from explorer.nets.import_proof import app_outputs, file_outputs, proof_data, proof_images, prove
from explorer.nets.import_run import check_out, write_run

PREPROCESSING = ("tutorial", "tutorial-no-mean", "raw")
MAX_MEAN_BYTES = 2**20  # a --mean .npy file: a 32x32x3 float64 mean is 24 kB
MEAN_SHAPES = ((32, 32, 3), (1, 32, 32, 3), (3,))


@dataclass
class Preprocessing:
    """What the file's model expects, and how the imported model stores it."""

    name: str  # one of PREPROCESSING, or "own"
    mean: np.ndarray | None  # the tutorial's per-pixel mean, in its units (x/255)
    source: str  # where the mean came from

    def input_stats(self) -> dict:
        """The `ResNet` input statistics that compute this preprocessing from raw pixels."""
        if self.name == "raw":
            return {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
        mean = [0.0, 0.0, 0.0] if self.mean is None else (self.mean.astype(np.float64) * 255).tolist()
        return {"mean": mean, "std": [255.0, 255.0, 255.0]}

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Raw uint8 pixels as the file's model takes them (the tutorial's arithmetic, float32)."""
        x = images.astype(np.float32)
        if self.name == "raw":
            return x
        x = x / 255
        return x - self.mean if self.mean is not None else x


def read_mean(path) -> np.ndarray:
    """A per-pixel (32x32x3) or per-channel (3) mean in the tutorial's units from a `.npy` file.

    Raises:
        ValueError: no such file, over `MAX_MEAN_BYTES`, not a plain NumPy array (pickles are
            never loaded), of another shape, not finite, or outside 0..1 (pixel units).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no mean file at {path.name}")
    if path.stat().st_size > MAX_MEAN_BYTES:
        raise ValueError(f"{path.name} is over {MAX_MEAN_BYTES // 1024} kB: a mean image is 32x32x3 numbers")
    try:
        mean = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path.name} is not a NumPy .npy array ({type(err).__name__})") from None
    if mean.shape not in MEAN_SHAPES or mean.dtype.kind not in "fiu":
        raise ValueError(f"{path.name} holds a {mean.dtype} array of shape {mean.shape}; the mean is "
                         "32x32x3 (per pixel, the tutorial's) or 3 numbers (per channel)")
    mean = mean.reshape(mean.shape[-3:] if mean.ndim > 1 else (3,)).astype(np.float32)
    if not np.isfinite(mean).all() or mean.min() < 0 or mean.max() > 1:
        raise ValueError(f"{path.name}: the mean is in the tutorial's units, x/255 (values 0 to 1); this "
                         f"one runs from {mean.min():.3g} to {mean.max():.3g}")
    return mean


def _preprocessing(name, data, mean) -> tuple[Preprocessing, object]:
    """The preprocessing asked for, and the data set the proof's images come from."""
    if name == "tutorial" and mean is None:
        dataset = load_cifar10(data)  # the tutorial's mean: over the training images, in float64
        pixel_mean = (dataset.x_train.mean(axis=0, dtype=np.float64) / 255).astype(np.float32)
        return Preprocessing(name, pixel_mean, f"the training images of {dataset.source}"), dataset
    dataset = proof_data(data)
    if name == "tutorial":
        return Preprocessing(name, read_mean(mean), Path(mean).name), dataset
    return Preprocessing(name, None, ""), dataset


def _app_layers(model) -> dict:
    """This app's model's layers by name (stem, blocks' branches and shortcuts, head)."""
    found = [*model.stem, *(layer for block in model.blocks for layer in block.branch + block.shortcut),
             *model.head]
    return {layer.name: layer for layer in found}


def _values(kind: str, given: dict, args: dict, epsilon: float, where: str) -> dict:
    """A file layer's weights as this app's layer names them (missing ones filled in)."""
    if kind == "bn":
        # this app's batch norm divides by sqrt(variance + its epsilon): the file's epsilon goes
        # into the variance, which gives the same output
        variance = given["moving_variance"] + (args.get("epsilon", 1e-3) - epsilon)
        if (variance < 0).any():
            raise ValueError(f"{where}: its epsilon {args.get('epsilon')} cannot be carried over into "
                             f"this app's {epsilon} (a variance would turn negative)")
        size = len(given["moving_mean"])
        return {"gamma": given.get("gamma", np.ones(size, np.float32)),
                "beta": given.get("beta", np.zeros(size, np.float32)),
                "moving_mean": given["moving_mean"], "moving_variance": variance}
    kernel = given["kernel"]
    return {"kernel": kernel, "bias": given.get("bias", np.zeros(kernel.shape[-1], np.float32))}


def copy_weights(model, pairs: list, weights: dict, graph, name: str) -> None:
    """Sets each mapped layer of `model` from the file's layer it matched.

    Raises:
        ValueError: a layer's weights are missing from the file or of another shape.
    """
    layers = _app_layers(model)
    for theirs, ours, kind in pairs:
        layer = layers[ours]
        epsilon = getattr(layer, "epsilon", 0.0)
        try:
            values = _values(kind, weights[theirs], graph.layers[theirs].args, epsilon,
                             f"{name}: layer {theirs!r}")
        except KeyError as err:
            raise ValueError(f"{name}: layer {theirs!r} has no {err.args[0]} weights") from None
        ordered = [np.asarray(values[variable.name], np.float32) for variable in layer.weights]
        for variable, value in zip(layer.weights, ordered):
            if tuple(variable.shape) != value.shape:
                raise ValueError(f"{name}: {theirs!r}'s {variable.name} is {value.shape}, where {ours} "
                                 f"takes {tuple(variable.shape)}")
        layer.set_weights(ordered)


def _reference(file: ModelFile, graph):
    """The file's own model, and its weights by layer: Keras' load (safe_mode) of a `.keras`
    file, or the `.h5` file's graph built with Keras' classes and given its arrays."""
    if file.format == "keras":
        model = import_files.load_keras_model(file.path)
        return model, {layer.name: {variable.name: np.asarray(variable) for variable in layer.weights}
                       for layer in model.layers}
    return import_layers.functional_model(graph, file.weights), file.weights


def _foreign(file: ModelFile, preprocess, data, mean):
    """(the imported model, the file's model, the preprocessing, the images, notes)."""
    from explorer.nets.models import build_model  # deferred: the checks above run before Keras loads

    name = file.path.name
    graph = import_layers.parse(file.config, name)
    spec, pairs, logits = import_graph.recognise(graph, name)
    preprocessing, dataset = _preprocessing(preprocess or "tutorial", data, mean)
    reference, weights = _reference(file, graph)
    model = build_model(spec, input_stats=preprocessing.input_stats())
    copy_weights(model, pairs, weights, graph, name)
    images = proof_images(dataset)
    dense = next(theirs for theirs, _, kind in reversed(pairs) if kind == "dense")
    expected = file_outputs(reference, preprocessing.apply(images), dense, spec.depth, logits)
    notes = {"mapping": [{"file": theirs, "model": ours} for theirs, ours, _ in pairs],
             "file_params": int(reference.count_params()), "logits": logits}
    return model, expected, preprocessing, images, dataset, notes


def _own(file: ModelFile, preprocess, data, mean):
    """The same for a checkpoint of this app: it keeps its own input statistics."""
    from explorer.nets.models import build_model  # deferred: the checks above run before Keras loads

    if preprocess is not None or mean is not None:
        raise ValueError(f"{file.path.name} is a checkpoint of this app: it takes raw pixels and "
                         "normalizes them itself; leave out --preprocess and --mean")
    reference = import_files.load_keras_model(file.path)
    if reference.spec.family != "cifar":
        raise ValueError(f"{file.path.name} is {reference.spec.name}, an ImageNet net; CIFAR-10 nets are "
                         "imported")
    model = build_model(reference.spec, input_stats=reference.input_stats)
    model.class_names = reference.class_names
    model.set_weights(reference.get_weights())
    dataset = proof_data(data)
    images = proof_images(dataset)
    notes = {"file_params": int(reference.count_params()), "logits": False}
    return model, app_outputs(reference, images), Preprocessing("own", None, ""), images, dataset, notes


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def import_model(path, out, preprocess: str | None = None, data: str | None = None,
                 mean: str | None = None) -> dict:
    """Imports a `.keras` or `.h5` CIFAR-10 ResNet into the run folder `out`, proven first.

    Args:
        path: the model file (an upload's temporary file, say: its name is only read for messages).
        out: the run folder to write (model.keras, import.json, config.json, history.json); it
            must not exist yet, or be empty. Nothing is written there unless the import succeeds.
        preprocess: what the file's model takes, one of `PREPROCESSING`; None for "tutorial"
            (a checkpoint of this app takes none: it normalizes its own raw pixels).
        data: the data source (see `data.load_cifar10`) of the tutorial's mean (its training
            images) and of the proof's test images; None for the default.
        mean: a `.npy` file of the tutorial's mean (x/255 units) instead of computing it.

    Returns:
        {"depth", "version", "residual", "shortcut", "params", "max_abs_difference",
        "preprocess", "path"}: the net recognised, the imported model's parameters, the largest
        difference of a softmax output between the two nets, the preprocessing stored, the
        run folder.

    Raises:
        ValueError: the arguments, the file (too large, not a model file, truncated, corrupt, a
            zip bomb, code in it, another architecture) or the proof (what differs), one line.
    """
    path, out = Path(path), Path(out)
    check_out(out)
    if preprocess is not None:
        one_of(preprocess, PREPROCESSING, "preprocessing")
    if data is not None and mean is not None:
        raise ValueError("give --data (the mean computed from its training images) or --mean, not both")
    if mean is not None and preprocess not in (None, "tutorial"):
        raise ValueError(f"--mean is the tutorial's preprocessing; {preprocess} subtracts no mean")
    file = import_files.read_model_file(path)
    import_layers.check_code(file.config, path.name)
    build = _own if import_layers.is_own(file.config) else _foreign
    model, expected, preprocessing, images, dataset, notes = build(file, preprocess, data, mean)
    proof = prove(app_outputs(model, images), expected, path.name, preprocessing.name)
    spec = model.spec
    summary = {"depth": spec.depth, "version": spec.version, "residual": spec.residual,
               "shortcut": spec.shortcut if spec.residual else "none", "params": int(model.count_params()),
               "max_abs_difference": proof["max_abs_difference"], "preprocess": preprocessing.name}
    provenance = {**summary, **proof, "file": path.name, "format": file.format, "bytes": path.stat().st_size,
                  "sha256": _sha256(path), "keras_version": file.keras_version, "spec": spec.to_config(),
                  "mean": preprocessing.source, "proof": {"images": len(images), "data": dataset.source},
                  **notes}
    write_run(out, model, provenance)
    return {**summary, "path": str(out)}
