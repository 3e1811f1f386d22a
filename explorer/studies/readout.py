"""Linear read-outs (Alain and Bengio 2016's probes): how well a linear classifier reads the
class from each block's globally pooled output, fitted in closed form.

A probe per block is ridge regression onto one-hot targets, solved with `numpy.linalg.solve`
(its features are at most a few hundred pooled channels, so the solve takes milliseconds; a
logistic probe would need an iterative fit for every penalty tried). The features are
standardised inside the penalty, so one penalty means the same for a block of 16 channels
and one of 256; it is chosen per block among `PENALTIES` by the accuracy on the last fifth
of the training images, then the probe is fitted again on all of them. Probes are fitted on
training images (the checkpoint was trained on them, never tested on them) and scored on
test images, where the checkpoint's own accuracy is measured on the same images in the same
forward pass.

The shipped checkpoints' probes at the default settings are fitted once
(`python -m explorer precompute`) and kept in `pretrained/studies/` through `shipped.stored`,
weights included, so a visitor's image is read out at every block without a fit.
"""

from __future__ import annotations

import time

import numpy as np

from explorer.core.limits import READOUT_TEST, READOUT_TRAIN, check_readout_budget, readout_images
from explorer.core.specs import CIFAR_CLASSES
from explorer.data.cifar import load_cifar10
from explorer.nets.checkpoints import load
from explorer.nets.models import checkpoint_spec
from explorer.shipped import stored

# Ridge penalties tried, relative to each feature's variance (penalty * n * var_j on the
# diagonal): from nearly least squares to strong shrinkage
PENALTIES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
HOLDOUT = 5  # one training image in HOLDOUT chooses the penalty
BATCH = 250  # images per forward pass
TOP = 3  # classes `readout_top` names per block


