"""Inside a net, on one image: what every block adds to what passes by its shortcut.

For each block of a checkpoint: its input x, its residual branch F(x), the sum x + F(x) at the
add and, in v1, the ReLU after it, from one forward pass of a Keras sub-model whose outputs
are all of them (built once per model, run eagerly until `trace` compiles it, so a request
costs one pass, not one a block). Per block the numbers say how much the block changes the
signal: ||F(x)|| / ||x|| and the cosine between x and x + F(x) (Jastrzębski et al. 2017 find
later blocks of a trained ResNet make small refinements: a small ratio, a cosine near 1; Veit
et al. 2016 that they behave like an ensemble of shallow paths). Where the block's shortcut is
a projection (a block that changes shape), "x" at the add is the projected input, shortcut(x):
the numbers and maps of x there are its. A plain net has no shortcut and no add: its F(x) is
what the block computes, and its sum, ratio and cosine are None.

The maps are the channels that carry the most energy (sum of squares) of the block's result
(x + F(x), or a plain block's F(x)), the same channels of every tensor of the block, on one
symmetric colour scale per block so x, F(x) and x + F(x) can be compared; drawing them is the
views' job. With a read-out (`readout.readout`'s probes), each block also says the three
classes its probe reads in the image.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from explorer.core.checks import one_of
from explorer.core.limits import MAX_INSIDE_CHANNELS, MAX_INSIDE_SAMPLES
from explorer.core.specs import whole_number
from explorer.data.images import prepare
from explorer.studies.classify import class_names
from explorer.studies.readout import readout_top

MAP_CHANNELS = 4  # channel maps per tensor, by default
BATCH = 16  # images per pass of `block_ratios` (every block's every tensor is kept for a batch)
_BUILD = threading.Lock()  # one sub-model per model, even when two requests ask at once
PARTS = ("x", "skip", "branch", "sum", "relu")  # what the sub-model gives per block, where it exists


def _graph(model):
    """The Keras sub-model: raw pixels -> every block's parts (see `PARTS`) and the probabilities,
    through the model's own layers (shared weights), in inference mode.

    Returns:
        (the functional `keras.Model`, its layout: per block {part: output index}, and the
        index of the probabilities).
    """
    import keras  # deferred: importing this module must not load Keras

    inputs = keras.Input(model.spec.input_shape, name="pixels")
    x = model.normalize(inputs)
    for layer in model.stem:
        x = layer(x, training=False)
    outputs, index, layout = [], {}, []

    def keep(tensor) -> int:
        if id(tensor) not in index:  # a v2 block's output is its sum: one output, two names
            index[id(tensor)] = len(outputs)
            outputs.append(tensor)
        return index[id(tensor)]

    for block in model.blocks:
        branch, total, out = block.parts(x, training=False)
        parts = {"x": keep(x), "branch": keep(branch)}
        if block.add is not None:
            skip = x
            for layer in block.shortcut:  # the projection (or zero-pad) the add receives x through
                skip = layer(skip, training=False)
            parts.update(skip=keep(skip), sum=keep(total))
        if block.out is not None:
            parts["relu"] = keep(out)
        layout.append(parts)
        x = out
    for layer in model.head:
        x = layer(x, training=False)
    probs = keep(x)
    return keras.Model(inputs, outputs, name=f"{model.name}_inside"), layout, probs


@dataclass
class _Kept:
    """A model's sub-model, kept on the model: its layout, and its compiled pass once traced."""

    sub: object
    layout: list
    probs: int
    traced: object = None


def _kept(model) -> _Kept:
    """The model's sub-model, built on first use (a fraction of a second)."""
    with _BUILD:
        kept = getattr(model, "_explorer_inside", None)
        if kept is None:
            kept = model._explorer_inside = _Kept(*_graph(model))
    return kept


def trace(model) -> None:
    """Traces the compiled pass of a model's sub-model (a warm-up, after a first request): later
    requests take a few tens of milliseconds on ResNet-56, where the eager pass takes a few
    tenths of a second and tracing about two seconds, which the first request never waits for."""
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    kept = _kept(model)
    if kept.traced is None:
        signature = [tf.TensorSpec((None, *model.spec.input_shape), tf.float32)]
        fn = tf.function(lambda x: kept.sub(x, training=False), input_signature=signature)
        fn.get_concrete_function()  # traced now, not at the next request
        kept.traced = fn


