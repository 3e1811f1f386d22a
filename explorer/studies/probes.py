"""Gradient flow: per-layer gradient norms of a net and of its plain/residual twin, measured
with the probe of `nets.gradient_probe`, the depth sweep, and the reading of what they show.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

from explorer.core.caches import BoundedCache
from explorer.core.limits import sweep_depths  # the sweep's request check, used in depth_sweep
from explorer.core.numbers import magnitude
from explorer.core.specs import MAX_DEPTH, MAX_SEED, MAX_VERSION, ResNetSpec, make_spec, whole_number
from explorer.data.cifar import load_or_synthetic
from explorer.nets.gradient_probe import probe_fn
from explorer.nets.models import weight_layers
from explorer.studies.twins import TWINS_LOCK, kept_twins, twins

MAX_PROBE_BATCH = 512  # images in one probe batch (deep nets get fewer, see `largest_batch`)


# ----------------------------------------------------------------------------- twins


def largest_batch(depth: int, requested: int) -> int:
    """The probe batch a net of `depth` gets: `requested`, capped so the tape of a very deep
    net fits in memory (it holds every layer's activations).

    Args:
        depth: the net's weighted layers.
        requested: the images asked for.

    Returns:
        At most `requested` images, and at most 64 at depth 110, 32 at 218, 8 from 880 on.
    """
    return max(1, min(requested, max(8, 64 * 110 // depth)))


def batch_note(depth: int, requested: int, used: int) -> str:
    """What a reading says when the probe used fewer images than asked for, and why."""
    if used >= requested:
        return ""
    return (f"It used **{used} images, not the {requested} asked for**: the backward pass keeps every "
            f"layer's activations, so a net of depth {depth} gets at most {used} here (64 at depth 110, "
            "32 at 218, 8 from 880 on); the norms of a smaller batch are noisier, not smaller or larger.")


@functools.lru_cache(maxsize=8)
def probe_batch(batch_size: int, source: str | None = None, seed: int = 0):
    """A batch of real CIFAR-10 training images (generated ones when none can be had).

    Only the batch is kept in the cache, never the whole dataset; the same arguments return
    the same arrays.

    Args:
        batch_size: images wanted; fewer when the training split is smaller.
        source: the data source (see `data.load_cifar10`); None for the default.
        seed: seed of the random choice of images (without replacement).

    Returns:
        (images, labels, source, notice): uint8 images (batch, 32, 32, 3), int64 labels, the
        source actually loaded, and a notice when generated data stood in (else "").
    """
    data = load_or_synthetic(source)
    rng = np.random.default_rng(seed)
    index = rng.choice(len(data.x_train), size=min(batch_size, len(data.x_train)), replace=False)
    return data.x_train[index].copy(), data.y_train[index].copy(), data.source, data.notice


@dataclass(frozen=True)
class FlowResult:
    spec_name: str
    layers: list  # main-path weight layers, input to output (shared by both twins)
    plain: list  # ||dL/dW|| per layer, plain twin
    residual: list  # same, residual net
    shortcut_layers: list  # projection shortcut convs (residual only)
    shortcut_norms: list
    blocks: list  # block names
    plain_blocks: list  # ||dL/d(block output)||
    residual_blocks: list
    stage_starts: list  # index in `layers` of each stage's first layer
    batch_size: int
    data: str
    notice: str
    loss_plain: float
    loss_residual: float
    traced: bool = False  # both passes ran the traced graph (see `trace`)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_request(depth, version, batch_size=64, seed=0) -> tuple[int, int, int, int]:
    """Reads and checks the raw values of a gradient-flow request, before any work.

    Args:
        depth: weighted layers, as an int, a float or text ("56"); 1 to `MAX_DEPTH` and
            valid for `version`.
        version: 1 or 2, likewise.
        batch_size: images in the batch, 1 to `MAX_PROBE_BATCH`.
        seed: 0 to `specs.MAX_SEED`.

    Returns:
        (depth, version, batch_size, seed) as ints.

    Raises:
        ValueError: a value is malformed or out of range; an invalid depth's message names
            the nearest valid ones.
    """
    depth = whole_number(depth, "depth", 1, MAX_DEPTH)
    version = whole_number(version, "version", 1, MAX_VERSION)
    make_spec(depth, version)  # a CIFAR-10 net: make_spec's default family
    return (depth, version, whole_number(batch_size, "batch size", 1, MAX_PROBE_BATCH),
            whole_number(seed, "seed", 0, MAX_SEED))


def gradient_flow(depth, version, batch_size=64, seed=0, source: str | None = None,
                  progress=None) -> FlowResult:
    """Per-layer gradient norms of a plain net and its residual twin.

    Same initial weights, same batch, training mode.

    Args:
        depth: weighted layers of the CIFAR-10 net (6n+2 for v1, 9n+2 for v2), as a page or
            API call sends it (see `check_request`).
        version: 1 or 2.
        batch_size: images in the batch, 1 to 512; capped for very deep nets so the tape fits
            in memory (64 at depth 110, 32 at 218, 8 at 1202).
        seed: seed of the initial weights and of the choice of images.
        source: the data source (see `data.load_cifar10`); None for the default; generated
            images stand in when it cannot be had.
        progress: optional `progress(fraction, text)` callback, called along the way.

    Returns:
        A `FlowResult`: the norms of both nets per weight layer and per block output.

    Raises:
        ValueError: a value is malformed or out of range (see `check_request`).
    """
    depth, version, batch_size, seed = check_request(depth, version, batch_size, seed)
    spec = make_spec(depth, version)
    report = progress or (lambda fraction, text: None)
    batch_size = largest_batch(spec.depth, batch_size)
    report(0.05, "loading a batch of images")
    probe_batch(batch_size, source, seed)
    report(0.15, f"{spec.name} and its plain twin at seed {seed}")
    return _measure(spec.depth, spec.version, batch_size, seed, source, report)


_MEASURED = BoundedCache(32)  # (depth, version, batch_size, seed, source) -> FlowResult


def _measure(depth, version, batch_size, seed, source, report=None) -> FlowResult:
    """Kept per arguments: a repeated request (say, switching the chart's view) is free."""
    key = (depth, version, batch_size, seed, source)
    known = _MEASURED.get(key)
    if known is not None:
        return known
    report = report or (lambda fraction, text: None)
    report(0.4, f"forward and backward pass of {make_spec(depth, version).name}")
    residual = probe_twin(depth, version, batch_size, seed, source, residual=True)
    report(0.7, "the same for its plain twin")
    result = combine(residual, probe_twin(depth, version, batch_size, seed, source, residual=False))
    _MEASURED.put(key, result)
    return result


def keep_twins(depth, version) -> str:
    """A warm-up's first step: builds the depth's twins in this worker (kept for every seed),
    ahead of the pass `probe_twin` then runs on them. Returns the net's name."""
    depth, version, _, _ = check_request(depth, version, 1, 0)
    with TWINS_LOCK:
        kept_twins(depth, version, "projection")
    return make_spec(depth, version).name


def probe_twin(depth, version, batch_size=64, seed=0, source: str | None = None,
               residual: bool = True, progress=None) -> dict:
    """One twin's half of `gradient_flow`: its forward and backward pass on the probe batch.

    The engine runs the two halves on two workers at once (each keeps the depth's twins), so a
    gradient flow takes one pass's time, not two; `combine` joins them.

    Args:
        depth, version, batch_size, seed, source: as for `gradient_flow` (checked the same way).
        residual: the residual net's half, or the plain twin's.
        progress: optional `progress(fraction, text)` callback.

    Returns:
        {"names", "kernels", "blocks", "block_names", "loss", "images", "source", "notice",
        "traced"}: the weight layers' names and gradient norms, the block outputs' norms.
    """
    depth, version, batch_size, seed = check_request(depth, version, batch_size, seed)
    batch_size = largest_batch(depth, batch_size)
    x, y, data_source, notice = probe_batch(batch_size, source, seed)
    if progress:
        progress(0.3, "one forward and backward pass")
    # one pass at a time: oneDNN's kernels corrupt the heap when passes run on several threads
    with TWINS_LOCK:
        model = twins(depth, version, seed)[0 if residual else 1]
        traced = bool(getattr(model, "_explorer_probe_ready", False))
        names, kernels, blocks, loss = _probe(model, x, y, traced)
        block_names = [block.name for block in model.blocks]
    net = make_spec(depth, version, residual=residual).to_config()
    return {"names": names, "kernels": [float(v) for v in kernels], "blocks": [float(v) for v in blocks],
            "block_names": block_names, "loss": float(loss), "images": len(x), "source": data_source,
            "notice": notice, "traced": traced, "net": net}


def combine(residual: dict, plain: dict) -> FlowResult:
    """The `FlowResult` of the twins' halves (`probe_twin`)."""
    spec = ResNetSpec.from_config(residual["net"])
    by_name = dict(zip(residual["names"], residual["kernels"]))
    shortcut = [n for n in residual["names"] if n.endswith("_shortcut")]
    stage_starts = [i for i, n in enumerate(plain["names"]) if n.endswith("_block1_conv1")]
    return FlowResult(
        spec.name, plain["names"], plain["kernels"], [by_name[n] for n in plain["names"]],
        shortcut, [by_name[n] for n in shortcut], residual["block_names"], plain["blocks"],
        residual["blocks"], stage_starts, residual["images"], residual["source"], residual["notice"],
        plain["loss"], residual["loss"], residual["traced"] and plain["traced"])


def _probe(model, x, y, traced: bool):
    """Runs the traced probe (once `trace` has run) or the eager one."""
    kernels, blocks, loss = probe_fn(model, compiled=traced)(x, y)
    return [layer.name for layer in weight_layers(model)], kernels.numpy(), blocks.numpy(), loss.numpy()


# Tracing a very deep net's probe costs more memory and time than it can ever save.
MAX_TRACED_DEPTH = 300


def trace(depth: int, version: int, batch_size: int = 64, source: str | None = None) -> bool:
    """Traces the compiled probe of a kept pair for any batch size (a warm-up task, after the
    pair answered a first request eagerly): every later request for the depth, any seed,
    batch or size, then runs the traced graph. Returns whether the pair is traced now.

    Tracing a deep net costs several times the single pass it would speed up, so the first
    request never waits for it; a very deep net (over `MAX_TRACED_DEPTH`) is never traced.
    """
    if depth > MAX_TRACED_DEPTH:
        return False
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    x, y, _, _ = probe_batch(largest_batch(depth, batch_size), source, 0)
    with TWINS_LOCK:
        kept = kept_twins(depth, version, "projection")
        for model in (kept.residual, kept.plain):
            if not getattr(model, "_explorer_probe_ready", False):
                probe_fn(model, compiled=True).get_concrete_function(
                    tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)),
                    tf.TensorSpec((None, *y.shape[1:]), tf.as_dtype(y.dtype)))
                model._explorer_probe_ready = True
    return True


