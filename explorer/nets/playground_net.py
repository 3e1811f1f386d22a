"""The playground's nets: a dense stem (with ReLU) on a point's features, `blocks` blocks of one
width, a one-logit head. Each block is dense-norm-ReLU-dense-norm, its input added back (the
shortcut) before its last ReLU; the plain twin is the same net without the addition
(`residual=False`, never a second code path), as in He et al. (2016), figure 2.

Why the blocks' weights are stacked, (blocks, width, width) and so on, and run by one
TensorFlow while-loop rather than one Keras layer per block: a loop's graph, and its XLA
compilation, stay the same size at any depth. Measured here while choosing: a pair of 32-block
nets of Keras layers took 28 s to trace and compile, an unrolled 64-block pair minutes; in a
bare loop of two dense layers a block, `tf.scan` (which stacks every block's output) grew with
the square of the depth, 97 ms a training step at 256 blocks against 7 ms for this loop's way
(each block's weights read with a gather).

Normalisation: "batch" uses the batch's statistics in training and running averages (momentum
`BATCH_NORM_MOMENTUM`) in inference, as Keras' BatchNormalization does; "layer" normalises
each point over its units (Keras' LayerNormalization); "none" gives the dense layers biases.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from explorer.core.checks import one_of
from explorer.core.playground_settings import NORMS

EPSILON = 1e-3  # Keras' BatchNormalization's and LayerNormalization's
# A toy trains for hundreds of steps, not epochs: the running averages of batch norm follow
# the weights within about ten steps, so a boundary drawn in inference mode is the net's now
BATCH_NORM_MOMENTUM = 0.9
DTYPE = "float32"  # whatever the process's precision policy (a training worker may set bf16)


@keras.saving.register_keras_serializable(package="explorer")
class BlockwiseGlorot(keras.initializers.Initializer):
    """Glorot uniform (Keras' default for a dense kernel) for each (width, width) kernel of a
    stack, each block's drawn from its own seed: block b's initial kernel is the same in a net
    of any depth, so a deeper net starts as a shallower one with blocks added."""

    def __init__(self, seed: int = 0, which: int = 1):
        self.seed, self.which = int(seed), int(which)

    def __call__(self, shape, dtype=None):
        blocks, fan_in, fan_out = shape
        limit = math.sqrt(6 / (fan_in + fan_out))
        values = [np.random.default_rng([self.seed, self.which, b]).uniform(-limit, limit, (fan_in, fan_out))
                  for b in range(blocks)]
        return keras.ops.convert_to_tensor(np.stack(values), dtype=dtype or DTYPE)

    def get_config(self) -> dict:
        return {"seed": self.seed, "which": self.which}


@keras.saving.register_keras_serializable(package="explorer")
class BlockStack(keras.layers.Layer):
    """`blocks` blocks of width `width`, run in a loop over their stacked weights.

    Weights, each with the block as its first axis: kernel1 and kernel2 (blocks, width,
    width); with a norm, gamma1, beta1, gamma2, beta2 (blocks, width) and for batch norm the
    running mean1, variance1, mean2, variance2 (not trained); without, bias1 and bias2. And
    "depth", the blocks that run (`use_blocks`; all of them unless told).

    Args:
        blocks: how many blocks.
        width: units of each dense layer.
        norm: "none", "batch" or "layer".
        residual: add each block's input to its branch's output (False: the plain twin).
        zero_init: each branch's last layer starts at zero (gamma2 with a norm, kernel2
            without), so every block starts as the identity (residual) or as zero (plain).
        seed: the seed of the kernels' initial values (`BlockwiseGlorot`).
    """

    def __init__(self, blocks: int, width: int, norm: str = "batch", residual: bool = True,
                 zero_init: bool = False, seed: int = 0, **kwargs):
        kwargs.setdefault("dtype", DTYPE)
        super().__init__(**kwargs)
        self.blocks, self.width = int(blocks), int(width)
        self.norm = one_of(norm, NORMS, "norm")
        self.residual, self.zero_init, self.seed = bool(residual), bool(zero_init), int(seed)

    def build(self, input_shape):
        shape, vector = (self.blocks, self.width, self.width), (self.blocks, self.width)
        zero_kernel2 = self.zero_init and self.norm == "none"
        self.kernel1 = self.add_weight(shape, BlockwiseGlorot(self.seed, 1), name="kernel1")
        self.kernel2 = self.add_weight(shape, "zeros" if zero_kernel2 else BlockwiseGlorot(self.seed, 2),
                                       name="kernel2")
        if self.norm == "none":
            self.bias1 = self.add_weight(vector, "zeros", name="bias1")
            self.bias2 = self.add_weight(vector, "zeros", name="bias2")
        else:
            self.gamma1 = self.add_weight(vector, "ones", name="gamma1")
            self.beta1 = self.add_weight(vector, "zeros", name="beta1")
            self.gamma2 = self.add_weight(vector, "zeros" if self.zero_init else "ones", name="gamma2")
            self.beta2 = self.add_weight(vector, "zeros", name="beta2")
        if self.norm == "batch":
            for name, init in (("mean1", "zeros"), ("variance1", "ones"), ("mean2", "zeros"),
                               ("variance2", "ones")):
                setattr(self, name, self.add_weight(vector, init, name=name, trainable=False))
        self.depth = self.add_weight((), keras.initializers.Constant(self.blocks), "int32", trainable=False,
                                     name="depth")

    def use_blocks(self, depth: int) -> None:
        """Runs the first `depth` blocks only (1 to `blocks`): the net is then a `depth`-block
        net (the first blocks' initial weights do not depend on how many follow), and one
        compiled program serves every depth up to `blocks` (a depth sweep compiles once)."""
        if not 1 <= int(depth) <= self.blocks:
            raise ValueError(f"blocks must be from 1 to {self.blocks} (the net's capacity), got {depth}")
        self.depth.assign(int(depth))

    def compute_output_shape(self, input_shape):
        return input_shape

    def _normalize(self, y, block, which: int, weights: dict, training: bool):
        """The `which`-th norm of block `block` on y (batch, width); returns y and the batch's
        mean and variance (batch norm in training; zeros otherwise)."""
        zeros = tf.zeros((self.width,), y.dtype)
        if self.norm == "none":
            return y + tf.gather(weights[f"bias{which}"], block), zeros, zeros
        if self.norm == "layer":
            mean, variance = tf.nn.moments(y, [-1], keepdims=True)
            batch_mean, batch_variance = zeros, zeros
        elif training:
            mean, variance = tf.nn.moments(y, [0])
            batch_mean, batch_variance = mean, variance
        else:
            mean = tf.gather(weights[f"mean{which}"], block)
            variance = tf.gather(weights[f"variance{which}"], block)
            batch_mean, batch_variance = zeros, zeros
        scale = tf.gather(weights[f"gamma{which}"], block) * tf.math.rsqrt(variance + EPSILON)
        return (y - mean) * scale + tf.gather(weights[f"beta{which}"], block), batch_mean, batch_variance

    def call(self, inputs, training=False):
        training = bool(training)
        weights = {weight.name: tf.convert_to_tensor(weight) for weight in self.weights}
        depth = weights["depth"]

        def block(i, h, statistics):
            y = h @ tf.gather(weights["kernel1"], i)
            y, mean1, variance1 = self._normalize(y, i, 1, weights, training)
            y = tf.nn.relu(y) @ tf.gather(weights["kernel2"], i)
            y, mean2, variance2 = self._normalize(y, i, 2, weights, training)
            if self.residual:
                y = y + h
            found = tf.stop_gradient(tf.stack([mean1, variance1, mean2, variance2]))
            return i + 1, tf.nn.relu(y), tf.tensor_scatter_nd_update(statistics, [[i]], found[None])

        statistics = tf.zeros((self.blocks, 4, self.width), inputs.dtype)
        _, h, statistics = tf.while_loop(lambda i, h, s: i < depth, block, (0, inputs, statistics),
                                         maximum_iterations=self.blocks)
        if self.norm == "batch" and training:
            ran = (tf.range(self.blocks) < depth)[:, None]  # the blocks after `depth` keep theirs
            for k, name in enumerate(("mean1", "variance1", "mean2", "variance2")):
                average = getattr(self, name)
                moved = BATCH_NORM_MOMENTUM * average + (1 - BATCH_NORM_MOMENTUM) * statistics[:, k]
                average.assign(tf.where(ran, moved, average))
        return h

    def get_config(self) -> dict:
        return {**super().get_config(), "blocks": self.blocks, "width": self.width, "norm": self.norm,
                "residual": self.residual, "zero_init": self.zero_init, "seed": self.seed}


def build_net(features: int, blocks: int, width: int, norm: str = "batch", residual: bool = True,
              zero_init: bool = False, seed: int = 0) -> keras.Model:
    """A playground net: stem, blocks, head.

    Layers: "stem" (Dense(width), ReLU), "blocks" (`BlockStack`), "head" (Dense(1)): the model
    gives one logit per point, the log-odds of class 1. The twins of one seed have the same
    initial weights (same shapes, same seeded initializers).

    Args:
        features: inputs per point (2 for x and y, up to 5).
        blocks, width, norm, residual, zero_init: as for `BlockStack`.
        seed: the seed of every initial weight.
    """
    inputs = keras.Input((features,), name="features", dtype=DTYPE)
    glorot = keras.initializers.GlorotUniform
    h = keras.layers.Dense(width, activation="relu", kernel_initializer=glorot(seed), name="stem",
                           dtype=DTYPE)(inputs)
    h = BlockStack(blocks, width, norm, residual, zero_init, seed, name="blocks")(h)
    logit = keras.layers.Dense(1, kernel_initializer=glorot(seed + 3), name="head", dtype=DTYPE)(h)
    return keras.Model(inputs, logit, name=f"{'residual' if residual else 'plain'}_{blocks}x{width}")
