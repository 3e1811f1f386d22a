"""Flip test-time augmentation: the mean of the softmax of an image and of its mirror."""

import numpy as np
import pytest

from explorer.core.specs import make_spec
from explorer.nets.checkpoints import check_tta, predict, predict_augmented
from explorer.nets.models import ResNet


@pytest.fixture(scope="module")
def model():
    import keras

    keras.utils.set_random_seed(3)
    net = ResNet(make_spec(8, 1))
    net.build((None, 32, 32, 3))
    return net


def test_flip_is_the_mean_of_the_image_and_its_mirror_computed_by_hand(model):
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    by_hand = []
    for image in images:
        mirror = np.ascontiguousarray(image[:, ::-1])  # columns reversed: left and right swap
        probs = [np.asarray(model(np.stack([view]).astype(np.uint8), training=False))[0]
                 for view in (image, mirror)]
        by_hand.append((probs[0] + probs[1]) / 2)
    np.testing.assert_allclose(predict_augmented(model, images, "flip"), np.array(by_hand), atol=1e-5)
    np.testing.assert_allclose(predict_augmented(model, images, "none"), predict(model, images), atol=0)


def test_a_mirror_symmetric_image_reads_the_same_with_and_without_flips(model):
    half = np.random.default_rng(1).integers(0, 256, (1, 32, 16, 3), dtype=np.uint8)
    symmetric = np.concatenate([half, half[:, :, ::-1]], axis=2)
    np.testing.assert_allclose(predict_augmented(model, symmetric, "flip"), predict(model, symmetric),
                               atol=1e-5)


@pytest.mark.parametrize("tta", ["mirror", "", None, 1, "FLIP"])
def test_unknown_augmentations_are_refused_with_the_choices(tta):
    with pytest.raises(ValueError, match="one of none, flip"):
        check_tta(tta)


def test_classify_with_flips_returns_the_averaged_probabilities(model):
    from explorer.studies.classify import classify

    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    top, _ = classify(model, image, top=10, tta="flip")
    expected = predict_augmented(model, image[None], "flip")[0]
    names = list(top)
    assert top[names[0]] == pytest.approx(float(expected.max()), abs=1e-6)
    with pytest.raises(ValueError, match="test-time augmentation"):
        classify(model, image, tta="rotate")
