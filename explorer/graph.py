"""Architecture from the plan alone: per-layer shapes, parameters and FLOPs, the per-stage
summary, and an interactive Plotly graph with the skip connections drawn.

Nothing here instantiates Keras: ResNet-1202 is described in milliseconds. The tests check
every figure here against the real Keras model built by `models.py`.
FLOPs are multiply-accumulates of the conv and dense layers (the paper's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import plotly.graph_objects as go

from .plans import BlockPlan, ConvUnit, NetworkPlan, plan
from .specs import ResNetSpec

KIND_COLORS = {
    "conv": "#3b6fb6", "bn": "#9bb7d4", "relu": "#f2b134", "add": "#2e9e5b", "pool": "#8e6cbf",
    "dense": "#c0392b", "pad": "#b07aa1", "stem": "#3b6fb6", "block": "#55606e", "stage": "#2c3e50",
    "head": "#c0392b",
}
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


@dataclass
class Graph:
    nodes: list = field(default_factory=list)  # dicts: id, label, kind, x, y, hover, ...
    edges: list = field(default_factory=list)  # (src_id, dst_id, kind)
    stage_spans: list = field(default_factory=list)  # (label, x0, x1)


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
    """The layers of one block, in run order, with their shapes, parameters and FLOPs.

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


def _fmt_shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def summarize(spec: ResNetSpec) -> dict:
    """Totals and a per-stage table (stem, stages, head)."""
    layers = layer_table(spec)
    net = plan(spec)
    stages = []
    for key in ["stem"] + [f"stage{i}" for i in range(1, net.blocks[-1].stage + 1)] + ["head"]:
        members = [layer for layer in layers if layer.stage == key]
        blocks = len({layer.block for layer in members}) if key.startswith("stage") else 0
        stages.append({
            "stage": key, "blocks": blocks, "output_shape": _fmt_shape(members[-1].output_shape),
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


# ----------------------------------------------------------------------------- the figure


def _hover(title, kind, shape, params, flops, detail=""):
    text = f"<b>{title}</b><br>{detail or kind}<br>output {_fmt_shape(shape)}"
    return text + f"<br>params {params:,}<br>FLOPs {flops:,}"


@dataclass
class _Drawing:
    """A graph drawn left to right: `x` is where the next node goes."""

    graph: Graph = field(default_factory=Graph)
    x: float = 0.0

    def node(self, label, kind, hover, size=14, y=0.0, after: dict | None = None, **extra) -> dict:
        """A new node at the cursor; `after` is the node the main path comes from, if any."""
        node = {"id": len(self.graph.nodes), "label": label, "kind": kind, "x": self.x, "y": y,
                "hover": hover, "size": size, **extra}
        self.graph.nodes.append(node)
        if after is not None:
            self.edge(after, node)
        return node

    def edge(self, source: dict, target: dict, kind: str = "main"):
        self.graph.edges.append((source["id"], target["id"], kind))


def _part_node(drawing: _Drawing, part: str, layers: list[Layer], prev: dict) -> dict:
    """One node for the stem or the head, its layers summed up, after `prev`."""
    return drawing.node(part, part, _hover(
        part, part, layers[-1].output_shape, sum(layer.params for layer in layers),
        sum(layer.flops for layer in layers), " → ".join(layer.detail for layer in layers)), size=18, after=prev)


def _block_node(drawing: _Drawing, block: BlockPlan, members: list[Layer], prev: dict) -> dict:
    """A collapsed block: one square node, joined to `prev` by the main path and its shortcut."""
    node = drawing.node(
        block.name.split("_")[1], "block",
        _hover(block.name, "block", block.out_shape, sum(m.params for m in members),
               sum(m.flops for m in members), " → ".join(m.detail.split(",")[0] for m in members if not m.shortcut)),
        size=16, symbol="square", after=prev)
    if block.shortcut:
        drawing.edge(prev, node, block.shortcut)
    return node


def _shortcut_arc(drawing: _Drawing, block: BlockPlan, members: list[Layer], block_input: dict, add: dict):
    """An expanded block's shortcut, input to add; its own layers as one node on the arc."""
    short = [member for member in members if member.shortcut]
    if not short:
        drawing.edge(block_input, add, "identity")
        return
    saved_x, drawing.x = drawing.x, (block_input["x"] + add["x"]) / 2
    node = drawing.node(short[0].name.split("_", 2)[-1], short[0].kind, _hover(
        short[0].name, short[0].kind, short[-1].output_shape, sum(layer.params for layer in short),
        sum(layer.flops for layer in short), " + ".join(layer.detail for layer in short)),
        y=1.2, size=14, symbol="diamond")
    drawing.x = saved_x
    drawing.edge(block_input, node, block.shortcut)
    drawing.edge(node, add, block.shortcut)


def _layer_node(drawing: _Drawing, member: Layer, prev: dict, label: str = "", size: int | None = None) -> dict:
    """One layer of an expanded block on the main path, after `prev`; the cursor moves on."""
    node = drawing.node(label, member.kind, _hover(member.name, member.kind, member.output_shape, member.params,
                                                   member.flops, member.detail),
                        size=size or (14 if member.kind == "conv" else 9), after=prev)
    drawing.x += 1.0
    return node


def _expanded_block(drawing: _Drawing, block: BlockPlan, members: list[Layer], prev: dict) -> dict:
    """An expanded block, node by node: main path, add and shortcut arc, ReLU after the add (v1)."""
    block_input = prev
    main = [member for member in members if not member.shortcut and member.kind != "add"]
    add_layer = next((member for member in members if member.kind == "add"), None)
    tail = [member for member in main if add_layer is not None and member.name.endswith("_out")]
    for member in main:
        if member not in tail:
            prev = _layer_node(drawing, member, prev, member.name.split("_", 2)[-1] if member.kind == "conv" else "")
    if add_layer is not None:  # the add and the ReLU after it have no parameters and no FLOPs
        prev = add = _layer_node(drawing, add_layer, prev, "+", size=18)
        _shortcut_arc(drawing, block, members, block_input, add)
    for member in tail:
        prev = _layer_node(drawing, member, prev)
    return prev


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
    drawing = _Drawing()
    prev = drawing.node("input", "stage", f"<b>input</b><br>{_fmt_shape(spec.input_shape)} pixels", size=12)
    drawing.x += 1
    prev = _part_node(drawing, "stem", [layer for layer in layers if layer.stage == "stem"], prev)
    for stage in range(1, stage_count + 1):
        start = drawing.x + 0.5
        draw_block = _expanded_block if expand in ("all", f"stage{stage}") else _block_node
        for block in [b for b in net.blocks if b.stage == stage]:
            drawing.x += 1
            prev = draw_block(drawing, block, [layer for layer in layers if layer.block == block.name], prev)
        drawing.graph.stage_spans.append((f"stage {stage}", start, drawing.x + 0.5))
    drawing.x += 1
    _part_node(drawing, "head", [layer for layer in layers if layer.stage == "head"], prev)
    return drawing.graph


def _arc(x0, y0, x1, y1, lift):
    """Points of a quadratic curve from (x0, y0) to (x1, y1) bulging up by `lift`."""
    cx, cy = (x0 + x1) / 2, max(y0, y1) + lift
    ts = [i / 12 for i in range(13)]
    return ([(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x1 for t in ts],
            [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y1 for t in ts])


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
    fig = go.Figure()
    for kind, (color, dash, width, label) in EDGE_STYLES.items():
        xs, ys = [], []
        for src, dst, edge_kind in graph.edges:
            if edge_kind != kind:
                continue
            a, b = nodes[src], nodes[dst]
            if kind == "main" or a["y"] != b["y"]:
                xs += [a["x"], b["x"], None]
                ys += [a["y"], b["y"], None]
            else:
                px, py = _arc(a["x"], a["y"], b["x"], b["y"], 0.9)
                xs += px + [None]
                ys += py + [None]
        if xs:
            fig.add_trace(go.Scattergl(x=xs, y=ys, mode="lines", name=label, hoverinfo="skip",
                                       line=dict(color=color, dash=dash, width=width)))
    by_kind = {}
    for node in nodes:
        by_kind.setdefault(node["kind"], []).append(node)
    for kind, group in by_kind.items():
        # WebGL once there are thousands of nodes (every layer of ResNet-1202): SVG would stall.
        scatter = go.Scattergl if len(nodes) > 1500 else go.Scatter
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
        title=title or f"{spec.name}: {summary['params']:,} parameters, {summary['blocks']} blocks",
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
    lines.append(f"**Global average pooling.** The last feature map ({_fmt_shape(final)}) is averaged "
                 f"over space to {final[-1]} numbers, one per channel, before the {spec.num_classes}-way "
                 "dense layer: no large fully connected layer, and any input size works.")
    return "\n\n".join(lines)
