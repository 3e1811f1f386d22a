"""The gradient probe: one forward and backward pass that reads the loss gradient's norm at
every weight layer and block output of a net, without moving its batch-norm averages.

Probes run the model in training mode (batch statistics, as during training) inside a
`keras.StatelessScope`, so measuring never moves the model's batch-norm averages.
The loss is the data loss only (cross-entropy), without the L2 penalty: the question is
how much of the signal from the labels reaches each layer. Used by the training callback
(compiled) and by the studies (eager, `studies.probes`).
"""

from __future__ import annotations

import keras
import numpy as np

from explorer.nets.models import weight_layers


def probe_fn(model, compiled: bool):
    """The gradient probe of `model`, made once per model and kind (kept on the model).

    Compiled (a tf.function, traced once) for the training callback, which calls it
    thousands of times; eager for the lab, where tracing a deep net costs several times
    more than the single forward and backward pass it would speed up. The probe runs in
    training mode on copies of the variables, so the batch-norm averages stay untouched.

    Args:
        model: a built `ResNet`.
        compiled: True for the tf.function, False for the eager function.

    Returns:
        A function (pixels, labels) -> (norms of dL/d(kernel) per conv and dense layer in the
        order of `models.weight_layers`, norms of dL/d(block output) per block, the loss).
    """
    key = "_explorer_probe_compiled" if compiled else "_explorer_probe_eager"
    cached = getattr(model, key, None)
    if cached is not None:
        return cached
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    variables = list(model.trainable_variables) + list(model.non_trainable_variables)
    trainable_count = len(model.trainable_variables)
    kernels = [layer.kernel for layer in weight_layers(model)]
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    kernel_index = [position[id(k)] for k in kernels]

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

    fn = tf.function(probe, reduce_retracing=True) if compiled else probe
    setattr(model, key, fn)
    return fn


def kernel_gradient_norms(model, pixels, labels):
    """L2 norm of d(loss)/d(kernel) for every conv and dense layer, input to output.

    Args:
        model: a built `ResNet`.
        pixels: raw uint8 images in [0, 255], (batch, *spec.input_shape).
        labels: integer class labels, (batch,).

    Returns:
        (layer names, numpy array of norms), in the order of `models.weight_layers`.
    """
    kernel_norms, _, _ = probe_fn(model, compiled=True)(np.asarray(pixels), np.asarray(labels))
    return [layer.name for layer in weight_layers(model)], kernel_norms.numpy()


def skip_shares(model, pixels, labels) -> list[float | None]:
    """Per block, the share of the loss gradient that goes back through the shortcut: the
    gradient at the block's add, g = dL/d(x + F(x)), reaches the block's input x by two paths,
    the shortcut's (g itself through an identity) and the branch's (F's Jacobian at x applied
    to g); the share is ||shortcut's|| / (||shortcut's|| + ||branch's||). In training mode on
    copies of the variables, as the probe (the batch-norm averages stay untouched).

    Args:
        model: a built `ResNet`.
        pixels: raw uint8 images, (batch, *spec.input_shape).
        labels: integer class labels, (batch,).

    Returns:
        A share (0 to 1) per block, input to output; None for a block without an add (a plain
        net's: everything goes through its layers).
    """
    import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

    variables = list(model.trainable_variables) + list(model.non_trainable_variables)
    values = [tf.identity(v.value) for v in variables]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(values[:len(model.trainable_variables)])  # what makes the tape record the passes
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            kept = model.block_parts(np.asarray(pixels), training=True, inputs=True)
            logits = model.logits(model.feature_map(kept[-1][1][2], training=True))
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            np.asarray(labels), tf.cast(logits, tf.float32), from_logits=True))
    at_adds = tape.gradient(loss, [parts[1] for _, parts in kept])
    shares = []
    for block, (x, (branch, total, _)), g in zip(model.blocks, kept, at_adds):
        if block.add is None:
            shares.append(None)
            continue
        through_branch = tape.gradient(branch, x, output_gradients=g)
        through_both = tape.gradient(total, x, output_gradients=g)  # linear in g: the two paths' sum
        branch_norm = float(tf.norm(tf.cast(through_branch, tf.float32)))
        skip_norm = float(tf.norm(tf.cast(through_both - through_branch, tf.float32)))
        shares.append(skip_norm / max(skip_norm + branch_norm, 1e-30))
    del tape
    return shares
