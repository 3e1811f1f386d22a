"""The proof of an import: the file's model and the imported one see the same images (the file's
preprocessed as it expects, the imported one's raw), and their outputs must agree: the softmax
within `MAX_DIFFERENCE` (the figure the import reports), and the logits before it within
`MAX_LOGIT_DIFFERENCE` of their size, since a saturated softmax (0.9999 for one class, as a net
gives after a few steps of training) hides a wrong weight that its logits still show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.data.cifar import load_cifar10, resolve_source

PROOF_IMAGES = 256  # images both nets classify
MAX_DIFFERENCE = 1e-4  # the largest difference of a softmax output allowed between them
MAX_LOGIT_DIFFERENCE = 1e-3  # ... of a logit, over the largest logit's size (at least 1)
# Images per pass: this app's forward pass keeps every block's output until it returns, 64 kB
# an image and a block in stage 1, so a deep net takes fewer at a time.
PASS_IMAGES = 8192


@dataclass
class Outputs:
    """A net's softmax outputs and its logits on the proof's images (float64)."""

    probabilities: np.ndarray
    logits: np.ndarray


def proof_data(data):
    """The data set of the proof's images: `data`, or the default one where it can be had
    (generated images where it cannot: any images prove a mapping, if not a mean)."""
    return load_cifar10(data if data is not None else resolve_source(None)[0])


def proof_images(dataset) -> np.ndarray:
    """`PROOF_IMAGES` images: the test images first, then training images where too few."""
    images = dataset.x_test[:PROOF_IMAGES]
    if len(images) < PROOF_IMAGES:
        images = np.concatenate([images, dataset.x_train[: PROOF_IMAGES - len(images)]])
    return images


def _batches(x: np.ndarray, depth: int):
    size = int(max(8, min(PROOF_IMAGES, PASS_IMAGES // depth)))
    return (x[i: i + size] for i in range(0, len(x), size))


def softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def app_outputs(model, images: np.ndarray) -> Outputs:
    """This app's `ResNet` on raw pixels."""
    import keras  # deferred: the proof's data is had before Keras loads

    probabilities, logits = [], []
    for x in _batches(images, model.spec.depth):
        probs, blocks = model.forward(x, training=False, collect=True)
        probabilities.append(keras.ops.convert_to_numpy(probs))
        logits.append(keras.ops.convert_to_numpy(model.logits(model.feature_map(blocks[-1]))))
    return Outputs(np.concatenate(probabilities).astype(np.float64),
                   np.concatenate(logits).astype(np.float64))


def file_outputs(reference, x: np.ndarray, dense: str, depth: int, logits: bool) -> Outputs:
    """The file's Keras model on its preprocessed images `x`: its output, and its logits from
    the input of its last dense layer `dense` (its output itself where `logits`: no softmax)."""
    import keras  # deferred: the proof's data is had before Keras loads

    layer = reference.get_layer(dense)
    probe = keras.Model(reference.inputs[0], [reference.outputs[0], layer.input])
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float64)
    bias = keras.ops.convert_to_numpy(layer.bias).astype(np.float64) if layer.use_bias else 0.0
    passes = (probe(batch, training=False) for batch in _batches(x, depth))
    outs, features = zip(*((keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(feature))
                           for out, feature in passes))
    scores = np.concatenate(features).astype(np.float64) @ kernel + bias
    probabilities = softmax(scores) if logits else np.concatenate(outs).astype(np.float64)
    return Outputs(probabilities, scores)


def prove(ours: Outputs, theirs: Outputs, name: str, preprocess: str) -> dict:
    """{"max_abs_difference", "max_logit_difference"} when the two agree; raises otherwise.

    Raises:
        ValueError: the softmax outputs or the logits differ by more than allowed, saying by
            how much, on how many images and with which preprocessing.
    """
    difference = float(np.abs(ours.probabilities - theirs.probabilities).max())
    scale = max(1.0, float(np.abs(theirs.logits).max()))
    logit_difference = float(np.abs(ours.logits - theirs.logits).max()) / scale
    where = f"on {len(ours.logits)} images with the {preprocess} preprocessing"
    if not difference <= MAX_DIFFERENCE:
        raise ValueError(f"the imported model does not predict what {name} predicts: their softmax outputs "
                         f"differ by up to {difference:.2g} (more than {MAX_DIFFERENCE:g}) {where}")
    if not logit_difference <= MAX_LOGIT_DIFFERENCE:
        raise ValueError(f"the imported model does not compute what {name} computes: their logits differ by "
                         f"up to {logit_difference:.2g} of their size (more than {MAX_LOGIT_DIFFERENCE:g}) "
                         f"{where}, though both softmax outputs saturate alike")
    return {"max_abs_difference": difference, "max_logit_difference": logit_difference}