def depth_sweep(version=1, depths=(20, 56, 110, 218), batch_size=32, seed=0,
                source: str | None = None, progress=None) -> dict:
    """First-layer and median gradient norm against depth, plain and residual.

    Args:
        version: 1 or 2.
        depths: the depths to measure, each valid for `version`: a list, or text separated
            by commas or semicolons (see `limits.sweep_depths`).
        batch_size: images per batch (see `gradient_flow`, which caps it for deep nets).
        seed: seed of the initial weights and of the choice of images.
        source: the data source (see `data.load_cifar10`); None for the default.
        progress: optional `progress(fraction, text)` callback, called before each depth.

    Returns:
        {"version", "rows", "data", "notice"}: one row per depth, {"depth", "plain_first",
        "residual_first", "plain_median", "residual_median"}, norms of d(loss)/d(kernel); the
        source the images came from, and a notice when generated data stood in (else "").

    Raises:
        ValueError: a value is malformed or out of range (see `limits.sweep_depths` and
            `check_request`).
    """
    version, depths = sweep_depths(version, depths)
    check_request(depths[0], version, batch_size, seed)  # the batch and seed, before any work
    report = progress or (lambda fraction, text: None)
    rows = []
    for i, depth in enumerate(depths):
        report(i / len(depths), f"depth {depth}")
        flow = gradient_flow(depth, version, batch_size, seed, source)
        rows.append({"depth": int(depth),
                     "plain_first": flow.plain[0], "residual_first": flow.residual[0],
                     "plain_median": float(np.median(flow.plain)),
                     "residual_median": float(np.median(flow.residual))})
    report(1.0, "done")
    # every depth reads the same source: the last probe's notice holds for all
    return {"version": version, "rows": rows, "data": flow.data, "notice": flow.notice}