def ridge(features: np.ndarray, targets: np.ndarray, penalty: float) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression with an unpenalised intercept, in closed form.

    Solves (Xc'Xc + penalty * n * diag(var)) W = Xc'Yc, with Xc and Yc the centred features and
    targets and var each feature's variance: ridge on standardised features, returned in the
    features' own units. At penalty 0 it is ordinary least squares with an intercept.

    Args:
        features: (n, d) float array.
        targets: (n, k) float array (one-hot rows for a classifier).
        penalty: 0 or more.

    Returns:
        (weights (d, k), bias (k,)), float64: predictions are `features @ weights + bias`.
    """
    x = np.asarray(features, np.float64)
    y = np.asarray(targets, np.float64)
    mean_x, mean_y = x.mean(0), y.mean(0)
    xc, yc = x - mean_x, y - mean_y
    variance = xc.var(0)
    # a channel that is zero on every image (a dead ReLU) gets a tiny diagonal, not a singular system
    diagonal = penalty * len(x) * (variance + 1e-12 * (variance.max() + 1e-30))
    gram = xc.T @ xc + np.diag(diagonal)
    try:
        weights = np.linalg.solve(gram, xc.T @ yc)
    except np.linalg.LinAlgError:  # penalty 0 on collinear features: the least-norm solution
        weights = np.linalg.lstsq(gram, xc.T @ yc, rcond=None)[0]
    return weights, mean_y - mean_x @ weights


def _accuracy(features, labels, weights, bias) -> float:
    return float(np.mean(np.argmax(features @ weights + bias, -1) == labels)) if len(labels) else 0.0


def fit_probe(features: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray, float]:
    """One block's probe: the penalty chosen on held-out training images, then fitted on all.

    Args:
        features: (n, d) pooled block outputs of the training images.
        labels: (n,) integer classes.
        classes: how many classes.

    Returns:
        (weights (d, classes), bias (classes,), the penalty chosen).
    """
    targets = np.eye(classes)[labels]
    held = max(1, len(labels) // HOLDOUT)
    fit_x, fit_t, held_x, held_y = features[:-held], targets[:-held], features[-held:], labels[-held:]
    best, chosen = -1.0, PENALTIES[-1]
    for penalty in reversed(PENALTIES):  # ties go to the larger penalty: the simpler probe
        score = _accuracy(held_x, held_y, *ridge(fit_x, fit_t, penalty))
        if score > best:
            best, chosen = score, penalty
    return (*ridge(features, targets, chosen), chosen)


def _pooled_fn(model):
    """A compiled pass giving (probabilities, every block's output averaged over its positions),
    kept on the model like `checkpoints.predict`'s."""
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    fn = getattr(model, "_explorer_pooled", None)
    if fn is None:
        def pooled(x):
            probs, outputs = model.forward(x, training=False, collect=True)
            means = [tf.cast(tf.reduce_mean(output, [1, 2]), tf.float32) for output in outputs]
            return tf.cast(probs, tf.float32), means

        fn = tf.function(pooled, reduce_retracing=True)
        model._explorer_pooled = fn
    return fn


def pooled_features(model, images: np.ndarray, report=None) -> tuple[list[np.ndarray], np.ndarray]:
    """Every block's globally pooled output for a set of images, in one pass per batch.

    Args:
        model: a loaded `ResNet`.
        images: raw uint8 pixels, (n, *spec.input_shape).
        report: optional `report(done, total)`, called after each batch.

    Returns:
        (a (n, channels) float32 array per block, input to output; the (n, classes) probabilities).
    """
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    fn, blocks, probs = _pooled_fn(model), [[] for _ in model.blocks], []
    for start in range(0, len(images), BATCH):
        batch_probs, pooled = fn(tf.constant(images[start: start + BATCH]))
        probs.append(batch_probs.numpy())
        for kept, value in zip(blocks, pooled):
            kept.append(value.numpy())
        if report is not None:
            report(min(start + BATCH, len(images)), len(images))
    empty = [np.zeros((0, block.plan.out_shape[-1]), np.float32) for block in model.blocks]
    return ([np.concatenate(kept) if kept else none for kept, none in zip(blocks, empty)],
            np.concatenate(probs) if probs else np.zeros((0, model.spec.num_classes), np.float32))


def _short(array: np.ndarray) -> list:
    """An array as nested lists of 6 significant digits: a stored probe's weights stay small."""
    return np.vectorize(lambda v: float(f"{v:.6g}"), otypes=[float])(array).tolist()


def readout(checkpoint, source: str | None = None, train: int = READOUT_TRAIN, test: int = READOUT_TEST,
            progress=None) -> dict:
    """Fits a probe per block of a checkpoint and scores them (see the module's notes).

    Args:
        checkpoint: path of a `.keras` checkpoint.
        source: the data source (see `data.load_cifar10`); None for the default.
        train: training images the probes are fitted on (the first ones of the split).
        test: test images they are scored on (the first ones), the checkpoint's own too.
        progress: optional `progress(fraction, text)` callback.

    Returns:
        {"model", "net", "blocks", "accuracy", "model_accuracy", "train_images", "test_images",
        "penalty", "classes", "weights", "bias", "seconds"}: per block, the probe's test accuracy,
        the penalty chosen and the probe (weights (channels, classes) and bias, 6 digits); the
        checkpoint's own accuracy on the same test images; the images used (fewer than asked
        where the source has fewer). Accuracies are fractions rounded to 4 places.

    Raises:
        ValueError: a count is out of range, the checkpoint cannot be loaded, or the data
            cannot be had.
    """
    train, test = readout_images(train, test)
    report = progress or (lambda fraction, text: None)
    start = time.perf_counter()
    report(0.0, f"loading {getattr(checkpoint, 'name', checkpoint)} and the images")
    model = load(checkpoint)  # shared: the probes read activations, never change a weight
    data = load_cifar10(source)
    x_train, y_train = data.x_train[:train], data.y_train[:train]
    x_test, y_test = data.x_test[:test], data.y_test[:test]
    total = len(x_train) + len(x_test)

    def passed(offset):
        return lambda done, _: report(0.9 * (offset + done) / max(total, 1),
                                      f"{offset + done:,} of {total:,} images through {model.spec.name}")

    train_features, _ = pooled_features(model, x_train, passed(0))
    test_features, probs = pooled_features(model, x_test, passed(len(x_train)))
    report(0.9, "fitting a probe per block")
    classes = model.spec.num_classes
    fits = [fit_probe(features, y_train, classes) for features in train_features]
    names = model.class_names or (list(CIFAR_CLASSES) if classes == len(CIFAR_CLASSES)
                                  else [str(i) for i in range(classes)])
    return {"model": model.spec.name, "net": model.spec.to_config(),
            "blocks": [block.name for block in model.blocks],
            "accuracy": [round(_accuracy(f, y_test, w, b), 4) for f, (w, b, _) in zip(test_features, fits)],
            "model_accuracy": round(float(np.mean(probs.argmax(-1) == y_test)) if len(y_test) else 0.0, 4),
            "train_images": len(y_train), "test_images": len(y_test),
            "penalty": [penalty for _, _, penalty in fits], "classes": list(names),
            "weights": [_short(w) for w, _, _ in fits], "bias": [_short(b) for _, b, _ in fits],
            "seconds": round(time.perf_counter() - start, 1)}


def readout_study(checkpoints, train=READOUT_TRAIN, test=READOUT_TEST, source: str | None = None,
                  progress=None, budget: bool = True, use_stored: bool = True) -> list[dict]:
    """The read-outs of one checkpoint or more (a net and its plain twin, say), side by side.

    Args:
        checkpoints: paths of `.keras` checkpoints (the app's come from `pretrained.resolve`).
        train: training images per probe (see `limits.readout_images`).
        test: test images.
        source: the data source; None for the default.
        progress: optional `progress(fraction, text)` callback.
        budget: refuse a live request over this host's budget (`limits.check_readout_budget`);
            False for the command line.
        use_stored: serve a shipped checkpoint's probes fitted once at these settings on this
            data (see `stored`); False fits every checkpoint now (the command line).

    Returns:
        The `readout` results, in order; a stored one carries "stored" (its command and date).

    Raises:
        ValueError: a count is out of range, the request is over budget, a checkpoint cannot
            be loaded, or the data cannot be had.
    """
    train, test = readout_images(train, test)
    settings = {"test": test, "train": train}
    kept = [use_stored and stored.lookup("readout", path, settings, source) for path in checkpoints]
    if budget:
        check_readout_budget(train, test, [checkpoint_spec(path) for path, found in zip(checkpoints, kept)
                                           if not found])
    return [found or readout(path, source, train, test, progress) for path, found in zip(checkpoints, kept)]


def readout_top(result: dict, pooled: list[np.ndarray], top: int = TOP) -> list[list[dict]]:
    """What each block's probe reads in one image: its `top` classes and their scores.

    Args:
        result: a `readout` result (its "weights", "bias" and "classes").
        pooled: the image's pooled output of each block, (channels,) each, input to output.
        top: how many classes per block.

    Returns:
        Per block, [{"class", "score"}] best first; a score is the probe's output for that
        class (near 1 for a class it is sure of, as its targets were one-hot).

    Raises:
        ValueError: the probes are of another net (another number of blocks or channels).
    """
    if len(result["weights"]) != len(pooled):
        raise ValueError(f"the read-out has {len(result['weights'])} blocks, the net {len(pooled)}")
    tops = []
    for features, weights, bias in zip(pooled, result["weights"], result["bias"]):
        weights = np.asarray(weights)
        if weights.shape[0] != np.shape(features)[-1]:
            raise ValueError(f"a probe of {weights.shape[0]} channels cannot read a block of "
                             f"{np.shape(features)[-1]}")
        scores = np.asarray(features, np.float64) @ weights + np.asarray(bias)
        tops.append([{"class": result["classes"][i], "score": round(float(scores[i]), 4)}
                     for i in np.argsort(scores)[::-1][:top]])
    return tops


def first_readable(result: dict, within: float = 0.05) -> str | None:
    """The first block whose probe comes within `within` of the checkpoint's own accuracy."""
    return next((name for name, accuracy in zip(result["blocks"], result["accuracy"])
                 if accuracy >= result["model_accuracy"] - within), None)


def readout_reading(results: list[dict]) -> str:
    """What the probe curves show, in words computed from `readout` results (Markdown)."""
    lines = []
    for r in results:
        stages = {}
        for name, accuracy in zip(r["blocks"], r["accuracy"]):
            stages.setdefault(name.split("_")[0], []).append(accuracy)
        ends = "; ".join(f"{stage} {values[0]:.1%} to {values[-1]:.1%}" for stage, values in stages.items())
        found = first_readable(r)
        lines.append(f"**{r['model']}**: the read-out climbs {ends}; the checkpoint itself "
                     f"{r['model_accuracy']:.1%} on the same {r['test_images']:,} test images"
                     + (f"; within 5 points of it from {found} on" if found else "")
                     + f" (probes fitted on {r['train_images']:,} training images).")
    return "\n\n".join(lines)
