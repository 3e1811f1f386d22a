"""The plan of a network: `plan(spec)` expands a `ResNetSpec` into the stem, one `BlockPlan`
per block and the head, with every unit's kernel, filters, stride and shapes spelled out.

The Keras builder (`models.py`), the architecture graph (`graph.py`), the multiply-add and parameter
counts, the gradient probes and the lesion budget all read this one plan, so they cannot
disagree. Block names follow the scheme in `specs.py` (stage{S}_block{B}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from explorer.core.specs import IMAGENET_STAGES, ResNetSpec


@dataclass(frozen=True)
class ConvUnit:
    """One convolution with its batch norm and activation.

    `preact` puts BN-ReLU before the convolution (v2) instead of after it (v1).
    """

    index: int  # 1-based position inside its block, used in names (conv1, bn1, relu1)
    kernel_size: int
    filters: int
    strides: int
    preact: bool
    batch_norm: bool
    activation: bool


@dataclass(frozen=True)
class BlockPlan:
    name: str  # "stage2_block1"
    stage: int  # 1-based
    index: int  # 1-based within its stage
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    units: tuple[ConvUnit, ...]
    shortcut: str | None  # "identity", "projection", "zeropad", or None for plain
    shortcut_bn: bool  # projection followed by BN (ImageNet family)
    post_activation: bool  # ReLU after the add (v1); v2 has none

    @property
    def downsamples(self) -> bool:
        return self.in_shape != self.out_shape


@dataclass(frozen=True)
class NetworkPlan:
    spec: ResNetSpec
    stem: ConvUnit
    stem_pool: bool  # 3x3/2 max-pool after the stem (ImageNet)
    stem_out_shape: tuple[int, int, int]
    blocks: tuple[BlockPlan, ...]
    head_preact: bool  # BN-ReLU before pooling (v2)
    use_bias: bool
    bn_epsilon: float
    l2: float  # kernel L2 regularization (CIFAR recipe); 0 for ImageNet


def _conv_out(shape, filters, strides):
    h, w, _ = shape
    return (math.ceil(h / strides), math.ceil(w / strides), filters)


def plan(spec: ResNetSpec) -> NetworkPlan:
    """Expands a spec into the full per-block plan (cheap: no Keras involved)."""
    if spec.family == "imagenet":
        return _plan_imagenet(spec)
    return _plan_cifar(spec)


def _shortcut(spec, needs_change):
    if not spec.residual:
        return None
    if not needs_change:
        return "identity"
    return spec.shortcut


def _plan_cifar(spec: ResNetSpec) -> NetworkPlan:
    stem = ConvUnit(0, 3, 16, 1, preact=False, batch_norm=True, activation=True)
    shape = (32, 32, 16)
    blocks = []
    if spec.version == 1:
        filters = 16
        for stage in range(1, 4):
            for index in range(1, spec.num_blocks + 1):
                strides = 2 if stage > 1 and index == 1 else 1
                out = _conv_out(shape, filters, strides)
                units = (
                    ConvUnit(1, 3, filters, strides, False, True, True),
                    ConvUnit(2, 3, filters, 1, False, True, False),
                )
                blocks.append(BlockPlan(
                    f"stage{stage}_block{index}", stage, index, shape, out, units,
                    _shortcut(spec, out != shape), False, post_activation=True))
                shape = out
            filters *= 2
    else:
        filters_in = 16
        for stage in range(1, 4):
            filters_out = filters_in * (4 if stage == 1 else 2)
            for index in range(1, spec.num_blocks + 1):
                strides = 2 if stage > 1 and index == 1 else 1
                # The stem already ends in BN-ReLU, so the very first unit skips its pre-activation.
                first = stage == 1 and index == 1
                units = (
                    ConvUnit(1, 1, filters_in, strides, True, not first, not first),
                    ConvUnit(2, 3, filters_in, 1, True, True, True),
                    ConvUnit(3, 1, filters_out, 1, True, True, True),
                )
                out = _conv_out(shape, filters_out, strides)
                blocks.append(BlockPlan(
                    f"stage{stage}_block{index}", stage, index, shape, out, units,
                    _shortcut(spec, out != shape), False, post_activation=False))
                shape = out
            filters_in = filters_out
    return NetworkPlan(spec, stem, False, (32, 32, 16), tuple(blocks),
                       head_preact=spec.version == 2, use_bias=True, bn_epsilon=1e-3, l2=1e-4)


def _plan_imagenet(spec: ResNetSpec) -> NetworkPlan:
    kind, stage_depths = IMAGENET_STAGES[spec.depth]
    stem = ConvUnit(0, 7, 64, 2, preact=False, batch_norm=True, activation=True)
    shape = (56, 56, 64)  # 224 -> conv/2 -> 112 -> max-pool/2 -> 56
    blocks = []
    for stage, count in enumerate(stage_depths, start=1):
        width = 64 * 2 ** (stage - 1)
        for index in range(1, count + 1):
            strides = 2 if stage > 1 and index == 1 else 1
            if kind == "basic":
                units = (
                    ConvUnit(1, 3, width, strides, False, True, True),
                    ConvUnit(2, 3, width, 1, False, True, False),
                )
                out = _conv_out(shape, width, strides)
            else:  # keras.applications ResNet50 style: the stride sits on the first 1x1
                units = (
                    ConvUnit(1, 1, width, strides, False, True, True),
                    ConvUnit(2, 3, width, 1, False, True, True),
                    ConvUnit(3, 1, width * 4, 1, False, True, False),
                )
                out = _conv_out(shape, width * 4, strides)
            blocks.append(BlockPlan(
                f"stage{stage}_block{index}", stage, index, shape, out, units,
                _shortcut(spec, out != shape), True, post_activation=True))
            shape = out
    return NetworkPlan(spec, stem, True, (56, 56, 64), tuple(blocks),
                       head_preact=False, use_bias=True, bn_epsilon=1.001e-5, l2=0.0)
