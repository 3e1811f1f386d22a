"""Architecture from the plan alone: per-layer shapes, parameters and multiply-adds, the
per-stage summary, and an interactive Plotly graph with the skip connections drawn (placed by
`graph_layout`).

Nothing here instantiates Keras: ResNet-1202 is described in milliseconds. The tests check
every figure here against the real Keras model built by `models.py`.
Costs are multiply-adds of the conv and dense layers (the paper's convention, which it calls
FLOPs); the `flops` keys hold them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import plotly.graph_objects as go

from .graph_layout import Drawing, Graph, block_node, edge_lines, expanded_block, fmt_shape, part_node
from .plans import BlockPlan, ConvUnit, NetworkPlan, plan
from .specs import ResNetSpec

KIND_COLORS = {
    "conv": "#3b6fb6", "bn": "#9bb7d4", "relu": "#f2b134", "add": "#2e9e5b", "pool": "#8e6cbf",
    "dense": "#c0392b", "pad": "#b07aa1", "stem": "#3b6fb6", "block": "#55606e", "stage": "#2c3e50",
    "head": "#c0392b",
}
WEBGL_NODES = 1500  # more nodes than this are drawn with WebGL rather than SVG
EDGE_STYLES = {  # kind: (color, dash, width, legend label)
    "main": ("#7f8c8d", "solid", 2, "main path"),
    "identity": ("#2e9e5b", "solid", 2, "identity shortcut"),
    "projection": ("#e67e22", "dash", 2.5, "projection shortcut (1x1 conv)"),
    "zeropad": ("#8e44ad", "dot", 2.5, "zero-pad shortcut (no parameters)"),
}


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
    return layers


def summarize(spec: ResNetSpec) -> dict:
    """Totals and a per-stage table (stem, stages, head)."""
    layers = layer_table(spec)
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
    return [row(s["stage"], s["blocks"], s["output_shape"], s["params"], s["flops"]) for s in summary["stages"]] \
        + [row("total", totals["blocks"], "", totals["params"], totals["flops"])]


# ----------------------------------------------------------------------------- the figure


def build_graph(spec: ResNetSpec, expand: str = "none") -> Graph:
    """Nodes and edges for the figure.

    Args:
        expand: "none" draws one node per block; "stageK" draws the layers of stage K and
            blocks elsewhere; "all" draws every layer (thousands at ResNet-1202).
    """
    net = plan(spec)
    stage_count = net.blocks[-1].stage
    valid = {"none", "all"} | {f"stage{i}" for i in range(1, stage_count + 1)}
    if not isinstance(expand, str) or expand not in valid:
        raise ValueError(f"expand must be one of {', '.join(sorted(valid))}; got {expand!r}")
    layers = layer_table(spec)
    drawing = Drawing()
    prev = drawing.node("input", "stage", f"<b>input</b><br>{fmt_shape(spec.input_shape)} pixels", size=12)
    drawing.x += 1
    prev = part_node(drawing, "stem", [layer for layer in layers if layer.stage == "stem"], prev)
    for stage in range(1, stage_count + 1):
        start = drawing.x + 0.5
        draw_block = expanded_block if expand in ("all", f"stage{stage}") else block_node
        for block in [b for b in net.blocks if b.stage == stage]:
            drawing.x += 1
            prev = draw_block(drawing, block, [layer for layer in layers if layer.block == block.name], prev)
        drawing.graph.stage_spans.append((f"stage {stage}", start, drawing.x + 0.5))
    drawing.x += 1
    part_node(drawing, "head", [layer for layer in layers if layer.stage == "head"], prev)
    return drawing.graph


def figure(spec: ResNetSpec, expand: str = "none", title: str | None = None) -> go.Figure:
    """The interactive architecture figure (zoom, pan, hover).

    Args:
        spec: the network to draw.
        expand: "none" draws one node per block; "stageK" draws the layers of stage K and
            blocks elsewhere, and opens zoomed on that stage; "all" draws every layer.
        title: the figure's title; None for the network's name, parameter and block counts.

    Returns:
        A Plotly `go.Figure`.

    Raises:
        ValueError: `expand` is not "none", "all" or "stageK" for a stage of the network.
    """
    graph = build_graph(spec, expand)
    nodes = graph.nodes
    # SVG for the few hundred nodes of a usual view (a browser allows only a handful of WebGL
    # plots per page); WebGL once there are thousands (every layer of ResNet-1202): SVG would stall.
    scatter = go.Scattergl if len(nodes) > WEBGL_NODES else go.Scatter
    fig = go.Figure()
    for kind, (color, dash, width, label) in EDGE_STYLES.items():
        xs, ys = edge_lines(graph, kind)
        if xs:
            fig.add_trace(scatter(x=xs, y=ys, mode="lines", name=label, hoverinfo="skip",
                                  line=dict(color=color, dash=dash, width=width)))
    by_kind = {}
    for node in nodes:
        by_kind.setdefault(node["kind"], []).append(node)
    for kind, group in by_kind.items():
        fig.add_trace(scatter(
            x=[n["x"] for n in group], y=[n["y"] for n in group], mode="markers+text",
            name=kind, showlegend=False, text=[n["label"] for n in group],
            textposition="bottom center", textfont=dict(size=9),
            hovertext=[n["hover"] for n in group], hoverinfo="text",
            marker=dict(size=[n["size"] for n in group], color=KIND_COLORS.get(kind, "#555"),
                        symbol=[n.get("symbol", "circle") for n in group],
                        line=dict(width=1, color="white"))))
    for i, (label, x0, x1) in enumerate(graph.stage_spans):
        fig.add_vrect(x0=x0, x1=x1, fillcolor="#e3eaf3" if i % 2 == 0 else "#f3efe6", opacity=0.6,
                      line_width=0, layer="below", annotation_text=label,
                      annotation_position="top left")
    width = nodes[-1]["x"] + 1
    view = [-0.5, min(width, 70)]
    if expand.startswith("stage"):  # open zoomed on the expanded stage; pan or zoom out for the rest
        _, x0, x1 = graph.stage_spans[int(expand[5:]) - 1]
        view = [x0 - 2, min(x1 + 2, x0 + 70)]
    summary = summarize(spec)["totals"]
    fig.update_layout(
        # the counts on a line of their own: the title fits a phone's width too
        title=title or f"{spec.name}<br><sup>{summary['params']:,} parameters, {summary['blocks']} blocks</sup>",
        showlegend=True, legend=dict(orientation="h", y=-0.15), height=380,
        margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white", hovermode="closest",
        xaxis=dict(visible=False, range=view),
        yaxis=dict(visible=False, range=[-0.8, 2.4], fixedrange=True), dragmode="pan")
    return fig


def explain(spec: ResNetSpec) -> str:
    """Markdown notes about the network on screen, built from its plan."""
    net = plan(spec)
    kinds = [b.shortcut for b in net.blocks]
    identity, projection, zeropad = (kinds.count(k) for k in ("identity", "projection", "zeropad"))
    final = net.blocks[-1].out_shape
    lines = [f"### {spec.name}: what you are looking at"]
    if spec.residual:
        lines.append(
            f"**Residual blocks.** Each of the {len(net.blocks)} blocks computes a residual F(x) and "
            "adds its input back: **H(x) = F(x) + x**. If the best thing a block can do is nothing, "
            "it only has to push F towards zero, which is easy; a plain layer would have to learn "
            "the identity map. The add also gives the gradient a path that skips F entirely.")
        parts = [f"**{identity}** identity shortcuts (green arcs: no parameters)"]
        if projection:
            parts.append(f"**{projection}** projection shortcuts (orange dashed: a 1x1 convolution, "
                         "used only where the block changes the number of channels or the resolution)")
        if zeropad:
            parts.append(f"**{zeropad}** zero-pad shortcuts (purple dotted: the paper's option A, which "
                         "subsamples the input and fills the new channels with zeros, at no parameter cost)")
        lines.append("**Shortcuts.** " + "; ".join(parts) + ".")
    else:
        lines.append(
            f"**Plain twin.** The same {len(net.blocks)} blocks and layers with every shortcut and add "
            "removed: the signal and its gradient must pass through every layer in turn. Toggle "
            "*residual* to compare; the Gradient tab shows what this does to the gradients, the Train "
            "tab's race and degradation view what it does to training.")
    if spec.family == "cifar" and spec.version == 1:
        lines.append("**v1 (post-activation).** conv-BN-ReLU, conv-BN, then the add, then ReLU: the "
                     "shortcut's output passes through a ReLU before the next block.")
    elif spec.family == "cifar":
        lines.append("**v2 (pre-activation bottleneck).** BN-ReLU comes *before* each convolution "
                     "(1x1 reduce, 3x3, 1x1 expand) and nothing follows the add, so the shortcut path "
                     "is a clean identity from the first block to the last.")
    else:
        lines.append("**ImageNet layout.** A 7x7 stride-2 stem and a 3x3 max-pool shrink 224x224 inputs "
                     "to 56x56 before four stages" + (" of bottlenecks (1x1, 3x3, 1x1)." if spec.depth >= 50
                                                      else " of basic two-conv blocks."))
    lines.append(f"**Global average pooling.** The last feature map ({fmt_shape(final)}) is averaged "
                 f"over space to {final[-1]} numbers, one per channel, before the {spec.num_classes}-way "
                 "dense layer: no large fully connected layer, and any input size works.")
    return "\n\n".join(lines)
