"""What a CIFAR-10 net makes of an image: its top classes, and Grad-CAM's map of where in the
image the evidence for a class lies.

Both decode the image once, through `images.prepare` (the one preprocessing path), and take
a loaded model: the caller chooses it (see `checkpoints.load` for the shared, cached one).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from explorer.core.caches import BoundedCache
from explorer.core.checks import file_stamp
from explorer.core.specs import CIFAR_CLASSES
from explorer.data.cifar import load_cifar10
from explorer.data.images import enlarge, prepare
from explorer.nets.checkpoints import check_tta, load, predict, predict_augmented

REFERENCE_IMAGES = 1000  # test images whose top probabilities an image's is compared with
_REFERENCES = BoundedCache(8)  # (path, mtime, source) -> sorted top probabilities


def classify(model, image, top: int = 5, tta: str = "none") -> tuple[dict, np.ndarray]:
    """The model's most likely classes for an image, and the image it saw.

    Args:
        model: a loaded `ResNet` (see `checkpoints.load`).
        image: anything `prepare` accepts (path, bytes, numpy array or PIL image).
        top: how many classes to return.
        tta: "flip" averages the image's probabilities with its mirror's (see
            `checkpoints.predict_augmented`); "none" reads the image alone.

    Returns:
        ({class: probability} for the `top` classes, most likely first; the 32x32x3 uint8
        image the model saw).

    Raises:
        ValueError: the image cannot be read (see `prepare`), or `tta` is unknown.
    """
    check_tta(tta)
    pixels = prepare(image)
    probs = predict_augmented(model, pixels[None], tta)[0]
    classes = class_names(model)
    order = np.argsort(probs)[::-1][:top]
    return {classes[i]: float(probs[i]) for i in order}, pixels


def class_names(model) -> list[str]:
    """The model's own class names, else CIFAR-10's for a 10-way net, else indices."""
    names = getattr(model, "class_names", None)
    if names:
        return list(names)
    count = model.spec.num_classes
    return list(CIFAR_CLASSES) if count == len(CIFAR_CLASSES) else [str(i) for i in range(count)]


def gradcam_map(model, pixels: np.ndarray, class_name: str | None = None) -> tuple[np.ndarray, int, float]:
    """The Grad-CAM heat of one prepared image: ReLU(sum_k w_k A^k) with w_k the mean
    gradient of the class's logit over feature map A^k, scaled to a peak of 1.

    Args:
        model: a loaded `ResNet`.
        pixels: a (32, 32, 3) uint8 image, as `prepare` returns.
        class_name: one of the model's classes; None (or "" or "predicted") for the predicted one.

    Returns:
        (the (h, w) heat of the last feature map in [0, 1], the class's index, its probability).

    Raises:
        ValueError: `class_name` is not one of the model's.
    """
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    probs, outputs = model.forward(tf.constant(pixels[None]), training=False, collect=True)
    features = model.feature_map(outputs[-1])
    names = class_names(model)
    if class_name in (None, "", "predicted"):
        index = int(np.argmax(probs[0]))
    elif class_name in names:
        index = names.index(class_name)
    else:
        raise ValueError(f"unknown class {str(class_name)[:30]!r}; one of {', '.join(names)}")
    with tf.GradientTape() as tape:
        tape.watch(features)
        score = model.logits(features)[0, index]  # before the softmax (Selvaraju et al.)
    grads = tape.gradient(score, features)[0].numpy()
    fmap = features[0].numpy().astype(np.float32)
    cam = np.maximum((fmap * grads.mean(axis=(0, 1))).sum(-1), 0)
    return cam / (float(cam.max()) or 1.0), index, float(probs[0][index])


def gradcam(model, image, class_name: str | None = None, factor: int = 6) -> tuple[np.ndarray, str]:
    """Grad-CAM (Selvaraju et al. 2017) on the last convolutional feature map: where in the
    image the evidence for a class is. The class score differentiated is the logit, before
    the softmax, so each class gets its own map.

    Args:
        model: a loaded `ResNet` (see `checkpoints.load`).
        image: anything `prepare` accepts.
        class_name: one of the model's classes; None explains the predicted class.
        factor: how many times the 32x32 input is enlarged for display.

    Returns:
        (the heat overlaid on the enlarged input, an RGB uint8 array; a Markdown caption
        naming the class and its probability).

    Raises:
        ValueError: the image cannot be read, or `class_name` is not one of the model's.
    """
    pixels = prepare(image)
    cam, index, probability = gradcam_map(model, pixels, class_name)
    names = class_names(model)
    size = pixels.shape[0] * factor
    heat = np.asarray(Image.fromarray((cam * 255).astype(np.uint8))
                      .resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    # grayscale picture under a red-to-yellow heat, so the heat shows on any colors
    gray = enlarge(pixels, factor).astype(np.float32).mean(-1)
    base = np.repeat(gray[..., None], 3, -1)
    color = np.stack([np.full_like(heat, 255), 255 * heat, np.zeros_like(heat)], -1)
    overlay = base * (1 - 0.6 * heat[..., None]) + color * 0.6 * heat[..., None]
    caption = (f"Grad-CAM for **{names[index]}** ({probability:.1%}): the warmer (red to yellow), the more a "
               "region raises its score."
               if cam.max() > 0 else
               f"Grad-CAM for **{names[index]}** ({probability:.1%}): no region raises its score; "
               "the evidence the net sees speaks against this class everywhere.")
    return overlay.clip(0, 255).astype(np.uint8), caption


def confidence_reference(path, source: str | None = None) -> np.ndarray:
    """How sure a checkpoint is on the images it was made for: its top probability on each of
    the first `REFERENCE_IMAGES` test images, sorted; kept per file version and source.

    Args:
        path: the checkpoint's `.keras` file.
        source: the data source (see `data.load_cifar10`).
    """
    key = (*file_stamp(path), source)
    reference = _REFERENCES.get(key)
    if reference is None:
        x = load_cifar10(source).x_test[:REFERENCE_IMAGES]
        reference = np.sort(predict(load(path), x).max(-1))
        _REFERENCES.put(key, reference)
    return reference


def confidence_note(probability: float, reference: np.ndarray | None, synthetic: bool = False) -> str:
    """What a top probability means (Markdown): the net must pick one of its classes whatever
    the image, so "frog 79%" of a noise image is a forced choice; the image's top probability
    is placed among the test images' (`confidence_reference`) to say whether the net is as
    sure as on the images it was made for.

    Args:
        probability: the image's top probability.
        reference: the sorted top probabilities of test images; None when there are none.
        synthetic: the reference was measured on generated images (offline): not CIFAR-10.
    """
    forced = (f"The net must answer with one of its {len(CIFAR_CLASSES)} CIFAR-10 classes, whatever the "
              "image: a photo of none of them still gets a top class.")
    if reference is None or not len(reference) or synthetic:
        return forced + " (No CIFAR-10 test images here to compare its confidence with.)"
    below = float(np.searchsorted(reference, probability, side="left")) / len(reference)
    median = float(np.median(reference))
    where = (f"Its top probability, {probability:.1%}, is lower than on {1 - below:.0%} of "
             f"{len(reference):,} test images (their median: {median:.1%})")
    if below < 0.1:
        return (f"{forced} {where}: far less sure than on the images it was made for, so read the "
                "answer as a forced guess.")
    return f"{forced} {where}: as sure as on typical test images."
