"""The input pipeline of training: augmentation and the streams of batches an epoch reads.

Under TensorFlow the streams are tf.data pipelines; under another Keras backend (JAX on a GPU
machine without TensorFlow) a NumPy generator over the same epochs. In both, every random
draw is a function of (seed, epoch, batch), so a resumed run sees the very batches an
uninterrupted run sees (see `make_datasets`). Images stay uint8: the model normalizes its
input itself, with the statistics `input_stats` measures.
"""

from __future__ import annotations

import numpy as np

from explorer.data.cifar import Dataset
from explorer.nets.models import tensorflow_backend
from explorer.train.cluster import log_shard, per_worker_batch, shard
from explorer.train.config import TrainConfig


def augment(images, crop_padding: int = 4, cutout: int = 0, seed=None):
    """Random crop, horizontal flip and optional cutout, vectorized over a uint8 batch.

    Random crop with `crop_padding` zero pixels each side, horizontal flip (half the images)
    and, when `cutout` > 0, one grey square of that side per image; one op per batch, not
    per image.

    Args:
        images: a (batch, size, size, channels) uint8 tensor.
        crop_padding: zero pixels added on each side before a random size x size window is cut.
        cutout: side of the mid-grey (128) square put at a random center of each image,
            clipped at the border; 0 for none.
        seed: a shape-[2] integer tensor: the same seed gives the same crops, flips and
            squares (stateless random ops); None draws one from the global generator.

    Returns:
        A tensor of the same shape and dtype.
    """
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    if seed is None:
        seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)
    crop_seed, flip_seed, cutout_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    batch = tf.shape(images)[0]
    size = images.shape[1]
    padded = tf.pad(images, [[0, 0], [crop_padding] * 2, [crop_padding] * 2, [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], crop_seed, 0, 2 * crop_padding + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(size)[None]
    cols = offsets[:, 1:] + tf.range(size)[None]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([batch, 1, 1, 1], flip_seed) < 0.5
    out = tf.where(flip, tf.reverse(out, axis=[2]), out)
    if cutout:
        # DeVries & Taylor (2017): a cutout x cutout square at a random center, clipped at the
        # border; filled with mid-grey, near the data mean, as their zeros after normalization
        starts = tf.random.stateless_uniform([batch, 2], cutout_seed, 0, size, dtype=tf.int32) - cutout // 2
        grid = tf.range(size)[None]
        in_rows = (grid >= starts[:, :1]) & (grid < starts[:, :1] + cutout)
        in_cols = (grid >= starts[:, 1:]) & (grid < starts[:, 1:] + cutout)
        hole = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])[..., None]
        out = tf.where(hole, tf.fill(tf.shape(out), tf.constant(128, out.dtype)), out)
    return out


