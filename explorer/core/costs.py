"""What a network costs, from its plan alone: every Keras layer with its output shape,
parameters and multiply-adds, and the per-stage summary.

Nothing here instantiates Keras or imports Plotly: ResNet-1202 is described in milliseconds,
and commands that only count parameters stay light. The tests check every figure here against
the real Keras model built by `nets.models`. Costs are multiply-adds of the conv and dense
layers (the paper's convention, which it calls FLOPs); the `flops` keys hold them.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

from explorer.core.plans import BlockPlan, ConvUnit, NetworkPlan, plan
from explorer.core.specs import ResNetSpec


def fmt_shape(shape) -> str:
    """A layer's output shape as the page writes it ("32x32x16")."""
    return "x".join(str(s) for s in shape)


@dataclass
class Layer:
    name: str
    kind: str  # conv, bn, relu, add, pool, dense, pad
    stage: str  # "stem", "stage1".., "head"
    block: str  # block name, or "stem"/"head"
    output_shape: tuple
    params: int = 0
    trainable: int = 0
    flops: int = 0
    shortcut: bool = False  # on the shortcut path rather than the main path
    detail: str = ""


def _conv_layers(prefix, unit: ConvUnit, in_shape, net: NetworkPlan, stage, block):
    """Layers of one unit, in run order, with their costs."""
    suffix = "" if unit.index == 0 else str(unit.index)
    h, w, cin = in_shape
    out = (math.ceil(h / unit.strides), math.ceil(w / unit.strides), unit.filters)
    weights = unit.kernel_size ** 2 * cin * unit.filters
    conv = Layer(f"{prefix}_conv{suffix}", "conv", stage, block, out,
                 weights + (unit.filters if net.use_bias else 0),
                 weights + (unit.filters if net.use_bias else 0),
                 weights * out[0] * out[1],
                 detail=f"{unit.kernel_size}x{unit.kernel_size} conv, {unit.filters} filters"
                        + (f", stride {unit.strides}" if unit.strides > 1 else ""))
    bn_shape = in_shape if unit.preact else out
    norm = [Layer(f"{prefix}_bn{suffix}", "bn", stage, block, bn_shape, 4 * bn_shape[-1],
                  2 * bn_shape[-1], detail="batch norm")] if unit.batch_norm else []
    act = [Layer(f"{prefix}_relu{suffix}", "relu", stage, block, bn_shape, detail="ReLU")] \
        if unit.activation else []
    return (norm + act + [conv]) if unit.preact else ([conv] + norm + act)


def block_layers(block: BlockPlan, net: NetworkPlan) -> list[Layer]:
    """The layers of one block, in run order, with their shapes, parameters and multiply-adds.

    Args:
        block: the block's plan.
        net: the plan of the whole network (whether its convolutions have biases).

    Returns:
        The main path's layers, then the shortcut's (marked `shortcut=True`), then the add
        and, for post-activation blocks, the ReLU after it; named as the Keras model names them.
    """
    stage = f"stage{block.stage}"
    layers, shape = [], block.in_shape
    for unit in block.units:
        layers += _conv_layers(block.name, unit, shape, net, stage, block.name)
        shape = layers[-1].output_shape
    if block.shortcut == "projection":
        unit = ConvUnit(0, 1, block.out_shape[-1], block.units[0].strides, False,
                        block.shortcut_bn, False)
        short = _conv_layers(f"{block.name}_shortcut", unit, block.in_shape, net, stage, block.name)
        short[0].name = f"{block.name}_shortcut"
        short[0].detail = "projection shortcut: " + short[0].detail
        if block.shortcut_bn:
            short[1].name = f"{block.name}_shortcut_bn"
        for layer in short:
            layer.shortcut = True
        layers += short
    elif block.shortcut == "zeropad":
        layers.append(Layer(f"{block.name}_shortcut_pad", "pad", stage, block.name, block.out_shape,
                            shortcut=True, detail="zero-pad shortcut: strided identity + zero channels"))
    if block.shortcut:
        layers.append(Layer(f"{block.name}_add", "add", stage, block.name, block.out_shape,
                            detail="H(x) = F(x) + shortcut(x)"))
    if block.post_activation:
        layers.append(Layer(f"{block.name}_out", "relu", stage, block.name, block.out_shape,
                            detail="ReLU after the add"))
    return layers


