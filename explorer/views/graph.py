"""The architecture as an interactive Plotly graph: blocks placed by `graph_layout`, the skip
connections drawn, every node's costs (from `core.costs`) in its tooltip.

Nothing here instantiates Keras: ResNet-1202 is drawn from the plan in well under a second.
"""

from __future__ import annotations

import plotly.graph_objects as go

from explorer.core.checks import one_of
from explorer.core.costs import fmt_shape, layer_table, summarize
from explorer.core.plans import BlockPlan, NetworkPlan, plan
from explorer.core.specs import ResNetSpec
from explorer.views.graph_figure import draw
from explorer.views.graph_layout import (
    KEEP,
    RIGHT,
    ROW_BLOCKS,
    Drawing,
    Graph,
    block_node,
    block_size,
    expanded_block,
    expanded_width,
    part_node,
    stack_nodes,
)

# ----------------------------------------------------------------------------- the figure


def _signature(block: BlockPlan) -> tuple:
    """What makes two blocks identical but for their names."""
    return (block.units, block.shortcut, block.shortcut_bn, block.in_shape, block.out_shape,
            block.post_activation)


def stage_items(blocks: list[BlockPlan], single: str | None = None) -> list[list[BlockPlan]]:
    """A stage's blocks as the graph draws them, left to right: single blocks (lists of one)
    and, when the stage holds more than a row, stacks (longer lists) for each run of identical
    blocks, its first and last `KEEP` blocks left single; the block named `single` always
    stands alone (a stack it was in is split around it)."""
    if len(blocks) <= ROW_BLOCKS:
        return [[block] for block in blocks]
    runs = []
    for block in blocks:
        if runs and _signature(runs[-1][-1]) == _signature(block):
            runs[-1].append(block)
        else:
            runs.append([block])
    items = []
    for run in runs:
        if len(run) > 2 * KEEP + 2:
            items += ([[block] for block in run[:KEEP]] + [run[KEEP:-KEEP]]
                      + [[block] for block in run[-KEEP:]])
        else:
            items += [[block] for block in run]
    for i, item in enumerate(items):
        names = [block.name for block in item]
        if len(item) > 1 and single in names:
            at = names.index(single)
            items[i: i + 1] = [part for part in (item[:at], [item[at]], item[at + 1:]) if part]
            break
    return items


def check_expand(expand, net: NetworkPlan) -> str:
    """`expand` if `net` can be drawn so: "none", "all", "stageK" of one of its stages, or the
    name of one of its blocks; raises ValueError naming the choices otherwise."""
    valid = sorted({"none", "all"} | {f"stage{i}" for i in range(1, net.blocks[-1].stage + 1)})
    return one_of(expand, valid + [block.name for block in net.blocks], "expand",
                  f"{', '.join(valid)} or a block's name ({net.blocks[0].name} to {net.blocks[-1].name})")


def build_graph(spec: ResNetSpec, expand: str = "none") -> Graph:
    """Nodes and edges for the figure: one row per stage, the whole net on one screen.

    Args:
        spec: the network to draw.
        expand: "none" draws one node per block; "stageK" draws the layers of stage K's
            single blocks and blocks elsewhere; "all" draws the layers of every single block;
            a block's name ("stage2_block3") draws that block's layers only, the rest as
            blocks. A stack of identical blocks stays a stack (its blocks' layers are those
            beside it), split around a block expanded on its own.

    Raises:
        ValueError: `expand` is not "none", "all", "stageK" for a stage of the network, or
            the name of one of its blocks.
    """
    net = plan(spec)
    stage_count = net.blocks[-1].stage
    expand = check_expand(expand, net)
    layers = layer_table(spec)
    members = {}
    for layer in layers:
        members.setdefault(layer.block, []).append(layer)
    drawing = Drawing()
    # the input's label above it: below, it runs into the stem's on a phone's narrow graph
    prev = drawing.node("input", "stage", f"<b>input</b><br>{fmt_shape(spec.input_shape)} pixels", size=12,
                        text_position="top center")
    prev = part_node(drawing, "stem", members["stem"], prev)
    smallest = net.blocks[-1].out_shape[0]
    for stage in range(1, stage_count + 1):
        blocks = [b for b in net.blocks if b.stage == stage]
        if stage > 1:
            prev = drawing.new_row(prev)
        top, draw_block = drawing.y, expanded_block if expand in ("all", f"stage{stage}") else block_node
        items = stage_items(blocks, expand)
        stacks = sum(len(item) > 1 for item in items)
        alone = expanded_width(members[expand]) - 1 if expand in {b.name for b in blocks} else 0
        width = (ROW_BLOCKS - len(items) + stacks - alone) / max(stacks, 1)  # stacks share what singles leave
        for item in items:
            size = block_size(item[0], smallest)
            if len(item) > 1:
                prev = stack_nodes(drawing, item, members, prev, size, width)
            else:
                draw = expanded_block if item[0].name == expand else draw_block
                prev = draw(drawing, item[0], members[item[0].name], prev, size)
        label = f"stage {stage}: {fmt_shape(blocks[-1].out_shape)}, {len(blocks):,} blocks"
        drawing.graph.stage_spans.append((label, top, drawing.y))
    prev = drawing.room(prev, 1, RIGHT + 1)
    part_node(drawing, "head", members["head"], prev)
    return drawing.graph


def figure(spec: ResNetSpec, expand: str = "none", title: str | None = None, paint=None,
           twin=None) -> go.Figure:
    """The interactive architecture figure (zoom, pan, hover): the whole net on one screen.

    Args:
        spec: the network to draw.
        expand: "none" draws one node per block; "stageK" draws the layers of stage K;
            "all" draws every single block's layers; a block's name, that block's layers
            (see `build_graph`); a twin is drawn the same way.
        title: the figure's title; None for the network's name, parameter and block counts.
        paint: a `graph_figure.Paint` that colours the blocks by a measurement; None for none.
        twin: (spec, Paint) of a second net drawn below on the same colour scale; None for none.

    Returns:
        A Plotly `go.Figure`.

    Raises:
        ValueError: `expand` is not "none", "all", "stageK" or a block's name for the network.
    """
    totals = summarize(spec)["totals"]
    title = title or f"{spec.name}<br><sup>{totals['params']:,} parameters, {totals['blocks']:,} blocks</sup>"
    panels = [(build_graph(spec, expand), paint, paint.label if twin is not None and paint else "")]
    if twin is not None:
        panels.append((build_graph(twin[0], expand), twin[1], twin[1].label if twin[1] else twin[0].name))
    return draw(panels, title)


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