def augment_numpy(images: np.ndarray, crop_padding: int = 4, cutout: int = 0,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """`augment` in NumPy, for Keras backends other than TensorFlow (see `make_datasets`).

    The same operations with the same distributions (crop offsets uniform in
    [0, 2 * crop_padding], flip with probability 1/2, the cutout square's corner uniform in
    [-cutout // 2, size - cutout // 2)); the draws come from `rng`, not TensorFlow's
    generators, so the two give different (equally likely) batches for one seed.

    Args:
        images: a (batch, size, size, channels) uint8 array.
        crop_padding: zero pixels added on each side before a random size x size window is cut.
        cutout: side of the mid-grey (128) square; 0 for none.
        rng: the generator to draw from; None for a fresh, unseeded one.

    Returns:
        A new array of the same shape and dtype.
    """
    rng = rng if rng is not None else np.random.default_rng()
    batch, size = images.shape[0], images.shape[1]
    pad = crop_padding
    padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    offsets = rng.integers(0, 2 * pad + 1, size=(batch, 2))
    rows = offsets[:, :1] + np.arange(size)[None]
    cols = offsets[:, 1:] + np.arange(size)[None]
    out = padded[np.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(batch) < 0.5
    out[flip] = out[flip, :, ::-1]
    if cutout:
        starts = rng.integers(0, size, size=(batch, 2)) - cutout // 2
        grid = np.arange(size)[None]
        in_rows = (grid >= starts[:, :1]) & (grid < starts[:, :1] + cutout)
        in_cols = (grid >= starts[:, 1:]) & (grid < starts[:, 1:] + cutout)
        out[in_rows[:, :, None] & in_cols[:, None, :]] = 128
    return out


def _numpy_datasets(x_train, y_train, x_test, y_test, num_classes, config, initial_epoch):
    """`make_datasets` for Keras backends without tf.data: a generator over the same
    epochs, each drawn from NumPy generators seeded by (seed, epoch) and (seed, epoch, batch),
    so a resumed run again sees what an uninterrupted one does. In a cluster run (see
    `cluster`) each worker yields its own rows of every batch: `batch_size` is the global batch."""
    eye = np.eye(num_classes, dtype=np.float32)
    size = config.batch_size
    drop_remainder = len(x_train) >= size
    worker, workers = shard()
    local = per_worker_batch(size, workers)
    rows = slice(worker * local, (worker + 1) * local)
    if workers > 1 and not drop_remainder:  # the workers' shards of a partial batch would differ in size
        raise ValueError(f"a cluster run needs at least one whole batch of {size} training images, "
                         f"got {len(x_train)}")

    def stream():
        for epoch in range(initial_epoch, config.epochs):
            order = np.random.default_rng([config.seed, epoch]).permutation(len(x_train))
            stop = len(order) - len(order) % size if drop_remainder else len(order)
            for step, start in enumerate(range(0, stop, size)):
                index = order[start: start + size]
                rng = np.random.default_rng([config.seed, epoch, step + 1])
                if workers > 1 and step == 0:
                    log_shard(epoch, index[rows])
                # the whole batch is augmented, then this worker's rows kept: the draws stay
                # those of one process (a sliver of a step's time), so N workers train on
                # the batches one would
                yield augment_numpy(x_train[index], 4, config.cutout, rng)[rows], eye[y_train[index[rows]]]

    return stream(), (x_test, eye[y_test]), len(x_train)


def split_training(data: Dataset, config: TrainConfig):
    """The images a run trains on and the ones it holds out.

    Args:
        data: the loaded dataset.
        config: the run's options; uses `subset` (the first N training images are the run's)
            and `holdout` (the last N of those are kept out of training).

    Returns:
        (x_train, y_train, x_holdout, y_holdout); the held-out arrays are empty for
        `holdout` 0.

    Raises:
        ValueError: the holdout would leave no image to train on.
    """
    x, y = data.x_train, data.y_train
    if config.subset:
        x, y = x[: config.subset], y[: config.subset]
    if config.holdout >= len(x) and config.holdout:
        raise ValueError(f"a holdout of {config.holdout} images leaves none of the {len(x)} training "
                         "images to train on; hold out fewer")
    keep = len(x) - config.holdout
    return x[:keep], y[:keep], x[keep:], y[keep:]


def make_datasets(data: Dataset, config: TrainConfig, initial_epoch: int = 0):
    """tf.data pipelines of (uint8 images, one-hot labels); the model normalizes its input.

    Every random draw of the training stream (shuffle, crop, flip, cutout) is a stateless
    function of (`config.seed`, epoch, batch), so a run resumed at `initial_epoch` sees the
    very batches an uninterrupted run sees from there on. A stateful shuffle and stateful
    random ops restart their sequences in a new process: a resumed run replayed its first
    epochs' images instead (BackupAndRestore restores weights and optimizer, not the
    pipeline's generators).

    Args:
        data: the loaded dataset.
        config: the run's options; uses `subset`, `holdout` (see `split_training`),
            `test_subset`, `batch_size`, `cutout`, `seed` and `epochs`.
        initial_epoch: epochs already done; the stream starts with the next one.

    Returns:
        (train, test, number of training images): train yields the batches of epochs
        `initial_epoch + 1` to `config.epochs` in turn, each a new shuffle of all training
        images in batches of `batch_size` (the last partial batch dropped when there is a
        full one), augmented; test is in order, in batches of 500, unaugmented. Under a
        Keras backend other than TensorFlow (JAX on a GPU machine without TensorFlow, say),
        train is a Python generator and test a tuple of arrays (see `_numpy_datasets`).
    """
    num_classes = len(data.classes)
    x_train, y_train, _, _ = split_training(data, config)
    x_test, y_test = data.x_test, data.y_test
    if config.test_subset:
        x_test, y_test = x_test[: config.test_subset], y_test[: config.test_subset]
    if not tensorflow_backend():
        return _numpy_datasets(x_train, y_train, x_test, y_test, num_classes, config, initial_epoch)
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    onehot = lambda x, y: (x, tf.one_hot(y, num_classes))
    images, labels = tf.constant(x_train), tf.constant(y_train)
    run_seed = tf.constant([config.seed, 0], tf.int64)
    drop_remainder = len(x_train) >= config.batch_size

    def epoch_batches(epoch):
        seed = tf.random.experimental.stateless_fold_in(run_seed, epoch)
        order = tf.argsort(tf.random.stateless_uniform([len(x_train)], seed))

        def load(step, index):
            batch_seed = tf.random.experimental.stateless_fold_in(seed, step + 1)
            return augment(tf.gather(images, index), 4, config.cutout, batch_seed), tf.gather(labels, index)

        return (tf.data.Dataset.from_tensor_slices(order)
                .batch(config.batch_size, drop_remainder=drop_remainder).enumerate()
                .map(load, num_parallel_calls=tf.data.AUTOTUNE))

    train = (tf.data.Dataset.range(initial_epoch, config.epochs).flat_map(epoch_batches)
             .map(onehot).prefetch(tf.data.AUTOTUNE))
    test = (tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(500)
            .map(onehot).prefetch(tf.data.AUTOTUNE))
    return train, test, len(x_train)


def input_stats(x_train: np.ndarray, normalization: str) -> dict:
    """Statistics of the training images in pixel units, stored inside the model.

    Args:
        x_train: the (N, H, W, 3) training images.
        normalization: "per_pixel_mean" (the tutorial's: subtract the mean image, no
            scaling); anything else gives the per-channel mean and std.

    Returns:
        {"mean", "std"} as lists rounded to 3 places: one value per channel in each; for
        "per_pixel_mean", an H x W x 3 nested mean and a std of [1.0, 1.0, 1.0].
    """
    x = x_train.astype(np.float32)
    if normalization == "per_pixel_mean":  # the tutorial: subtract the mean image, no scaling
        return {"mean": x.mean(axis=0).round(3).tolist(), "std": [1.0, 1.0, 1.0]}
    return {"mean": x.mean(axis=(0, 1, 2)).round(3).tolist(),
            "std": x.std(axis=(0, 1, 2)).round(3).tolist()}
