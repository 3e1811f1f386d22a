"""The lesion study (Veit et al. 2016): a trained checkpoint's test accuracy with each block's
residual branch deleted in turn, its reading, and the study that runs it for one request (the
bounds and budgets of a request are in `core.limits`).

Deleting a block at test time means removing its residual branch F(x): a residual block
keeps its shortcut (identity, or the projection where shapes change), a plain block passes
its input straight through, which is only possible where the block keeps the shape.
"""

from __future__ import annotations

import time

import numpy as np

from explorer.core.limits import check_lesion_budget, lesion_samples
from explorer.data.cifar import load_cifar10
from explorer.nets.checkpoints import load
from explorer.nets.models import checkpoint_spec
from explorer.shipped import stored
from explorer.studies import estimates
from explorer.studies.lesion_pass import accuracies_with_each_block_deleted


def check_lesion_request(samples, checkpoints, budget: bool = True) -> int:
    """Reads and checks a lesion request before any work.

    Args:
        samples: test images to use (see `lesion_samples`).
        checkpoints: the paths of the checkpoints the request covers.
        budget: also refuse a request over this host's budget (see `check_lesion_budget`), sized by the
            nets the checkpoints hold; False for the command line.

    Returns:
        `samples` as an int.

    Raises:
        ValueError: `samples` is malformed or out of range, a checkpoint is not one of this
            app's, or the request is over budget.
    """
    samples = lesion_samples(samples)
    if budget:
        check_lesion_budget(samples, [checkpoint_spec(path) for path in checkpoints])
    return samples


def lesioned_accuracy(model, x, y, drop, batch_size=250) -> float:
    """The accuracy of `model` on (x, y) with some blocks' residual branches deleted: the
    lesion study's measurement, and a single block's deletion (`deletion.delete_block`).

    Args:
        model: a loaded `ResNet` (its weights are read, never changed).
        x: raw uint8 images in [0, 255], (n, *spec.input_shape).
        y: integer class labels, (n,).
        drop: indices of the blocks whose residual branch is deleted; () for the intact net.
        batch_size: images per forward pass.

    Returns:
        The fraction of images classified right (0.0 for no images).
    """
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    correct = 0
    for i in range(0, len(x), batch_size):
        probs = model.forward(tf.constant(x[i: i + batch_size]), training=False, drop_blocks=drop)
        correct += int(np.sum(np.argmax(probs, -1) == y[i: i + batch_size]))
    return correct / max(len(x), 1)


def lesion(checkpoint, source: str | None = None, samples: int = 1000, progress=None) -> dict:
    """Test accuracy with each block deleted in turn.

    Args:
        checkpoint: path of a `.keras` checkpoint.
        source: the data source whose test split is used (see `data.load_cifar10`); None for
            the default.
        samples: how many test images to use (the first ones), 1 to 100000.
        progress: optional `progress(fraction, text)` callback, called before each block.

    Returns:
        {"baseline", "blocks", "accuracy", "downsampling", "residual", "n", "model", "net"}:
        the intact accuracy, the block names, the accuracy with each block deleted (None for
        plain downsampling blocks, whose input cannot pass through), whether each block
        downsamples, whether the net is residual, the number of test images, the model's
        name and its net (`ResNetSpec.to_config()`, what readers take the net's kind and
        depth from: see `specs.result_net`). Accuracies are fractions rounded to 4 places.

    Raises:
        ValueError: `samples` is out of range, the checkpoint cannot be loaded, or the data
            cannot be had.
    """
    samples = lesion_samples(samples)
    report = progress or (lambda fraction, text: None)
    report(0.0, f"loading {getattr(checkpoint, 'name', checkpoint)} and {samples} test images")
    model = load(checkpoint)  # shared: the lesion skips blocks in the forward pass, never a weight
    data = load_cifar10(source)
    x, y = data.x_test[:samples], data.y_test[:samples]
    blocks = model.blocks
    # every deletion starts from its block's input in the intact pass (see lesion_pass)
    baseline, without = accuracies_with_each_block_deleted(
        model, x, y, lambda i: report(i / len(blocks), f"deleting {blocks[i].name}"))
    return {"baseline": round(baseline, 4), "blocks": [block.name for block in blocks],
            "accuracy": [None if value is None else round(value, 4) for value in without],
            "downsampling": [block.plan.downsamples for block in blocks], "residual": model.spec.residual,
            "n": len(y), "model": model.spec.name, "net": model.spec.to_config()}


def name_apart(results: list[dict], checkpoints: list[str]) -> list[dict]:
    """Adds the checkpoint to the "model" name of results that would otherwise share one.

    Results of two checkpoints of the same architecture (a shipped ResNet-20 and one trained
    in this session) get the checkpoint in their "model" name, so charts and readings keep
    them apart.

    Args:
        results: `lesion` or `loss_landscape` results, one per checkpoint.
        checkpoints: the checkpoint names, in the order of `results`.

    Returns:
        `results`, changed in place: when any two share a "model" name, every "model" becomes
        "<model> (<checkpoint>)"; otherwise they are unchanged.
    """
    if len({r["model"] for r in results}) < len(results):
        for result, checkpoint in zip(results, checkpoints):
            result["model"] = f"{result['model']} ({checkpoint})"
    return results