def reading(flow: FlowResult) -> str:
    """A plain-language reading of the numbers measured (not a canned story), which says the
    moment they show: at initialization, before any training step."""
    plain, residual = np.asarray(flow.plain), np.asarray(flow.residual)
    first_ratio = plain[0] / residual[0]
    spread_plain = np.log10(plain.max() / plain.min())
    spread_residual = np.log10(residual.max() / residual.min())
    slope_plain = plain[0] / plain[-2] if len(plain) > 2 else 1.0  # first conv against the last conv
    slope_residual = residual[0] / residual[-2] if len(residual) > 2 else 1.0
    source = "generated" if flow.data == "synthetic" else "CIFAR-10"
    text = [f"**What {flow.spec_name} and its plain twin show at initialization** (the same freshly "
            + f"initialized weights, before any training step; {flow.batch_size} images, {source}):"]
    if first_ratio > 3:
        text.append(f"The plain net's first layer gets a gradient **{magnitude(first_ratio)} times larger** "
                    "than the residual net's. That is explosion, not vanishing: with batch norm, a deep "
                    "plain net at initialization amplifies gradients on the way back to its early layers "
                    "(Yang et al. 2019), which makes its training unstable.")
    elif first_ratio < 1 / 3:
        text.append(f"The plain net's first layer gets a gradient **{magnitude(1 / first_ratio)} times "
                    "smaller** than the residual net's: the signal fades on its way back through the plain "
                    "stack (vanishing gradients).")
    else:
        text.append(f"At this depth the first layers of both nets get gradients of similar size "
                    f"(plain/residual = {magnitude(first_ratio)}).")
    text.append(f"From the first conv to the last conv the gradient norm changes by a factor "
                f"{magnitude(slope_plain)} in the plain net and {magnitude(slope_residual)} in the residual "
                f"net; across all layers it spans {spread_plain:.1f} orders of magnitude (plain) against "
                f"{spread_residual:.1f} (residual).")
    if spread_plain > spread_residual + 0.5:
        text.append("The shortcuts keep the per-layer signal far more even: every layer gets a "
                    "comparable share of the learning signal.")
    text.append("Training changes these numbers: the heatmaps of a training run show them step by step.")
    return " ".join(text)
