"""Top-k classes and Grad-CAM: the evaluation path, and the logit gradient Grad-CAM weighs."""

import numpy as np
import pytest
from PIL import Image

from explorer.core.specs import CIFAR_CLASSES, get_spec, make_spec
from explorer.data.cifar import load_cifar10
from explorer.data.images import prepare
from explorer.nets.checkpoints import load, predict
from explorer.nets.models import build_model
from explorer.studies import classify as classifier


def test_classify_uses_the_evaluation_path(tmp_path):
    model = build_model(get_spec("resnet20_v1"))
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = tmp_path / "test.png"
    Image.fromarray(image).save(path)
    label, seen = classifier.classify(model, str(path), top=10)
    np.testing.assert_array_equal(seen, image)
    expected = predict(model, image[None])[0]
    for i, name in enumerate(CIFAR_CLASSES):
        assert label[name] == pytest.approx(float(expected[i]), abs=1e-6)


def test_gradcam_overlays_the_enlarged_input():
    model = build_model(get_spec("resnet20_v1"))
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    overlay, caption = classifier.gradcam(model, image)
    assert overlay.shape == (192, 192, 3) and overlay.dtype == np.uint8
    probs = classifier.classify(model, image, top=1)[0]
    (top_class, top_p), = probs.items()
    assert f"Grad-CAM for **{top_class}** ({top_p:.1%})" in caption
    assert "Grad-CAM for **cat**" in classifier.gradcam(model, image, "cat")[1]
    with pytest.raises(ValueError, match="unknown class"):
        classifier.gradcam(model, image, "unicorn")


@pytest.mark.parametrize("name", ["resnet20_v1", "resnet29_v2"])
def test_logits_are_the_scores_under_the_softmax(name):
    """Grad-CAM's class score is the logit: softmax(logits(feature_map(last block))) is the
    model's output, and in a pre-activation net the map is after the head's ReLU."""
    import tensorflow as tf

    model = build_model(get_spec(name))
    x = tf.constant(np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    probs, outputs = model.forward(x, collect=True)
    fmap = model.feature_map(outputs[-1])
    np.testing.assert_allclose(tf.nn.softmax(model.logits(fmap)).numpy(), probs.numpy(), atol=1e-5)
    if name.endswith("v2"):
        assert float(tf.reduce_min(fmap)) >= 0  # after head_relu
        assert not np.allclose(fmap.numpy(), outputs[-1].numpy())


def test_gradcam_weighs_the_map_by_the_logit_gradient():
    """The heat is ReLU(sum_k mean(d logit_c / d A^k) A^k), checked against a hand-written
    GradientTape through the Keras layers (average pooling and the dense kernel, no softmax);
    classes other than the predicted one get maps of their own."""
    import tensorflow as tf

    model = build_model(get_spec("resnet20_v1"))
    pixels = prepare(np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    names = classifier.class_names(model)
    _, outputs = model.forward(tf.constant(pixels[None]), collect=True)
    fmap = outputs[-1]  # v1: the block output is the map
    dense = next(layer for layer in model.head if layer.name == "head_dense")
    maps = {}
    for name in ("truck", "cat", "ship"):
        with tf.GradientTape() as tape:
            tape.watch(fmap)
            logit = (tf.reduce_mean(fmap, axis=(1, 2)) @ dense.kernel + dense.bias)[0, names.index(name)]
        weights = tape.gradient(logit, fmap)[0].numpy().mean(axis=(0, 1))
        cam = np.maximum((fmap[0].numpy() * weights).sum(-1), 0)
        expected = cam / (cam.max() or 1.0)
        maps[name], index, _ = classifier.gradcam_map(model, pixels, name)
        assert index == names.index(name)
        np.testing.assert_allclose(maps[name], expected, atol=1e-5)
    assert not np.allclose(maps["truck"], maps["cat"])


def test_the_confidence_reference_is_the_top_probability_of_each_test_image_sorted(tmp_path):
    """Against the model's own predictions on the first test images (independent of the cache)."""
    path = tmp_path / "r8.keras"
    build_model(make_spec(8, 1)).save(path)
    reference = classifier.confidence_reference(path, "synthetic")
    x = load_cifar10("synthetic").x_test[:classifier.REFERENCE_IMAGES]
    expected = np.sort(predict(load(path), x).max(-1))
    np.testing.assert_allclose(reference, expected, rtol=1e-6)
    assert classifier.confidence_reference(path, "synthetic") is reference  # kept per file version


@pytest.mark.parametrize("probability, says", [(0.3, "forced guess"), (0.95, "as sure as on typical")])
def test_the_confidence_note_places_the_top_probability_among_the_test_images(probability, says):
    reference = np.sort(np.linspace(0.5, 1.0, 101))  # the test images' top probabilities
    note = classifier.confidence_note(probability, reference)
    assert "must answer with one of its 10 CIFAR-10 classes" in note and says in note
    if probability == 0.3:
        assert "lower than on 100% of 101 test images" in note
    assert "No CIFAR-10 test images" in classifier.confidence_note(0.3, reference, synthetic=True)
