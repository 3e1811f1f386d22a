"""Path lengths in a residual net (Veit, Wilber and Belongie 2016, section 6).

A net of n residual blocks holds 2^n paths from input to output: each block is passed either
through its residual branch or through its shortcut alone, so C(n, k) paths go through k
branches (a binomial distribution of lengths). For each length k this module measures the
gradient that reaches the input through paths of that length, on random sets of k branches,
and multiplies it by the number of such paths: the total gradient each length carries.

Two ways of measuring one set of k branches:

- "single" (Veit et al.'s, the default): the forward pass is the whole net's; on the way back
  the gradient goes through the branch of the k blocks and the shortcut of the others, so
  exactly one path of length k is measured (`models.ResNet.forward`'s `path` gates, one traced
  graph for every set).
- "subnet": the other n - k blocks lose their branch in the forward pass too, by the lesion
  study's mechanism (`drop_blocks`): the gradient of the k-block net left, which sums its own
  2^k paths (eager, one pass per set).

Every block of a residual net can pass through its shortcut alone: a downsampling block keeps
its projection, as the lesion study does. A plain net has one path through all its blocks
(its downsampling blocks cannot be skipped at all), so it is refused.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from explorer.core.checks import one_of
from explorer.core.limits import check_paths_request
from explorer.core.numbers import magnitude
from explorer.studies.subjects import Subject, run, test_images

METHODS = ("single", "subnet")  # one path of length k, or the k-block net left (see above)
SHARE = 0.9  # the effective range holds this share of the total gradient


def path_counts(blocks: int) -> list[int]:
    """C(n, k) for k = 0..n: how many paths of each length a net of `blocks` blocks holds."""
    return [math.comb(blocks, k) for k in range(blocks + 1)]


def effective_range(total, share: float = SHARE) -> list[int]:
    """The shortest range of lengths [lo, hi] whose totals add up to `share` of the sum.

    Args:
        total: the total gradient per length, k = 0..n (any non-negative numbers).
        share: the share of the sum the range must hold, in (0, 1].

    Returns:
        [lo, hi], inclusive; among ranges of equal width the one holding the most, then the
        first. [0, n] when every total is zero.
    """
    total = np.asarray(total, dtype=float)
    if not total.size or total.max() <= 0:
        return [0, max(len(total) - 1, 0)]
    total = total / total.max()  # C(600, 300) times a gradient can overflow a sum
    cumulative = np.concatenate([[0.0], np.cumsum(total)])
    target = share * cumulative[-1] * (1 - 1e-12)
    best, hi = None, 0
    for lo in range(len(total)):
        hi = max(hi, lo)
        while hi < len(total) and cumulative[hi + 1] - cumulative[lo] < target:
            hi += 1
        if hi == len(total):
            break
        key = (hi - lo, -(cumulative[hi + 1] - cumulative[lo]))
        if best is None or key < best[0]:
            best = (key, [lo, hi])
    return best[1]


def path_method(method) -> str:
    """`method` if it is one of `METHODS`; raises ValueError otherwise."""
    return one_of(method, METHODS, "method")


def _random_sets(blocks: int, k: int, count: int, rng) -> list[tuple[int, ...]]:
    """`count` random sets of k of the blocks (a set may come again)."""
    return [tuple(rng.choice(blocks, size=k, replace=False)) for _ in range(count)]


def _sets(blocks: int, k: int, count: int, rng) -> list[tuple[int, ...]]:
    """`count` random sets of k of the blocks, or all of them when there are no more."""
    if math.comb(blocks, k) <= count:
        return list(itertools.combinations(range(blocks), k))
    return _random_sets(blocks, k, count, rng)


def _gates(blocks: int, kept, rows: int | None = None) -> np.ndarray:
    """0-1 gates, (blocks,) for one set of kept branches or (rows, blocks) for one set per row."""
    sets = [kept] if rows is None else kept
    gates = np.zeros((len(sets), blocks), np.float32)
    for row, members in enumerate(sets):
        gates[row, list(members)] = 1.0
    return gates[0] if rows is None else gates


def input_gradients(subject: Subject, model, pixels, labels, **forward):
    """(probabilities, the summed loss's gradient at the net's normalized input, per image),
    `forward` passed to `models.ResNet.forward` (`path` gates or `drop_blocks`)."""
    import keras  # deferred: importing this module must not load Keras
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    with tf.GradientTape() as tape:
        tape.watch(pixels)
        probs = tf.cast(run(subject, model, pixels, **forward), tf.float32)
        loss = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probs))
    return probs, tape.gradient(loss, pixels) * tf.constant(model.input_stats["std"], tf.float32)


def _input_gradient_norms(subject: Subject, model, pixels, labels, **forward):
    """(probabilities, the norm of each image's `input_gradients`)."""
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    probs, grads = input_gradients(subject, model, pixels, labels, **forward)
    return probs, tf.norm(tf.reshape(grads, (tf.shape(grads)[0], -1)), axis=1)


def _single_path_fn(subject: Subject, model):
    """(pixels, labels, gates) -> `_input_gradient_norms`, traced once per model and mode."""
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    key = f"_explorer_single_path_{'init' if subject.at_init else 'trained'}"
    if getattr(model, key, None) is None:
        setattr(model, key, tf.function(
            lambda pixels, labels, gates: _input_gradient_norms(subject, model, pixels, labels, path=gates),
            reduce_retracing=True))
    return getattr(model, key)


def measure_set(subject: Subject, model, x, y, gates, method: str = "single"):
    """One pass over a set (or a set per image) of kept branches: the net's probabilities and
    the mean input-gradient norm.

    Args:
        subject: the net measured (its mode: see `subjects.run`).
        model: its built `ResNet` (`subject.model()`).
        x, y: uint8 images and their labels.
        gates: 1 for the blocks whose branch the path goes through, 0 for the others:
            (blocks,), or (images, blocks) for a set per image ("single" only).
        method: "single" (the forward pass whole, the gradient through one path) or "subnet"
            (the other blocks' branches deleted, as in the lesion study).

    Returns:
        (probabilities as a NumPy array, the mean over images of the gradient norm).
    """
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    pixels, labels = tf.constant(x, tf.float32), tf.constant(y)
    gates = np.asarray(gates, np.float32)
    if method == "single":  # always a row of gates per image: one traced signature
        rows = np.broadcast_to(gates, (len(x), gates.shape[-1]))
        probs, norms = _single_path_fn(subject, model)(pixels, labels, tf.constant(rows))
    else:
        probs, norms = _input_gradient_norms(subject, model, pixels, labels,
                                             drop_blocks=tuple(np.flatnonzero(gates == 0).tolist()))
    return probs.numpy(), float(tf.reduce_mean(norms))


def _per_length(subject: Subject, model, x, y, k: int, subsets: int, method: str, rng) -> float:
    """The mean gradient norm of paths through k branches: `subsets` passes; in each, every
    image has a random set of its own ("single") or all share one ("subnet")."""
    n = len(model.blocks)
    passes = _sets(n, k, subsets, rng)
    if method == "subnet" or len(passes) == 1:
        return float(np.mean([measure_set(subject, model, x, y, _gates(n, kept), method)[1]
                              for kept in passes]))
    return float(np.mean([measure_set(subject, model, x, y,
                                      _gates(n, _random_sets(n, k, len(x), rng), len(x)), method)[1]
                          for _ in passes]))


def path_lengths(subject: Subject, samples=64, subsets=1, method="single", source: str | None = None,
                 progress=None, budget: bool = False) -> dict:
    """The gradient each path length carries to the input (Veit et al. 2016, Figure 6).

    Args:
        subject: the net (see `subjects.trained` and `subjects.fresh`); a residual one.
        samples: test images (the first ones), 1 to `limits.MAX_PATH_SAMPLES`.
        subsets: passes per length k, 1 to `limits.MAX_PATH_SUBSETS` (fewer where C(n, k) is
            smaller). In each, "single" gives every image a random set of k branches of its
            own (so `samples` x `subsets` paths per length), "subnet" one set shared by all;
            seeded by the subject's seed.
        method: "single" (one path, Veit et al.'s) or "subnet" (see the module's docstring).
        source: the data source of the test images (see `data.load_cifar10`); None for the default.
        progress: optional `progress(fraction, text)` callback, called before each length.
        budget: refuse a request over this host's budget (see `limits.check_paths_request`).

    Returns:
        {"blocks": n, "lengths": [0..n], "path_counts", "gradient_per_path", "total",
        "effective_range": [lo, hi], "share", "model", "net", "at_init", "method", "samples",
        "subsets", "data", "notice"}: the mean norm (over images and sets) of the loss
        gradient at the normalized input per length, that times C(n, k), and the shortest
        range of lengths holding `share` of the total.

    Raises:
        ValueError: a value is out of range, the net is plain, the request is over budget,
            or the checkpoint or data cannot be had.
    """
    method = path_method(method)
    samples, subsets = check_paths_request(samples, subsets, subject.spec, budget)
    if not subject.spec.residual:
        raise ValueError(f"{subject.spec.name} has one path, through all its blocks: the path-length "
                         "analysis needs a residual net")
    report = progress or (lambda fraction, text: None)
    x, y, data_source, notice = test_images(samples, source)
    model = subject.model()
    n = len(model.blocks)
    rng = np.random.default_rng(subject.seed)
    per_path = []
    for k in range(n + 1):
        report(k / (n + 1), f"paths through {k} of {n} branches")
        per_path.append(_per_length(subject, model, x, y, k, subsets, method, rng))
    counts = path_counts(n)
    total = [count * g for count, g in zip(counts, per_path)]
    return {"blocks": n, "lengths": list(range(n + 1)), "path_counts": counts,
            "gradient_per_path": [float(f"{g:.5g}") for g in per_path],
            "total": [float(f"{t:.5g}") for t in total], "effective_range": effective_range(total),
            "share": SHARE, "model": subject.name, "net": subject.spec.to_config(),
            "at_init": subject.at_init, "method": method,
            "samples": len(x), "subsets": subsets, "data": data_source, "notice": notice}


def path_fit(result: dict) -> dict | None:
    """A line through log g(k), the gradient per path against its length (Veit et al.'s
    exponential decay), and the total it gives, C(n, k) times the line: at a few images and
    one pass per length each measured g(k) is a handful of random paths, and a single noisy
    length makes a spike of the measured total, C(n, k) times it, that the line does not.

    Returns:
        {"decay": the factor per extra branch, "gradient": the line at each length, "total":
        C(n, k) times it, "effective_range": the shortest range holding `SHARE` of that total},
        or None with fewer than two lengths measured above zero.
    """
    lengths = np.asarray(result["lengths"], dtype=float)
    g = np.asarray(result["gradient_per_path"], dtype=float)
    keep = g > 0
    if keep.sum() < 2:
        return None
    slope, intercept = np.polyfit(lengths[keep], np.log(g[keep]), 1)
    line = np.exp(intercept + slope * lengths)
    total = [count * float(value) for count, value in zip(result["path_counts"], line)]
    return {"decay": float(np.exp(slope)), "gradient": [float(f"{v:.5g}") for v in line],
            "total": [float(f"{t:.5g}") for t in total], "effective_range": effective_range(total)}


def held_share(result: dict, fitted: bool = False) -> float:
    """The share of the total gradient the effective range really holds (at least `share`:
    the range is whole lengths, so it may hold more, say 96% where 90% was asked); of the
    fitted total (`path_fit`) with `fitted`."""
    source = path_fit(result) if fitted else None
    lo, hi = (source or result)["effective_range"]
    total = np.asarray((source or result)["total"], dtype=float)
    return float(total[lo: hi + 1].sum() / total.sum()) if total.sum() > 0 else 0.0


def paths_reading(result: dict) -> str:
    """What a path-length analysis shows, in words computed from its numbers, beside Veit et
    al.'s 5-17 of 54 blocks for a trained ResNet-110 (Markdown)."""
    n, (lo, hi) = result["blocks"], result["effective_range"]
    held = held_share(result)
    fit = path_fit(result)
    moment = "" if result["at_init"] else "trained; "  # a fresh net's name says "at initialization"
    how = ("a random path per image, the forward pass whole (Veit et al.'s way)"
           if result["method"] == "single" else "the net left after deleting the other branches")
    text = [(f"**{result['model']}** ({moment}{result['samples']} test images, {result['subsets']} "
            f"pass{'es' * (result['subsets'] > 1)} per length, {how}): {n} blocks, "
            f"2^{n} = {magnitude(2.0 ** n)} paths, "
            f"the typical path goes through {n / 2:g} branches.")]
    if fit is not None:
        (flo, fhi), fitted = fit["effective_range"], held_share(result, fitted=True)
        text.append(f"Each extra branch on a path multiplies the gradient it carries by about "
                    f"{magnitude(fit['decay'])} (a line through the log of the gradient per path). By "
                    f"that line, paths through **{flo} to {fhi} branches carry {fitted:.0%}** of the "
                    f"total gradient ({flo / max(n, 1):.0%} to {fhi / max(n, 1):.0%} of the blocks); the "
                    f"measured points alone put {held:.0%} in {lo} to {hi}.")
    else:
        text.append(f"Paths through **{lo} to {hi} branches carry {held:.0%}** of the total gradient "
                    f"({lo / max(n, 1):.0%} to {hi / max(n, 1):.0%} of the blocks).")
    g = result["gradient_per_path"]
    jumps = [k for k in range(1, len(g)) if g[k] > 3 * g[k - 1] > 0]
    if jumps:
        text.append(f"The gradient per path jumps up at length{'s' * (len(jumps) > 1)} "
                    f"{', '.join(map(str, jumps))} (over 3 times the "
                    "length before): a few random paths dominate so small a sample; more test images or "
                    "passes smooth the curve and the range.")
    text.append("Veit et al. (2016, Figure 6) found almost all the gradient of a trained ResNet-110 (54 "
                "blocks) in paths of 5 to 17 blocks (9% to 31% of them), far shorter than its typical path "
                "of 27." + ("" if not result["at_init"] else " Theirs was trained; this net is at "
                            "initialization."))
    return " ".join(text)