def is_traced(model) -> bool:
    """Whether `trace` has run for this loaded model (in this process)."""
    return _kept(model).traced is not None


def block_tensors(model, pixels: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """Every block's parts for a batch of images, from one forward pass (the compiled one once
    `trace` has run, else eager).

    Args:
        model: a loaded CIFAR-10 `ResNet`.
        pixels: raw pixels in [0, 255], (n, 32, 32, 3).

    Returns:
        (per block, input to output, {part: (n, h, w, c) float32 array} for the parts it has:
        "x" its input, "branch" F(x), "skip" what its add receives x as, "sum" x + F(x), "relu"
        the ReLU after the sum (v1) or after a plain block's branch; the (n, classes) probabilities).
    """
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    kept = _kept(model)
    x = tf.constant(np.asarray(pixels, np.float32))
    outputs = kept.traced(x) if kept.traced is not None else kept.sub(x, training=False)
    values = [np.asarray(tf.cast(value, tf.float32)) for value in outputs]
    return [{part: values[i] for part, i in parts.items()} for parts in kept.layout], values[kept.probs]


def _norm(values: np.ndarray) -> np.ndarray:
    """The L2 norm of each image's tensor, in float64."""
    flat = values.reshape(len(values), -1).astype(np.float64)
    return np.sqrt(np.einsum("ij,ij->i", flat, flat))


def block_numbers(parts: dict) -> dict:
    """One block's numbers per image (see the module's notes).

    Args:
        parts: a block's parts as `block_tensors` gives them.

    Returns:
        {"input_norm", "skip_norm", "branch_norm", "sum_norm", "output_norm", "branch_ratio",
        "cosine"}: (n,) float64 arrays; those of the add (skip, sum, ratio, cosine) are None in
        a plain block. The output is what the next block receives (after the ReLU in v1).
    """
    output = parts.get("relu", parts.get("sum", parts["branch"]))
    numbers = {"input_norm": _norm(parts["x"]), "skip_norm": None, "branch_norm": _norm(parts["branch"]),
               "sum_norm": None, "output_norm": _norm(output), "branch_ratio": None, "cosine": None}
    if "sum" in parts:
        skip, total = parts["skip"], parts["sum"]
        numbers.update(skip_norm=_norm(skip), sum_norm=_norm(total))
        numbers["branch_ratio"] = numbers["branch_norm"] / np.maximum(numbers["skip_norm"], 1e-30)
        dots = np.einsum("ij,ij->i", skip.reshape(len(skip), -1).astype(np.float64),
                         total.reshape(len(total), -1).astype(np.float64))
        numbers["cosine"] = dots / np.maximum(numbers["skip_norm"] * numbers["sum_norm"], 1e-30)
    return numbers


def _top_channels(values: np.ndarray, count: int) -> list[int]:
    """The `count` channels of an (h, w, c) tensor with the most energy, most first."""
    energy = np.square(values.astype(np.float64)).sum((0, 1))
    return [int(c) for c in np.argsort(energy, kind="stable")[::-1][:count]]


def block_maps(parts: dict, count: int = MAP_CHANNELS) -> dict:
    """One image's channel maps of one block, on one colour scale (see the module's notes).

    Args:
        parts: a block's parts for one image, {part: (h, w, c)}.
        count: channels per tensor.

    Returns:
        {"channels", "x", "x_is", "x_channels", "branch", "sum", "relu", "scale"}: the channels
        chosen by the energy of x + F(x) (a plain block's F(x)); (count, h, w) float32 maps of
        each tensor at them (None where the block has no such tensor); what the "x" maps show
        ("x", or "shortcut(x)" at a projection) and at which channels (x's own most energetic
        where a plain block changes shape); the largest |value| shown, the scale [-scale, scale].
    """
    result = parts.get("sum", parts["branch"])
    channels = _top_channels(result, count)

    def maps(values, at):
        return None if values is None else np.moveaxis(values[..., at], -1, 0).astype(np.float32)

    x, x_is, x_channels = parts["x"], "x", channels
    if "skip" in parts and parts["skip"].shape != x.shape:
        x, x_is = parts["skip"], "shortcut(x)"
    elif x.shape != result.shape:
        x_channels = _top_channels(x, count)
    shown = {"x": maps(x, x_channels), "branch": maps(parts["branch"], channels),
             "sum": maps(parts.get("sum"), channels), "relu": maps(parts.get("relu"), channels)}
    scale = max(float(np.abs(m).max()) for m in shown.values() if m is not None)
    return {"channels": channels, "x_is": x_is, "x_channels": x_channels, **shown, "scale": scale}


def block_name(model, block) -> str:
    """`block` if it names one of the net's blocks; raises ValueError naming them otherwise."""
    names = [b.name for b in model.blocks]
    return one_of(block, names, "block", f"{model.spec.name}'s blocks, {names[0]} to {names[-1]}")


def _cifar(model):
    if model.spec.family != "cifar":
        raise ValueError(f"{model.spec.name} is an ImageNet net: inside looks into CIFAR-10 nets")


def inside(model, image, block: str | None = None, readout: dict | None = None,
           channels: int = MAP_CHANNELS) -> dict:
    """Every block of a net on one image: its numbers, and one block's maps (module notes).

    Args:
        model: a loaded CIFAR-10 `ResNet` (see `checkpoints.load`).
        image: anything `images.prepare` accepts (a path, bytes, an array, a PIL image).
        block: the block whose maps are returned (a name such as "stage2_block3"); None for none.
        readout: a `readout.readout` result of this net: each block then says its probe's top 3.
        channels: channel maps per tensor, 1 to `limits.MAX_INSIDE_CHANNELS`.

    Returns:
        {"model", "net", "residual", "image", "top", "blocks"}: the 32x32x3 uint8 image seen,
        the model's own top 3 [{"class", "probability"}], and per block {"block", "downsamples",
        "input_norm", "skip_norm", "branch_norm", "sum_norm", "output_norm", "branch_ratio",
        "cosine", "readout_top"} (floats, None where the block has no add or no read-out is
        given), with "maps" (see `block_maps`) for the block asked.

    Raises:
        ValueError: the image cannot be read, the block is not one of the net's, `channels` is
            out of range, the net is not a CIFAR-10 one, or the read-out is of another net.
    """
    _cifar(model)
    block = None if block in (None, "") else block_name(model, block)
    channels = whole_number(channels, "channels", 1, MAX_INSIDE_CHANNELS)
    pixels = prepare(image)
    tensors, probs = block_tensors(model, pixels[None])
    tops = readout_top(readout, [t.get("relu", t.get("sum", t["branch"]))[0].mean((0, 1))
                                 for t in tensors]) if readout else [None] * len(tensors)
    records = []
    for net_block, parts, top in zip(model.blocks, tensors, tops):
        numbers = {key: None if value is None else float(value[0])
                   for key, value in block_numbers(parts).items()}
        record = {"block": net_block.name, "downsamples": net_block.plan.downsamples, **numbers,
                  "readout_top": top}
        if net_block.name == block:
            record["maps"] = block_maps({part: value[0] for part, value in parts.items()}, channels)
        records.append(record)
    names = class_names(model)
    order = np.argsort(probs[0])[::-1][:3]
    return {"model": model.spec.name, "net": model.spec.to_config(), "residual": model.spec.residual,
            "image": pixels, "top": [{"class": names[i], "probability": float(probs[0][i])} for i in order],
            "blocks": records}


def block_ratios(model, images: np.ndarray) -> dict:
    """||F(x)|| / ||x|| and the cosine of each block, averaged over images (the branch_ratio overlay).

    Args:
        model: a loaded residual CIFAR-10 `ResNet`.
        images: raw uint8 pixels, (n, 32, 32, 3), 1 to `limits.MAX_INSIDE_SAMPLES` of them.

    Returns:
        {"blocks", "branch_ratio", "cosine", "n"}: per block the mean over the images of each
        image's ratio and cosine (None in a plain net), and the number of images.

    Raises:
        ValueError: no images or too many, or the net is not a CIFAR-10 one.
    """
    _cifar(model)
    whole_number(len(images), "images", 1, MAX_INSIDE_SAMPLES)
    sums = {"branch_ratio": np.zeros(len(model.blocks)), "cosine": np.zeros(len(model.blocks))}
    for start in range(0, len(images), BATCH):
        tensors, _ = block_tensors(model, images[start: start + BATCH])
        for i, parts in enumerate(tensors):
            numbers = block_numbers(parts)
            for key, total in sums.items():
                total[i] += 0.0 if numbers[key] is None else float(numbers[key].sum())
    add = [block.add is not None for block in model.blocks]
    return {"blocks": [block.name for block in model.blocks], "n": len(images),
            **{key: [float(v) / len(images) if has else None for v, has in zip(values, add)]
               for key, values in sums.items()}}