def _median_costs(opening: str, costs: list[tuple[str, float]]) -> str:
    """"<opening> costs A 18.5 points and B 78.4 points of accuracy.", saying "raises B's
    accuracy by 2.8 points" for a negative cost (an untrained net can do better without a
    block)."""
    if all(points >= 0 for _, points in costs):
        parts = " and ".join(f"{model} {points * 100:.1f} points" for model, points in costs)
        return f"{opening} costs {parts} of accuracy."
    parts = [f"raises {model}'s accuracy by {-points * 100:.1f} points" if points < 0
             else f"costs {model} {points * 100:.1f} points of accuracy" for model, points in costs]
    return f"{opening} {' and '.join(parts)}."


def lesion_reading(results: list[dict]) -> str:
    """What a lesion study shows, in words computed from `lesion` results (Markdown)."""
    lines, deletable = [], set()  # the nets with a block to delete: compared below when both have
    for r in results:
        kept = [(name, a) for name, a in zip(r["blocks"], r["accuracy"]) if a is not None]
        if not kept:
            lines.append(f"**{r['model']}**: intact {r['baseline']:.1%}; no block can be deleted "
                         "(every one changes shape).")
            continue
        accuracies = [a for _, a in kept]
        worst_name, worst = min(kept, key=lambda item: item[1])
        deletable.add(r["model"])
        severe = sum(r["baseline"] - a > 0.10 for a in accuracies)
        skipped = len(r["blocks"]) - len(kept)
        lines.append(
            f"**{r['model']}**: intact {r['baseline']:.1%}; after deleting one block, median "
            f"{np.median(accuracies):.1%}, worst {worst:.1%} (without {worst_name}); {severe} of "
            f"{len(kept)} deletions cost more than 10 points"
            + (f"; {skipped} downsampling blocks cannot be deleted in a plain net" if skipped else "")
            + f" ({r['n']} test images).")
    if len(deletable) == 2:
        costs, shared = median_costs(results)
        opening = (f"On the {shared} blocks both can lose, a median deletion" if shared
                   else "A median deletion")
        lines.append(_median_costs(opening, [(r["model"], cost) for r, cost in zip(results, costs)]))
    return "\n\n".join(lines)


def median_costs(results: list[dict]) -> tuple[list[float], int | None]:
    """What a median deletion costs each of two nets' accuracy (a fraction; negative: it
    raises it), compared on the blocks both nets can lose where they have the same blocks (a
    plain net keeps its downsampling blocks), else over each net's own: (costs, the number of
    blocks compared, or None)."""
    first, second = results
    if first["blocks"] == second["blocks"]:
        both = [i for i in range(len(first["blocks"]))
                if first["accuracy"][i] is not None and second["accuracy"][i] is not None]
        if both:
            costs = [float(np.median([r["baseline"] - r["accuracy"][i] for i in both])) for r in results]
            return costs, len(both)
    return [float(np.median([r["baseline"] - a for a in r["accuracy"] if a is not None] or [0.0]))
            for r in results], None


def lesion_study(checkpoints, samples=1000, names=None, source: str | None = None, progress=None,
                 budget: bool = True, use_stored: bool = True) -> list[dict]:
    """The lesion study of one checkpoint or more, side by side (see `lesion`).

    Args:
        checkpoints: paths of `.keras` checkpoints (the app's come from `pretrained.resolve`).
        samples: test images to use (see `check_lesion_request`, which checks the request).
        names: what the user called the checkpoints (see `name_apart`); None for the paths.
        source: the data source whose test split is used; None for the default.
        progress: optional `progress(fraction, text)` callback, passed to each `lesion`.
        budget: refuse a request over this host's budget; False for the command line.
        use_stored: serve a shipped checkpoint's result measured once at these settings
            (see `stored`); False measures every checkpoint now (the command line).

    Returns:
        The `lesion` results, one per checkpoint, in order.

    Raises:
        ValueError: the request is malformed or over budget, a checkpoint cannot be loaded,
            or the data cannot be had.
    """
    samples = check_lesion_request(samples, checkpoints, budget)
    results = []
    for path in checkpoints:
        kept = use_stored and stored.lookup("lesion", path, {"samples": samples}, source)
        start = time.perf_counter()
        results.append(kept or lesion(path, source, samples, progress=progress))
        if not kept:  # the pace the next request's expected time is said with
            estimates.record("lesion", estimates.lesion_work(checkpoint_spec(path), samples),
                             time.perf_counter() - start)
    return name_apart(results, [str(path) for path in checkpoints] if names is None else names)
