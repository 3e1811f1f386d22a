"""Gradient probes: per-layer gradient norms of a net, and of its plain/residual twin.

Probes run the model in training mode (batch statistics, as during training) inside a
`keras.StatelessScope`, so measuring never moves the model's batch-norm averages.
The loss is the data loss only (cross-entropy), without the L2 penalty: the question is
how much of the signal from the labels reaches each layer.
"""

from __future__ import annotations

import numpy as np

from .models import weight_layers


def _probe_fn(model):
    """One compiled function per model: (pixels, labels) -> (kernel norms, block norms)."""
    cached = getattr(model, "_explorer_probe", None)
    if cached is not None:
        return cached
    import keras
    import tensorflow as tf

    variables = list(model.trainable_variables) + list(model.non_trainable_variables)
    trainable_count = len(model.trainable_variables)
    kernels = [layer.kernel for layer in weight_layers(model)]
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    kernel_index = [position[id(k)] for k in kernels]

    @tf.function(reduce_retracing=True)
    def probe(pixels, labels):
        values = [tf.identity(v.value) for v in variables]
        with tf.GradientTape() as tape:
            tape.watch(values[:trainable_count])
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                probs, outputs = model.forward(pixels, training=True, collect=True)
            probs = tf.cast(probs, tf.float32)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probs))
        grads = tape.gradient(loss, [values[i] for i in kernel_index] + outputs)
        norms = tf.stack([tf.norm(tf.cast(g, tf.float32)) for g in grads])
        return norms[: len(kernel_index)], norms[len(kernel_index):], loss

    model._explorer_probe = probe
    return probe


def kernel_gradient_norms(model, pixels, labels):
    """L2 norm of d(loss)/d(kernel) for every conv and dense layer, input to output.

    Returns (layer names, numpy array of norms).
    """
    kernel_norms, _, _ = _probe_fn(model)(np.asarray(pixels), np.asarray(labels))
    return [layer.name for layer in weight_layers(model)], kernel_norms.numpy()
