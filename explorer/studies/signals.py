"""Signal propagation plots (Brock, De and Smith 2021; De and Smith 2020): how the scale of
the signal changes from block to block, at initialization or in a trained checkpoint.

Per block, where the add is (the sum of the shortcut and the branch; in a post-activation v1
block, before the ReLU that follows it), on a batch of test images:

- `mean_sq`: the average over channels of the squared channel mean (over images and pixels);
- `variance`: the average over channels of the channel variance;
- `branch_variance`: the same for the residual branch's output alone.

A plain block has no add: its statistics are taken at the branch output, where the add would
be, so its branch variance is its variance.
"""

from __future__ import annotations

import numpy as np

from explorer.core.limits import check_signals_request
from explorer.core.numbers import magnitude
from explorer.studies.subjects import Subject, test_images


def channel_statistics(tensor) -> tuple[float, float]:
    """(average squared channel mean, average channel variance) of an NHWC tensor, each
    channel's statistics taken over images and pixels."""
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    mean, variance = tf.nn.moments(tf.cast(tensor, tf.float32), axes=[0, 1, 2])
    return float(tf.reduce_mean(tf.square(mean))), float(tf.reduce_mean(variance))


def signal_propagation(subject: Subject, samples=64, source: str | None = None, progress=None,
                       budget: bool = False) -> dict:
    """The signal propagation plot's statistics of one net, block by block.

    Args:
        subject: the net (see `subjects.trained` and `subjects.fresh`): a checkpoint in
            inference mode, a fresh net in training mode (batch statistics), as `subjects` says.
        samples: test images (the first ones), 1 to `limits.MAX_SIGNAL_SAMPLES`.
        source: the data source (see `data.load_cifar10`); None for the default.
        progress: optional `progress(fraction, text)` callback.
        budget: refuse a request over this host's budget (see `limits.check_signals_request`).

    Returns:
        {"model", "net", "residual", "version", "at_init", "blocks", "stages", "mean_sq", "variance",
        "branch_variance", "fits", "samples", "data", "notice"}: the block names, their stage
        (1-based), the three statistics per block (see the module's docstring), a line through
        the variance of each stage's blocks (`stage_fits`), the images and their source.

    Raises:
        ValueError: `samples` is out of range, the request is over budget, or the checkpoint
            or data cannot be had.
    """
    import keras  # deferred: importing this module must not load Keras
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    samples = check_signals_request(samples, [subject.spec], budget)
    report = progress or (lambda fraction, text: None)
    x, _, data_source, notice = test_images(samples, source)
    report(0.1, f"{subject.name}: one forward pass")
    model = subject.model()
    with keras.StatelessScope():  # training mode at initialization moves no batch-norm average
        rows = model.block_parts(tf.constant(x), training=subject.at_init, each=lambda parts: (
            *channel_statistics(parts[1]), channel_statistics(parts[0])[1]))
    stats = dict(zip(("mean_sq", "variance", "branch_variance"), map(list, zip(*rows))))
    result = {"model": subject.name, "net": subject.spec.to_config(), "residual": subject.spec.residual,
              "version": subject.spec.version,
              "at_init": subject.at_init,
              "blocks": [block.name for block in model.blocks],
              "stages": [block.plan.stage for block in model.blocks],
              **{key: [float(f"{v:.5g}") for v in values] for key, values in stats.items()},
              "samples": len(x), "data": data_source, "notice": notice}
    result["fits"] = stage_fits(result)
    return result


def stage_fits(result: dict) -> list[dict]:
    """A least-squares line through the variance of each stage's blocks against their index.

    Args:
        result: a `signal_propagation` result.

    Returns:
        Per stage {"stage", "blocks", "slope", "intercept", "r2"}: the variance grows by
        `slope` per block from `intercept` at the stage's first block (the line's); r2 is the
        share of the variance's spread the line explains (1 when the stage's variance is
        flat). Stages of one block get slope 0 and r2 None.
    """
    stages = np.asarray(result["stages"])
    variance = np.asarray(result["variance"], dtype=float)
    fits = []
    for stage in sorted(set(stages.tolist())):
        y = variance[stages == stage]
        index = np.arange(len(y), dtype=float)
        if len(y) < 2:
            fits.append({"stage": stage, "blocks": 1, "slope": 0.0, "intercept": float(y[0]), "r2": None})
            continue
        slope, intercept = np.polyfit(index, y, 1)
        spread = float(np.sum((y - y.mean()) ** 2))
        residual = float(np.sum((y - (slope * index + intercept)) ** 2))
        fits.append({"stage": stage, "blocks": len(y), "slope": float(f"{slope:.5g}"),
                     "intercept": float(f"{intercept:.5g}"),
                     "r2": round(1 - residual / spread, 4) if spread > 0 else 1.0})
    return fits


def _resets(result: dict) -> list[bool]:
    """Whether the variance drops at each transition (a stage's first block against the last
    block before it)."""
    stages, variance = result["stages"], result["variance"]
    return [variance[i] < variance[i - 1] for i in range(1, len(stages)) if stages[i] != stages[i - 1]]


def _one_net(result: dict) -> str:
    moment = "" if result["at_init"] else "trained, "  # a fresh net's name says "at initialization"
    fits = [f for f in result["fits"] if f["r2"] is not None]
    per_stage = "; ".join(f"stage {f['stage']}: {magnitude(f['slope'])} per block (R² {f['r2']:.2f})"
                          for f in fits)
    resets = _resets(result)
    variance, branch = result["variance"], result["branch_variance"]
    text = (f"**{result['model']}** ({moment}{result['samples']} test images): the variance at the "
            f"{'add' if result['residual'] else 'block output'} goes from {magnitude(variance[0])} at the "
            f"first block to {magnitude(variance[-1])} at the last (largest {magnitude(max(variance))})")
    low, high = magnitude(min(branch)), magnitude(max(branch))
    if result["residual"]:
        text += ("; the residual branches' variance stays " +
                 (f"at about {low}" if low == high else f"between {low} and {high}"))
    text += f". A line through each stage's variance: {per_stage}." if per_stage else "."
    if resets:
        text += f" The variance drops at {sum(resets)} of {len(resets)} stage transitions."
    return text


def signals_reading(results: list[dict]) -> str:
    """What signal propagation plots show, in words computed from `signal_propagation`
    results, beside Brock et al.'s (Markdown)."""
    lines = [_one_net(result) for result in results]
    lines.append("Brock, De and Smith (2021, Figure 1): in a pre-activation (v2) ResNet with batch norm at "
                 "initialization, the variance grows about linearly with depth inside a stage and "
                 "resets at the transition blocks, whose shortcut sees the normalized signal; a plain "
                 "net with batch norm keeps its variance flat.")
    residual = [r for r in results if r["residual"] and r.get("version") == 2]  # Brock et al.'s kind of block
    if residual and not all(_resets(r) and all(_resets(r)) for r in residual):
        lines.append("Where the variance does not reset here, the transition block's projection shortcut "
                     "takes the block's raw input rather than its normalized pre-activation (as in the "
                     "Keras example these nets follow), so nothing rescales the sum there.")
    return "\n\n".join(lines)
