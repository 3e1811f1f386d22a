"""The loss landscape (Li et al. 2018): the loss around a trained checkpoint along
filter-normalized random directions, a 1-D slice and a 2-D plane, its reading, and the study
that runs it for one request (the bounds and budgets of a request are in `core.limits`).
"""

from __future__ import annotations

import time

import keras
import numpy as np

from explorer.core.limits import check_landscape_budget, landscape_values
from explorer.core.specs import result_net
from explorer.data.cifar import load_cifar10
from explorer.nets.checkpoints import load_checkpoint
from explorer.nets.models import checkpoint_spec
from explorer.shipped import stored
from explorer.studies import estimates
from explorer.studies.lesion import name_apart


def check_landscape_request(steps, samples, checkpoints, span=1.0, seed=0,
                            budget: bool = True) -> tuple[int, int]:
    """Reads and checks a loss-landscape request before any work.

    Args:
        steps, samples, span, seed: as for `loss_landscape` (see `landscape_values`).
        checkpoints: the paths of the checkpoints the request covers.
        budget: also refuse a request over this host's budget (see `check_landscape_budget`), weighed by
            the costliest net; False for the command line.

    Returns:
        (steps, samples) as ints.

    Raises:
        ValueError: a value is malformed or out of range, a checkpoint is not one of this
            app's, or the request is over budget.
    """
    steps, samples, _, _ = landscape_values(steps, samples, span, seed)
    if budget:
        check_landscape_budget(steps, samples, len(checkpoints),
                               [checkpoint_spec(path) for path in checkpoints])
    return steps, samples


def _norms(array, axes):
    return np.sqrt(np.square(array).sum(axis=axes, keepdims=True))


def _filter_normalized_direction(weights, rng):
    """A random direction with each filter scaled to the norm of the matching filter of the
    weights (Li et al. 2018); biases and batch-norm parameters get no direction."""
    direction = []
    for w in weights:
        if w.ndim < 2:
            direction.append(np.zeros_like(w))
            continue
        d = rng.standard_normal(w.shape).astype(np.float32)
        axes = tuple(range(w.ndim - 1))  # Keras kernels keep output filters on the last axis
        d *= _norms(w, axes) / (_norms(d, axes) + 1e-10)
        direction.append(d)
    return direction


def loss_landscape(checkpoint, source: str | None = None, samples: int = 128, steps: int = 9,
                   span: float = 1.0, seed: int = 0, progress=None) -> dict:
    """Loss around a trained checkpoint along filter-normalized random directions.

    The loss is the cross-entropy on test images; the model's weights are restored afterwards.

    Args:
        checkpoint: path of a `.keras` checkpoint.
        source: the data source whose test split is used (see `data.load_cifar10`); None for
            the default.
        samples: how many test images (the first ones) the loss is averaged over, 1 to 10000.
        steps: points per axis of the 2-D plane, 3 to 51; the 1-D slice has 2 * steps - 1.
        span: how far out to go along each direction, in filter norms, in (0, 5].
        seed: seed of the two random directions.
        progress: optional `progress(fraction, text)` callback, called before each evaluation.

    Returns:
        {"alphas", "loss_1d", "grid", "loss_2d", "model", "residual", "n", "net"}: the loss
        along one direction (1-D) and over the plane of two directions (2-D, steps x steps,
        with `loss_2d[i][j]` at `grid[j]` along the first and `grid[i]` along the second),
        each coordinate in [-span, span]; then the model's name, whether it is residual, the
        number of test images and its net (`ResNetSpec.to_config()`, as `lesion`'s).

    Raises:
        ValueError: `steps`, `samples` or `span` is out of range, the checkpoint cannot be
            loaded, or the data cannot be had.
    """
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    steps, samples, span, seed = landscape_values(steps, samples, span, seed)
    report = progress or (lambda fraction, text: None)
    model = load_checkpoint(checkpoint)  # a private copy: its weights are moved in place below
    data = load_cifar10(source)
    x = tf.constant(data.x_test[:samples])
    y = tf.constant(data.y_test[:samples])
    variables = model.trainable_variables
    origin = [variable.numpy() for variable in variables]
    rng = np.random.default_rng(seed)
    first_direction = _filter_normalized_direction(origin, rng)
    second_direction = _filter_normalized_direction(origin, rng)

    @tf.function
    def loss_at():
        probs = model(x, training=False)
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))

    def evaluate(alpha, beta):  # the loss at origin + alpha * first + beta * second
        for variable, weights, first, second in zip(variables, origin, first_direction, second_direction):
            variable.assign(weights + alpha * first + beta * second)
        return float(loss_at())

    alphas = np.linspace(-span, span, 2 * steps - 1)
    grid = np.linspace(-span, span, steps)
    total = len(alphas) + len(grid) ** 2
    try:
        loss_1d = []
        for i, a in enumerate(alphas):
            report(i / total, "1-D slice")
            loss_1d.append(evaluate(a, 0.0))
        loss_2d = np.zeros((len(grid), len(grid)))
        for i, b in enumerate(grid):
            for j, a in enumerate(grid):
                report((len(alphas) + i * len(grid) + j) / total, "2-D plane")
                loss_2d[i, j] = evaluate(a, b)
    finally:
        for variable, weights in zip(variables, origin):
            variable.assign(weights)
    return {"alphas": alphas.round(4).tolist(), "loss_1d": [round(v, 5) for v in loss_1d],
            "grid": grid.round(4).tolist(), "loss_2d": loss_2d.round(5).tolist(),
            "model": model.spec.name, "residual": bool(model.spec.residual), "n": int(x.shape[0]),
            "net": model.spec.to_config()}


