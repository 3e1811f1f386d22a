"""Keras 3 models built from a `ResNetSpec` and its plan (see `specs.py` for the layer naming scheme).

Why a subclassed model of block layers rather than the tutorial's flat functional graph:
Keras walks a functional graph recursively, and at ResNet-1202 (about 4,000 layers) that
walk overflows Python's stack. Here the model owns a short list of blocks and runs them in
a loop, so depth costs no stack. Every block and the model have an explicit `build()` that
creates all weights from the plan's shapes, so a `.keras` file round-trips exactly, and the
model's config is just its spec plus its input statistics: a checkpoint carries what
rebuilds it.

Inputs are raw pixels in [0, 255]; the model normalizes them itself with the statistics it
was trained with, so training, evaluation and inference share one preprocessing path.
"""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path

import keras
from keras import layers, ops

from explorer.core.plans import BlockPlan, ConvUnit, NetworkPlan, plan
from explorer.core.specs import ResNetSpec

# Per-channel statistics in [0, 255] pixel units (the usual CIFAR-10 and ImageNet values).
CIFAR_STATS = {"mean": [125.31, 122.95, 113.87], "std": [62.99, 62.09, 66.70]}
IMAGENET_STATS = {"mean": [123.68, 116.78, 103.94], "std": [58.40, 57.12, 57.38]}


def tensorflow_backend() -> bool:
    """Whether Keras runs on TensorFlow: tf.data, tf.function and TensorBoard exist only there
    (a GPU machine may train under JAX without TensorFlow installed)."""
    return keras.backend.backend() == "tensorflow"


def _regularizer(net: NetworkPlan):
    return keras.regularizers.L2(net.l2) if net.l2 else None


def _unit_layers(prefix: str, unit: ConvUnit, net: NetworkPlan) -> list:
    """The layers of one unit, in the order they run."""
    suffix = "" if unit.index == 0 else str(unit.index)
    conv = layers.Conv2D(
        unit.filters, unit.kernel_size, strides=unit.strides, padding="same",
        use_bias=net.use_bias, kernel_initializer="he_normal",
        kernel_regularizer=_regularizer(net), name=f"{prefix}_conv{suffix}")
    norm = [_batch_norm(net, f"{prefix}_bn{suffix}")] if unit.batch_norm else []
    act = [layers.Activation("relu", name=f"{prefix}_relu{suffix}")] if unit.activation else []
    return norm + act + [conv] if unit.preact else [conv] + norm + act


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras BatchNormalization whose training step uses TensorFlow's fused kernel.

    Keras 3 computes batch statistics with separate ops (moments, then normalize); on CPU
    that was a large share of the training step here. The fused op (oneDNN on CPU, cuDNN on
    GPU) does it in one pass. Same weights and the same inference path.
    """

    def call(self, inputs, training=None, mask=None):
        # Other backends (JAX, for training on a GPU machine without TensorFlow) fuse on
        # their own: Keras' path there, with the same weights.
        if keras.backend.backend() != "tensorflow" or not training or len(inputs.shape) != 4 \
                or self.axis not in (-1, 3) or not self.scale or not self.center:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, tf.cast(self.gamma, "float32"), tf.cast(self.beta, "float32"),
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + tf.cast(mean, "float32") * (1 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + tf.cast(variance, "float32") * (1 - momentum))
        return outputs


def _batch_norm(net: NetworkPlan, name: str):
    # Momentum 0.9 (Keras defaults to 0.99): the moving averages settle within ~50 steps,
    # so the short runs this app makes evaluate sensibly; parameters are unchanged.
    return FusedBatchNormalization(momentum=0.9, epsilon=net.bn_epsilon, name=name)


def _build_chain(chain, shape):
    for layer in chain:
        if not layer.built:
            layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def _run_chain(chain, x, training):
    for layer in chain:
        x = layer(x, training=training) if isinstance(layer, layers.BatchNormalization) else layer(x)
    return x


@keras.saving.register_keras_serializable(package="explorer")
class ZeroPadShortcut(layers.Layer):
    """The paper's option A: strided identity, new channels filled with zeros (no weights)."""

    def __init__(self, strides: int, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.strides = strides
        self.filters = filters

    def call(self, x):
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]]) if extra > 0 else x

    def compute_output_shape(self, shape):
        h, w = shape[1], shape[2]
        s = self.strides
        return (shape[0], None if h is None else -(-h // s), None if w is None else -(-w // s),
                self.filters)

    def get_config(self):
        return {**super().get_config(), "strides": self.strides, "filters": self.filters}


class ResidualBlock(layers.Layer):
    """One block of a plan: the branch F(x), the shortcut and the add (when residual).

    Created by `ResNet` from its spec; never deserialized on its own.
    """

    def __init__(self, block: BlockPlan, net: NetworkPlan, **kwargs):
        super().__init__(name=block.name, **kwargs)
        self.plan = block
        self.branch = [layer for unit in block.units
                       for layer in _unit_layers(block.name, unit, net)]
        self.shortcut = []
        if block.shortcut == "projection":
            filters, strides = block.out_shape[-1], block.units[0].strides
            self.shortcut.append(layers.Conv2D(
                filters, 1, strides=strides, padding="same", use_bias=net.use_bias,
                kernel_initializer="he_normal", kernel_regularizer=_regularizer(net),
                name=f"{block.name}_shortcut"))
            if block.shortcut_bn:
                self.shortcut.append(_batch_norm(net, f"{block.name}_shortcut_bn"))
        elif block.shortcut == "zeropad":
            self.shortcut.append(ZeroPadShortcut(
                block.units[0].strides, block.out_shape[-1], name=f"{block.name}_shortcut_pad"))
        self.add = layers.Add(name=f"{block.name}_add") if block.shortcut else None
        self.out = layers.Activation("relu", name=f"{block.name}_out") \
            if block.post_activation else None

    def build(self, input_shape):
        shape = _build_chain(self.branch, input_shape)
        if self.add is not None:
            short = _build_chain(self.shortcut, input_shape)
            self.add.build([shape, short])

    @property
    def droppable(self) -> bool:
        """Whether the lesion study can delete this block's branch: a residual block keeps
        its shortcut; a plain block passes its input through only if its shape is kept."""
        return self.add is not None or not self.plan.downsamples

    def call(self, x, training=None, drop_branch=False, route=None):
        """The block's output (see `parts`)."""
        return self.parts(x, training, drop_branch, route)[2]

    def parts(self, x, training=None, drop_branch=False, route=None):
        """(F(x), the sum at the add (F(x) in a plain block), the output) of this block.
        `drop_branch` deletes F(x), then None (lesion study): a residual block keeps its shortcut,
        a plain block passes its input through (`ResNet.forward` refuses one that changes shape).
        `route` (0-1, a number or a tensor of one per image) keeps every value but sends the gradient
        back through the branch alone (1) or the shortcut alone (0), Veit et al.'s single path."""
        if drop_branch:
            y = _run_chain(self.shortcut, x, training) if self.add is not None else x
            return None, y, self.out(y) if self.out is not None else y
        branch = y = _run_chain(self.branch, x, training)
        if self.add is not None:
            short, through = _run_chain(self.shortcut, x, training), branch
            if route is not None:
                gate = ops.reshape(ops.cast(route, branch.dtype), (-1, 1, 1, 1))
                through = gate * branch + (1 - gate) * ops.stop_gradient(branch)
                short = (1 - gate) * short + gate * ops.stop_gradient(short)
            y = self.add([short, through])
        return branch, y, self.out(y) if self.out is not None else y

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.plan.out_shape)


