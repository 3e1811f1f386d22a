"""The lesion study's forward passes: every block deleted in turn, sharing what they share.

Deleting block i changes nothing before it: the net's activations up to block i's input are
the intact net's. The plain way (`lesion.lesioned_accuracy` once per block) runs the whole
net again for every deletion, so a study of n blocks computes about n whole passes; here
the intact pass keeps every block's input, and each deletion starts from its block's input,
about n / 2 whole passes in all. The numbers are the same computations on the same inputs
(`tests/test_insight.py` compares the two).
"""

from __future__ import annotations

import numpy as np

# The block inputs kept for one batch (float32): the batch is made smaller for deep nets so
# they stay under this, e.g. 250 images for ResNet-56 (27 blocks), 13 for ResNet-1202.
KEPT_BYTES = 512 * 2**20


def batch_for(model, requested: int = 250) -> int:
    """Images per batch so that the kept block inputs of one batch fit `KEPT_BYTES`."""
    per_image = sum(int(np.prod(block.plan.in_shape)) * 4 for block in model.blocks)
    return max(1, min(requested, KEPT_BYTES // max(per_image, 1)))


def _tail(model, h, start: int, training: bool = False):
    """The net's output from block `start`'s output `h` on."""
    for block in model.blocks[start + 1:]:
        h = block(h, training=training)
    for layer in model.head:
        h = layer(h, training=training)
    return h


def accuracies_with_each_block_deleted(model, x, y, report=None) -> tuple[float, list]:
    """The intact accuracy and the accuracy with each block's residual branch deleted.

    Args:
        model: a loaded `ResNet` (read, never changed).
        x: raw uint8 images (n, *spec.input_shape).
        y: integer labels (n,).
        report: optional `report(block index)` called as each block's deletion starts, in
            the first batch (the progress of the study).

    Returns:
        (intact accuracy, [accuracy without block i, or None where the block cannot be
        deleted: a plain block that changes shape]).
    """
    import tensorflow as tf  # deferred: importing this module must not load TensorFlow

    blocks = model.blocks
    correct_intact, correct = 0, np.zeros(len(blocks), np.int64)
    size = batch_for(model)
    for start in range(0, len(x), size):
        images, labels = tf.constant(x[start: start + size]), y[start: start + size]
        h = model.normalize(images)
        for layer in model.stem:
            h = layer(h, training=False)
        inputs = []
        for block in blocks:
            inputs.append(h)
            h = block(h, training=False)
        probs = h
        for layer in model.head:
            probs = layer(probs, training=False)
        correct_intact += int(np.sum(np.argmax(probs, -1) == labels))
        for i, block in enumerate(blocks):
            if report and start == 0:
                report(i)
            if block.droppable:
                deleted = block(inputs[i], training=False, drop_branch=True)
                correct[i] += int(np.sum(np.argmax(_tail(model, deleted, i), -1) == labels))
    total = max(len(x), 1)
    return correct_intact / total, [count / total if block.droppable else None
                                    for count, block in zip(correct, blocks)]
