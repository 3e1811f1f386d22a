"""Shattered gradients (Balduzzi et al. 2017): along a line of inputs, the gradient of a deep
plain net looks like white noise, while a residual net's stays correlated.

The line runs from one test image to the next, x(t) = a + t (b - a) for N values of t in
[0, 1]. At each point the scalar measured is the derivative of the net's logits, summed over
classes, along the line: the gradient at x(t) projected on (b - a). The points go through
the net as one batch in training mode (batch norm over the line's points, as Balduzzi et al.
fed theirs), fresh nets at initialization, a residual net and its plain twin with the same
weights at each depth; the sequence's normalized autocorrelation shows how fast it decorrelates.
"""

from __future__ import annotations

import numpy as np

from explorer.core.limits import check_shattered_request, sweep_depths
from explorer.core.numbers import magnitude
from explorer.core.specs import make_spec
from explorer.studies.subjects import fresh, test_images


def autocorrelation(sequence, max_lag: int | None = None) -> list[float]:
    """The normalized autocorrelation of a 1-D sequence, lags 0 to `max_lag` (default N // 2).

    c(l) = sum_i (g_i - m)(g_{i+l} - m) / sum_i (g_i - m)^2, m the mean: 1 at lag 0, near 0
    beyond it for white noise. A constant sequence (no change along the line) gives 1 at
    every lag.
    """
    g = np.asarray(sequence, dtype=float)
    max_lag = len(g) // 2 if max_lag is None else max_lag
    g = g - g.mean()
    energy = float(np.sum(g * g))
    if energy <= 0:
        return [1.0] * (max_lag + 1)
    return [float(np.sum(g[: len(g) - lag] * g[lag:]) / energy) for lag in range(max_lag + 1)]


def _line_derivative(model, line, direction) -> np.ndarray:
    """d(sum of logits)/dt at each point of the line, in training mode."""
    import keras  # deferred: importing this module must not load Keras
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    with tf.GradientTape() as tape:
        tape.watch(line)
        with keras.StatelessScope():  # moves no batch-norm average of the shared twins
            _, outputs = model.forward(line, training=True, collect=True)
            total = tf.reduce_sum(model.logits(model.feature_map(outputs[-1], training=True)))
    return tf.reduce_sum(tape.gradient(total, line) * direction, axis=[1, 2, 3]).numpy()


def shattered(depths=(20, 56, 110), version=1, points=256, seed=0, source: str | None = None,
              progress=None, budget: bool = False) -> dict:
    """The gradient along a line of inputs and its autocorrelation, plain against residual.

    Args:
        depths: the depths to measure, each valid for `version` (a list, or text separated
            by commas; see `limits.sweep_depths`).
        version: 1 or 2.
        points: points along the line, `limits.MIN_LINE_POINTS` to `limits.MAX_LINE_POINTS`.
        seed: seed of the nets' initial weights.
        source: the data source of the two test images (see `data.load_cifar10`).
        progress: optional `progress(fraction, text)` callback, called before each net.
        budget: refuse a request over this host's budget (see `limits.check_shattered_request`).

    Returns:
        {"version", "points", "lags", "nets", "data", "notice"}: `nets` holds per depth the
        residual net then its plain twin, each {"model", "net", "depth", "residual", "gradient",
        "autocorrelation"}: the derivative at each point (N values) and its autocorrelation
        at lags 0 to N // 2.

    Raises:
        ValueError: a value is malformed or out of range, the request is over budget, or the
            data cannot be had.
    """
    version, depths = sweep_depths(version, depths)
    subjects = [fresh(depth, version, seed, plain) for depth in depths for plain in (False, True)]
    points = check_shattered_request(points, [s.spec for s in subjects] or [make_spec(20)], budget)
    import tensorflow as tf  # after the checks: a bad request is refused before TensorFlow loads

    report = progress or (lambda fraction, text: None)
    x, _, data_source, notice = test_images(2, source)
    start, end = x.astype(np.float32)
    t = np.linspace(0.0, 1.0, points, dtype=np.float32)[:, None, None, None]
    line = tf.constant(start + t * (end - start))
    direction = tf.constant(end - start)
    nets = []
    for i, subject in enumerate(subjects):
        report(i / len(subjects), f"{subject.spec.name}: {points} points")
        g = _line_derivative(subject.model(), line, direction)
        nets.append({"model": subject.spec.name, "net": subject.spec.to_config(), "depth": subject.spec.depth,
                     "residual": subject.spec.residual, "gradient": [float(f"{v:.5g}") for v in g],
                     "autocorrelation": [round(c, 5) for c in autocorrelation(g)]})
    return {"version": version, "points": points, "lags": list(range(points // 2 + 1)), "nets": nets,
            "data": data_source, "notice": notice}


def correlation_length(autocorr) -> int:
    """The first lag at which the autocorrelation falls below 1/2 (len(autocorr) if never)."""
    below = [lag for lag, c in enumerate(autocorr) if c < 0.5]
    return below[0] if below else len(autocorr)


def shattered_reading(result: dict) -> str:
    """What the autocorrelations show, in words computed from a `shattered` result, beside
    Balduzzi et al.'s (Markdown)."""
    lines = [(f"**Along a line of {result['points']} inputs** between two test images, at initialization "
             "(the derivative of the summed logits along the line, batch norm over the line's points):")]
    for net in result["nets"]:
        c = net["autocorrelation"]
        length = correlation_length(c)
        said = f"{length} step{'s' * (length != 1)}" if length < len(c) else f"more than {len(c) - 1} steps"
        lines.append(f"{net['model']}: autocorrelation {magnitude(c[1]) if len(c) > 1 else 'n/a'} at lag 1; "
                     f"it falls below 1/2 after {said}.")
    pairs = {}
    for net in result["nets"]:
        pairs.setdefault(net["depth"], {})[net["residual"]] = correlation_length(net["autocorrelation"])
    deeper = [d for d, pair in pairs.items() if len(pair) == 2 and pair[True] > pair[False]]
    lines.append(f"The residual net's gradient stays correlated longer than its plain twin's at "
                 f"{len(deeper)} of {len(pairs)} depths. Balduzzi et al. (2017): the correlation between "
                 "gradients decays exponentially with depth in a plain feedforward net, until they look "
                 "like white noise, and only sublinearly in a residual net.")
    return " ".join(lines[:1]) + "\n\n" + "\n\n".join(lines[1:])