def landscape_summary(result: dict) -> dict:
    """Numbers that describe a landscape: the loss at the checkpoint, the mean loss half-way
    and all the way out along the 1-D slice, and the share of the 2-D plane that stays within
    one nat of the checkpoint's loss (the width of its basin)."""
    alphas, loss_1d = np.asarray(result["alphas"]), np.asarray(result["loss_1d"])
    span = float(alphas.max())
    center = float(loss_1d[np.argmin(np.abs(alphas))])
    half = float(np.mean([loss_1d[np.argmin(np.abs(alphas - sign * span / 2))] for sign in (-1, 1)]))
    edge = float(np.mean([loss_1d[0], loss_1d[-1]]))
    basin = float(np.mean(np.asarray(result["loss_2d"]) < center + 1.0))
    return {"center_loss": round(center, 4), "half_span_loss": round(half, 4),
            "edge_loss": round(edge, 4), "basin_fraction": round(basin, 4), "span": span}


def _against_li(results: list[dict], fractions: list[float]) -> str:
    """How a plain-against-residual pair compares with Li et al. (2018), from the basins measured
    and the nets the results carry (see `specs.result_net`)."""
    nets = [result_net(r) for r in results]
    if None in nets or sorted(net.residual for net in nets) != [False, True]:
        return ""  # two nets of one kind, or of a kind unknown: nothing of Li et al.'s to compare with
    plain_share, residual_share = ((fractions[1], fractions[0]) if nets[0].residual
                                   else (fractions[0], fractions[1]))
    depth = next(net.depth for net in nets if not net.residual)
    if plain_share < residual_share:
        return " As in Li et al. (2018), the residual net's basin is the wider one."
    if depth < 56:
        return (" Li et al. (2018) also found plain and residual landscapes alike at 20 layers; they saw "
                "plain nets' landscapes turn chaotic from 56 layers on.")
    steps, n = len(results[0]["grid"]), results[0]["n"]
    return (f" This differs from Li et al. (2018), whose plain-56 landscape was chaotic beside ResNet-56's "
            f"smooth, wide basin. What differs: they plotted the training loss on training images on finer "
            f"grids, for nets trained without Cutout or label smoothing (the shipped "
            f"checkpoints here use both); this is the test loss on {n} images at {steps}x{steps}.")


def landscape_reading(results: list[dict]) -> str:
    """What loss landscapes show, in words computed from `loss_landscape` results (Markdown):
    what was measured and how finely, each net's numbers, then the two nets against each other
    and against Li et al. (2018)."""
    if not results:
        return ""
    first = results[0]
    steps, span = len(first["grid"]), landscape_summary(first)["span"]
    lines = [f"**What was measured**: the cross-entropy loss on {first['n']} test images around each "
             + f"checkpoint, along two filter-normalized random directions out to ±{span:g} filter norms: "
             + f"a 1-D slice of {len(first['alphas'])} points and a 2-D plane of {steps}x{steps} points "
             + f"(a grid step of {2 * span / max(steps - 1, 1):.2g} filter norms)."]
    fractions = []
    for r in results:
        s = landscape_summary(r)
        fractions.append(s["basin_fraction"])
        lines.append(f"**{r['model']}**: loss {s['center_loss']:.3f} at the checkpoint, "
                     f"{s['half_span_loss']:.3f} half-way out and {s['edge_loss']:.3f} at the edge of the "
                     f"1-D slice; {s['basin_fraction']:.0%} of the 2-D plane stays within 1 nat of the "
                     "checkpoint's loss.")
    if len(results) == 2:
        (a, b) = [r["model"] for r in results]
        if fractions[0] == fractions[1]:  # the same grid points: neither basin is wider at this resolution
            verdict = f"Both basins are as wide at this resolution ({fractions[0]:.0%} of the plane each)."
        else:
            wider = a if fractions[0] > fractions[1] else b
            verdict = f"{wider}'s basin is wider ({a} {fractions[0]:.0%}, {b} {fractions[1]:.0%})."
        lines.append(verdict + _against_li(results, fractions))
    return "\n\n".join(lines)


def landscape_study(checkpoints, steps=9, samples=128, names=None, span=1.0, source: str | None = None,
                    progress=None, seed=0, budget: bool = True, use_stored: bool = True) -> list[dict]:
    """The loss landscape of one checkpoint or more, side by side (see `loss_landscape`).

    Args:
        checkpoints: paths of `.keras` checkpoints (the app's come from `pretrained.resolve`).
        steps, samples, span, seed: as for `loss_landscape` (see `check_landscape_request`,
            which checks the request).
        names: what the user called the checkpoints (see `name_apart`); None for the paths.
        source: the data source whose test split is used; None for the default.
        progress: optional `progress(fraction, text)` callback, passed to each landscape.
        budget: refuse a request over this host's budget; False for the command line.
        use_stored: as for `lesion_study`.

    Returns:
        The `loss_landscape` results, one per checkpoint, in order, each with "seconds": the
        wall time of its slice and plane (the model's load and the data included).

    Raises:
        ValueError: the request is malformed or over budget, a checkpoint cannot be loaded,
            or the data cannot be had.
    """
    steps, samples = check_landscape_request(steps, samples, checkpoints, span, seed, budget)
    results = []
    settings = {"steps": steps, "samples": samples, "span": span, "seed": seed}
    for path in checkpoints:
        kept = use_stored and stored.lookup("landscape", path, settings, source)
        if kept:  # its "seconds" are those of the measurement it keeps
            results.append(kept)
            continue
        start = time.perf_counter()
        result = loss_landscape(path, source, samples, steps, span, seed, progress)
        result["seconds"] = round(time.perf_counter() - start, 1)
        estimates.record("landscape", estimates.landscape_work(checkpoint_spec(path), steps, samples),
                         result["seconds"])
        results.append(result)
    return name_apart(results, [str(path) for path in checkpoints] if names is None else names)