@keras.saving.register_keras_serializable(package="explorer")
class ResNet(keras.Model):
    """A ResNet (or its plain twin) built from a `ResNetSpec`.

    Args:
        spec: a `ResNetSpec` or its config dict.
        input_stats: {"mean": [...], "std": [...]} in pixel units, per channel (3 values)
            or per pixel (H x W x 3 nested lists); defaults to the usual dataset values.
        class_names: the label of each output (saved with the model); None for CIFAR-10's.

    Call it on raw pixels in [0, 255] with shape (batch, *spec.input_shape); it returns
    softmax probabilities.
    """

    def __init__(self, spec, input_stats=None, class_names=None, **kwargs):
        spec = ResNetSpec.from_config(spec) if isinstance(spec, dict) else spec
        kwargs.setdefault("name", spec.slug)
        super().__init__(**kwargs)
        self.spec = spec
        self.net = net = plan(spec)
        default = CIFAR_STATS if spec.family == "cifar" else IMAGENET_STATS
        stats = input_stats or default
        self.input_stats = {"mean": list(stats["mean"]), "std": list(stats["std"])}
        if class_names is not None and len(class_names) != spec.num_classes:
            raise ValueError(f"{len(class_names)} class names for {spec.num_classes} classes")
        self.class_names = list(class_names) if class_names is not None else None
        self._mean = ops.convert_to_tensor(self.input_stats["mean"], "float32")
        self._std = ops.convert_to_tensor(self.input_stats["std"], "float32")
        self.stem = _unit_layers("stem", net.stem, net)
        if net.stem_pool:
            self.stem.append(layers.MaxPooling2D(3, 2, padding="same", name="stem_pool"))
        self.blocks = [ResidualBlock(block, net) for block in net.blocks]
        self.head = []
        if net.head_preact:
            self.head += [_batch_norm(net, "head_bn"),
                          layers.Activation("relu", name="head_relu")]
        self.head += [
            layers.GlobalAveragePooling2D(name="head_pool"),
            # float32 softmax keeps mixed-precision training numerically safe.
            layers.Dense(spec.num_classes, activation="softmax", kernel_initializer="he_normal",
                         dtype="float32", name="head_dense"),
        ]

    def build(self, input_shape=None):
        shape = (None, *self.spec.input_shape)
        shape = _build_chain(self.stem, shape)
        for block in self.blocks:
            block.build(shape)
            block.built = True
            shape = block.compute_output_shape(shape)
        _build_chain(self.head, shape)
        self.built = True

    def normalize(self, pixels):
        x = (ops.cast(pixels, "float32") - self._mean) / self._std
        return ops.cast(x, self.compute_dtype)

    def forward(self, pixels, training=False, drop_blocks=(), collect=False, path=None):
        """Runs the net; with `collect=True` also returns every block's output.

        `drop_blocks` holds block indices whose residual branch is deleted (lesion study).
        `path`, when given, holds a 0-1 gate per block, (blocks,) or (batch, blocks) for a path
        per image: the gradient goes back through the branch of the blocks at 1 and the shortcut
        of those at 0, every value stays the whole net's (Veit et al. 2016, section 6).

        Raises:
            ValueError: a dropped block of a plain net changes shape, so its input cannot
                pass through in its place.
        """
        for i in drop_blocks:
            if not self.blocks[i].droppable:
                raise ValueError(f"{self.blocks[i].name} changes shape: a plain net cannot pass its "
                                 "input through in its place")
        x = _run_chain(self.stem, self.normalize(pixels), training)
        outputs, path = [], None if path is None else ops.convert_to_tensor(path, "float32")
        for i, block in enumerate(self.blocks):
            route = None if path is None else path[..., i]
            x = block(x, training=training, drop_branch=i in drop_blocks, route=route)
            outputs.append(x)
        probs = _run_chain(self.head, x, training)
        return (probs, outputs) if collect else probs

    def block_parts(self, pixels, training=False, each=None, inputs=False) -> list:
        """Every block's `ResidualBlock.parts`, input to output, or what `each(parts)` returns
        for it (signal propagation keeps statistics only: a deep net's parts would fill memory);
        with `inputs=True`, (the block's input x, its parts) per block."""
        x, kept = _run_chain(self.stem, self.normalize(pixels), training), []
        for block in self.blocks:
            parts = block.parts(x, training)
            kept.append((x, parts) if inputs else parts if each is None else each(parts))
            x = parts[2]
        return kept

    def feature_map(self, block_output, training=False):
        """The last convolutional feature map, from the last block's output: after the head's
        batch norm and ReLU in a pre-activation (v2) net, the block output itself in v1.
        Grad-CAM weighs this map (its A^k)."""
        return _run_chain(self.head[:-2], block_output, training)

    def logits(self, feature_map):
        """Class scores before the softmax, from `feature_map`'s output: Grad-CAM
        differentiates these (its y^c), as a probability's gradient is dominated by the
        predicted class's evidence whatever class is asked for."""
        import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

        pool, dense = self.head[-2:]
        pooled = tf.cast(pool(feature_map), dense.kernel.dtype)
        return tf.matmul(pooled, dense.kernel) + dense.bias

    def call(self, inputs, training=None):
        return self.forward(inputs, training=training)

    def get_config(self):
        return {"spec": self.spec.to_config(), "input_stats": self.input_stats,
                "class_names": self.class_names, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# Weight initializers draw from global random state: a seeded build (the gradient lab's twins)
# holds this lock from seeding to the last weight, so a model built on another thread cannot
# take draws from the middle of its sequence.
BUILD_LOCK = threading.RLock()


def checkpoint_spec(path) -> ResNetSpec:
    """The spec of a `.keras` checkpoint, read from its config without building the net
    (to size a request before any work).

    Raises:
        ValueError: the file is not a ResNet checkpoint of this project.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        return ResNetSpec.from_config(config["config"]["spec"])
    except (OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{Path(path).name} is not a ResNet checkpoint of this app "
                         f"({type(err).__name__})") from None


def build_model(spec: ResNetSpec, input_stats=None) -> ResNet:
    """Creates and builds the Keras model for `spec` (weights initialized).

    Holds `BUILD_LOCK` while building, so a seeded build elsewhere keeps its random draws.

    Args:
        spec: the network to build.
        input_stats: {"mean": [...], "std": [...]} in pixel units for the model's input
            normalization; None for the usual dataset values (see `ResNet`).

    Returns:
        A built, uncompiled `ResNet`.
    """
    with BUILD_LOCK:
        model = ResNet(spec, input_stats=input_stats)
        model.build((None, *spec.input_shape))
    return model


def weight_layers(model: ResNet) -> list:
    """Conv and dense layers, input to output, in the order of the plan."""
    found = []

    def visit(layer):
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            found.append(layer)
        for child in getattr(layer, "_layers", []):
            visit(child)

    for layer in model.stem:
        visit(layer)
    for block in model.blocks:
        for layer in block.branch + block.shortcut:
            visit(layer)
    for layer in model.head:
        visit(layer)
    return found


def load_model(path) -> ResNet:
    """Loads a `.keras` checkpoint with `safe_mode=True` (no code in the file ever runs).

    Loading builds the layers first, and their initializers draw from the global random
    state: it holds `BUILD_LOCK` like `build_model`.
    """
    with BUILD_LOCK:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
