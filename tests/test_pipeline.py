"""The input pipeline: augmentation, and streams that a resumed run sees as an uninterrupted one does."""

from explorer.train.config import TrainConfig


def test_cutout_greys_one_square_of_the_given_side():
    import numpy as np
    import tensorflow as tf

    from explorer.train.pipeline import augment

    tf.random.set_seed(1)
    images = tf.fill([64, 32, 32, 3], tf.constant(7, tf.uint8))  # flips and crops keep 7 inside
    out = augment(images, crop_padding=0, cutout=16).numpy()
    _assert_one_grey_square_each(out, 16)
    assert set(np.unique(out)) == {7, 128}


def _assert_one_grey_square_each(out, side):
    import numpy as np

    grey = (out == 128).all(-1)
    areas = grey.sum(axis=(1, 2))
    assert areas.max() == side * side and areas.min() >= (side // 2) ** 2  # whole, or clipped at a corner
    for mask in grey:
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        assert mask.sum() == len(rows) * len(cols)  # one rectangle


def _batches(dataset, count):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(count)]


def test_a_resumed_stream_continues_where_the_uninterrupted_one_was():
    """The batches of epoch 3 are the same whether the stream starts at epoch 1 or 3: a
    resumed run must not replay its first epochs' shuffle and augmentation (the resumed
    ResNet-56 did, in session 5: epochs 46-47 repeated 44-45's images, and its training
    accuracy jumped 3 points for two epochs)."""
    import numpy as np

    from explorer.data.cifar import synthetic
    from explorer.train.pipeline import make_datasets

    data = synthetic(256, 32)
    config = TrainConfig(depth=8, batch_size=64, cutout=8, epochs=4, data="synthetic")
    steps = 256 // 64
    whole, _, _ = make_datasets(data, config)
    resumed, _, _ = make_datasets(data, config, initial_epoch=2)
    from_start = _batches(whole, 4 * steps)
    from_epoch_3 = _batches(resumed, 2 * steps)
    assert len(from_epoch_3) == 2 * steps  # the stream ends with the last epoch
    for (x, y), (x2, y2) in zip(from_start[2 * steps:], from_epoch_3):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    # and the epochs differ from one another: each is its own shuffle and augmentation
    first, second = from_start[0][0], from_start[steps][0]
    assert not np.array_equal(first, second)
    # every image once per epoch (labels of an epoch are a permutation of all labels)
    epoch_labels = np.concatenate([y.argmax(-1) for _, y in from_start[:steps]])
    assert sorted(epoch_labels) == sorted(data.y_train)


def test_numpy_augment_crops_a_window_of_the_padded_image_flips_and_cuts_out():
    """`augment_numpy` (the stream under JAX, where TensorFlow is absent) does what `augment`
    does: each output is a 32x32 window of the zero-padded image, mirrored or not, with one
    grey square when cutout is on; offsets and flips cover their whole range."""
    import numpy as np

    from explorer.train.pipeline import augment_numpy

    rng = np.random.default_rng(0)
    images = rng.integers(0, 128, (200, 32, 32, 3), dtype=np.uint8)  # below the grey 128
    out = augment_numpy(images, 4, 0, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, [(0, 0), (4, 4), (4, 4), (0, 0)])
    offsets, flips = set(), 0
    for image, source in zip(out, padded):
        found = [(r, c, f) for r in range(9) for c in range(9) for f in (0, 1)
                 if np.array_equal(image, source[r:r + 32, c:c + 32][:, ::-1] if f
                                   else source[r:r + 32, c:c + 32])]
        assert found, "not a window of the padded image"
        offsets.add(found[0][:2])
        flips += found[0][2]
    assert len(offsets) > 60 and 60 < flips < 140  # 81 offsets, half flipped
    _assert_one_grey_square_each(augment_numpy(images, 0, 16, np.random.default_rng(2)), 16)
    # the same generator state gives the same batch
    np.testing.assert_array_equal(augment_numpy(images, 4, 8, np.random.default_rng(3)),
                                  augment_numpy(images, 4, 8, np.random.default_rng(3)))


def test_the_numpy_stream_resumes_where_the_uninterrupted_one_was():
    """The stream used under Keras backends without tf.data (JAX on a GPU machine) keeps the
    resume property of the tf.data one: epoch 3 is the same from the start or from a resume."""
    import numpy as np

    from explorer.data.cifar import synthetic
    from explorer.train.pipeline import _numpy_datasets

    data = synthetic(256, 32)
    config = TrainConfig(depth=8, batch_size=64, cutout=8, epochs=4, data="synthetic")
    args = (data.x_train, data.y_train, data.x_test, data.y_test, 10, config)
    whole, (x_test, y_test), count = _numpy_datasets(*args, initial_epoch=0)
    resumed, _, _ = _numpy_datasets(*args, initial_epoch=2)
    from_start, from_epoch_3 = list(whole), list(resumed)
    assert count == 256 and len(from_start) == 16 and len(from_epoch_3) == 8
    for (x, y), (x2, y2) in zip(from_start[8:], from_epoch_3):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(from_start[0][0], from_start[4][0])
    epoch_labels = np.concatenate([y.argmax(-1) for _, y in from_start[:4]])
    assert sorted(epoch_labels) == sorted(data.y_train)
    assert from_start[0][0].dtype == np.uint8 and from_start[0][1].shape == (64, 10)
    np.testing.assert_array_equal(x_test, data.x_test)
    np.testing.assert_array_equal(y_test.argmax(-1), data.y_test)
