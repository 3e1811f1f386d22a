"""Checkpoints: load a `.keras` file, predict with it, evaluate it on a test split.

One loading policy. Every load goes through `models.load_model`, with `safe_mode=True`, so no
code in a file ever runs. Users that only read a model share one cached copy, `load`:
classification, Grad-CAM and the lesion study (it skips blocks in the forward pass and never
touches a weight). A user that changes weights gets a private copy, `load_checkpoint`: the
loss landscape assigns perturbed weights in place for every point of its grid, and on the
shared copy a classify request arriving meanwhile would answer with a perturbed net (and a
landscape that failed midway would leave it so). `evaluate` loads a private copy as well: it
is the command line's and `ship`'s, run once per file, and a cached copy would outlive it.

This module does not import the training recipe: reading a checkpoint needs the model and
the data, never the optimizer, the schedule or the input pipeline.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from explorer.core.checks import checkpoint_file, file_stamp, one_of
from explorer.core.specs import is_whole
from explorer.data.cifar import Dataset, load_cifar10


def load_checkpoint(path):
    """Loads a `.keras` checkpoint into a fresh model of its own (see `models.load_model`).

    Args:
        path: the checkpoint file.

    Returns:
        The `ResNet` it holds, shared with no one: its weights may be changed.

    Raises:
        ValueError: there is no file at `path`, or it is not a loadable ResNet checkpoint.
    """
    checkpoint_file(path)
    from explorer.nets.models import load_model  # here: a wrong path is refused before Keras loads

    try:
        return load_model(path)
    except Exception as err:  # noqa: BLE001 - corrupt zip, foreign file, unknown classes...
        raise ValueError(f"{Path(path).name} is not a loadable ResNet checkpoint "
                         f"({type(err).__name__})") from None


@functools.lru_cache(maxsize=6)
def _load(path: str, mtime_ns: int):
    return load_checkpoint(path)


def load(path):
    """The shared, cached model of a checkpoint, for users that only read it.

    Cached per file and modification time, so a file written again (a job's next epoch) is
    loaded again. Never change its weights: use `load_checkpoint` for that.

    Args:
        path: the checkpoint file.

    Returns:
        The `ResNet` it holds, shared with every other reader of the same file.

    Raises:
        ValueError: there is no file at `path`, or it is not a loadable ResNet checkpoint.
    """
    return _load(*file_stamp(path))


def predict(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Probabilities for uint8 images, in batches, through a compiled call.

    The tf.function is kept on the model, so later calls reuse its trace.

    Args:
        model: a `ResNet`.
        images: raw pixels in [0, 255], (N, *spec.input_shape).
        batch_size: images per call.

    Returns:
        An (N, num_classes) float32 array of softmax probabilities.
    """
    from explorer.nets.models import tensorflow_backend  # deferred: importing this module must not load Keras

    if not tensorflow_backend():
        import keras  # deferred: importing this module must not load Keras

        outs = [keras.ops.convert_to_numpy(model(images[i: i + batch_size], training=False))
                for i in range(0, len(images), batch_size)]
        return np.concatenate(outs).astype(np.float32) if outs else \
            np.zeros((0, model.spec.num_classes), np.float32)
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    fn = getattr(model, "_explorer_predict", None)
    if fn is None:
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        model._explorer_predict = fn
    outs = [fn(tf.constant(images[i: i + batch_size])).numpy()
            for i in range(0, len(images), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, model.spec.num_classes), np.float32)


# Test-time augmentation: "flip" averages the softmax of an image and of its mirror image, the
# largest single gain in David Page's DAWNBench study of CIFAR-10 ResNets (training flips
# images too, so the mirror is an image of the same class the net has learnt to read).
TTA_MODES = ("none", "flip")


def check_tta(tta) -> str:
    """`tta` if it is one of `TTA_MODES`; raises ValueError naming them otherwise."""
    return one_of(tta, TTA_MODES, "test-time augmentation")


def predict_augmented(model, images: np.ndarray, tta: str = "none") -> np.ndarray:
    """`predict`, averaged over the test-time augmentation `tta` (see `TTA_MODES`).

    Args:
        model: a `ResNet`.
        images: raw uint8 pixels (N, H, W, C).
        tta: "none" for the image alone, "flip" for the mean of the softmax of the image
            and of its horizontal mirror (one call of 2N images).

    Returns:
        An (N, num_classes) float32 array of probabilities.

    Raises:
        ValueError: `tta` is not one of `TTA_MODES`.
    """
    if check_tta(tta) == "none":
        return predict(model, images)
    both = predict(model, np.concatenate([images, images[:, :, ::-1]]))
    return (both[: len(images)] + both[len(images):]) / 2


def evaluate(checkpoint, source: str | None = None, data: Dataset | None = None,
             limit: int | None = None, tta: str = "none") -> dict:
    """Test accuracy of a `.keras` checkpoint on the test split of `source`.

    Args:
        checkpoint: path of the `.keras` file.
        source: the data source (see `data.load_cifar10`); None for the default. Not used
            when `data` is given.
        data: an already loaded dataset.
        limit: evaluate on the first `limit` test images only; None for all.
        tta: "flip" also measures the accuracy with flip test-time augmentation (see
            `predict_augmented`); "none" does not.

    Returns:
        {"test_accuracy", "n"}: the accuracy of the images alone as a fraction rounded to 4
        places, and the number of images; with `tta` "flip" also "test_accuracy_tta", the
        accuracy of the image and its mirror averaged.

    Raises:
        ValueError: there is no file at `checkpoint`, it is not a loadable ResNet
            checkpoint, `tta` is not one of `TTA_MODES`, or the data cannot be had.
    """
    if limit is not None and not (is_whole(limit) and limit >= 1):
        raise ValueError(f"limit must be a positive number of test images, got {limit!r}")
    check_tta(tta)
    model = load_checkpoint(checkpoint)  # before the data: a missing file is refused at once
    data = data if data is not None else load_cifar10(source)
    x, y = data.x_test[:limit], data.y_test[:limit]
    probs = predict(model, x)
    result = {"test_accuracy": round(float(np.mean(probs.argmax(-1) == y)), 4), "n": len(y)}
    if tta == "flip":  # the plain half is the figure above: predicted once, not twice
        probs = (probs + predict(model, x[:, :, ::-1])) / 2
        result["test_accuracy_tta"] = round(float(np.mean(probs.argmax(-1) == y)), 4)
    return result