def layer_table(spec: ResNetSpec) -> list[Layer]:
    """Every Keras layer of the model, in run order (shortcut layers inside their block)."""
    return list(_layer_table(spec))


@functools.lru_cache(maxsize=16)
def _layer_table(spec: ResNetSpec) -> tuple[Layer, ...]:
    """`layer_table`, kept per spec (a spec is frozen; ResNet-1202 has about 4,000 layers)."""
    net = plan(spec)
    h, w, c = spec.input_shape
    layers = _conv_layers("stem", net.stem, (h, w, c), net, "stem", "stem")
    if net.stem_pool:
        s = net.stem_out_shape
        layers.append(Layer("stem_pool", "pool", "stem", "stem", s, detail="3x3 max-pool, stride 2"))
    for block in net.blocks:
        layers += block_layers(block, net)
    shape = net.blocks[-1].out_shape
    if net.head_preact:
        layers += [Layer("head_bn", "bn", "head", "head", shape, 4 * shape[-1], 2 * shape[-1],
                         detail="batch norm (v2: final pre-activation)"),
                   Layer("head_relu", "relu", "head", "head", shape, detail="ReLU")]
    classes = spec.num_classes
    layers += [
        Layer("head_pool", "pool", "head", "head", (shape[-1],), detail="global average pooling"),
        Layer("head_dense", "dense", "head", "head", (classes,), shape[-1] * classes + classes,
              shape[-1] * classes + classes, shape[-1] * classes, detail=f"dense, {classes}-way softmax"),
    ]
    return tuple(layers)


def summarize(spec: ResNetSpec) -> dict:
    """Totals and a per-stage table (stem, stages, head)."""
    return copy.deepcopy(_summary(spec))


@functools.lru_cache(maxsize=16)
def _summary(spec: ResNetSpec) -> dict:
    layers = _layer_table(spec)
    net = plan(spec)
    stages = []
    for key in ["stem"] + [f"stage{i}" for i in range(1, net.blocks[-1].stage + 1)] + ["head"]:
        members = [layer for layer in layers if layer.stage == key]
        blocks = len({layer.block for layer in members}) if key.startswith("stage") else 0
        stages.append({
            "stage": key, "blocks": blocks, "output_shape": fmt_shape(members[-1].output_shape),
            "params": sum(layer.params for layer in members),
            "flops": sum(layer.flops for layer in members)})
    params = sum(layer.params for layer in layers)
    trainable = sum(layer.trainable for layer in layers)
    totals = {
        "name": spec.name, "depth": spec.depth, "version": spec.version, "family": spec.family,
        "residual": spec.residual, "shortcut": spec.shortcut, "params": params,
        "trainable_params": trainable, "non_trainable_params": params - trainable,
        "layers": len(layers), "blocks": len(net.blocks),
        "weighted_layers": sum(layer.kind in ("conv", "dense") and not layer.shortcut
                               for layer in layers),
        "flops": sum(layer.flops for layer in layers),
    }
    return {"totals": totals, "stages": stages}


STAGE_HEADERS = ["stage", "blocks", "output shape", "parameters", "multiply-adds"]


def stage_rows(summary: dict) -> list[list[str]]:
    """The per-stage table as a page shows it, under `STAGE_HEADERS`: a row per stage (stem,
    stages, head) and a total row, counts written with thousands separators ("274,442").

    Args:
        summary: as returned by `summarize`.
    """
    def row(name, blocks, shape, params, flops):
        return [name, f"{blocks:,}", shape, f"{params:,}", f"{flops:,}"]

    totals = summary["totals"]
    return [row(s["stage"], s["blocks"], s["output_shape"], s["params"], s["flops"])
            for s in summary["stages"]] \
        + [row("total", totals["blocks"], "", totals["params"], totals["flops"])]
