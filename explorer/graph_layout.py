"""Where the architecture figure's nodes and edges go, and what their tooltips say.

`graph.build_graph` walks the plan and calls these: a `_Drawing` places nodes left to right
(the main path on y = 0, shortcut layers on an arc above it) and records the edges between
them. Tooltips name costs as they are: parameters and multiply-adds, long lines wrapped.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: graph imports this module
    from .graph import Layer
    from .plans import BlockPlan

HOVER_WIDTH = 60  # characters a tooltip line holds before it wraps (the graph is ~700 px wide)


@dataclass
class Graph:
    nodes: list = field(default_factory=list)  # dicts: id, label, kind, x, y, hover, ...
    edges: list = field(default_factory=list)  # (src_id, dst_id, kind)
    stage_spans: list = field(default_factory=list)  # (label, x0, x1)


def fmt_shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def wrap(text: str, width: int = HOVER_WIDTH) -> str:
    """`text` with a <br> where a line would run past `width` characters (at spaces only)."""
    return "<br>".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text


def hover(title, kind, shape, params, flops, detail=""):
    """A node's tooltip: its name, what it is (wrapped), output shape, parameters, multiply-adds."""
    return (f"<b>{title}</b><br>{wrap(detail or kind)}<br>output {fmt_shape(shape)}"
            f"<br>params {params:,}<br>multiply-adds {flops:,}")


@dataclass
class Drawing:
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


def part_node(drawing: Drawing, part: str, layers: list[Layer], prev: dict) -> dict:
    """One node for the stem or the head, its layers summed up, after `prev`."""
    return drawing.node(part, part, hover(
        part, part, layers[-1].output_shape, sum(layer.params for layer in layers),
        sum(layer.flops for layer in layers), " → ".join(layer.detail for layer in layers)), size=18, after=prev)


def block_node(drawing: Drawing, block: BlockPlan, members: list[Layer], prev: dict) -> dict:
    """A collapsed block: one square node, joined to `prev` by the main path and its shortcut."""
    node = drawing.node(
        block.name.split("_")[1], "block",
        hover(block.name, "block", block.out_shape, sum(m.params for m in members),
              sum(m.flops for m in members), " → ".join(m.detail.split(",")[0] for m in members if not m.shortcut)),
        size=16, symbol="square", after=prev)
    if block.shortcut:
        drawing.edge(prev, node, block.shortcut)
    return node


def _shortcut_arc(drawing: Drawing, block: BlockPlan, members: list[Layer], block_input: dict, add: dict):
    """An expanded block's shortcut, input to add; its own layers as one node on the arc."""
    short = [member for member in members if member.shortcut]
    if not short:
        drawing.edge(block_input, add, "identity")
        return
    saved_x, drawing.x = drawing.x, (block_input["x"] + add["x"]) / 2
    node = drawing.node(short[0].name.split("_", 2)[-1], short[0].kind, hover(
        short[0].name, short[0].kind, short[-1].output_shape, sum(layer.params for layer in short),
        sum(layer.flops for layer in short), " + ".join(layer.detail for layer in short)),
        y=1.2, size=14, symbol="diamond")
    drawing.x = saved_x
    drawing.edge(block_input, node, block.shortcut)
    drawing.edge(node, add, block.shortcut)


def _layer_node(drawing: Drawing, member: Layer, prev: dict, label: str = "", size: int | None = None) -> dict:
    """One layer of an expanded block on the main path, after `prev`; the cursor moves on."""
    node = drawing.node(label, member.kind, hover(member.name, member.kind, member.output_shape, member.params,
                                                  member.flops, member.detail),
                        size=size or (14 if member.kind == "conv" else 9), after=prev)
    drawing.x += 1.0
    return node


def expanded_block(drawing: Drawing, block: BlockPlan, members: list[Layer], prev: dict) -> dict:
    """An expanded block, node by node: main path, add and shortcut arc, ReLU after the add (v1)."""
    block_input = prev
    main = [member for member in members if not member.shortcut and member.kind != "add"]
    add_layer = next((member for member in members if member.kind == "add"), None)
    tail = [member for member in main if add_layer is not None and member.name.endswith("_out")]
    for member in main:
        if member not in tail:
            prev = _layer_node(drawing, member, prev, member.name.split("_", 2)[-1] if member.kind == "conv" else "")
    if add_layer is not None:  # the add and the ReLU after it have no parameters and no multiply-adds
        prev = add = _layer_node(drawing, add_layer, prev, "+", size=18)
        _shortcut_arc(drawing, block, members, block_input, add)
    for member in tail:
        prev = _layer_node(drawing, member, prev)
    return prev


def arc(x0, y0, x1, y1, lift):
    """Points of a quadratic curve from (x0, y0) to (x1, y1) bulging up by `lift`."""
    cx, cy = (x0 + x1) / 2, max(y0, y1) + lift
    ts = [i / 12 for i in range(13)]
    return ([(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x1 for t in ts],
            [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y1 for t in ts])


def edge_lines(graph: Graph, kind: str) -> tuple[list, list]:
    """x and y of every edge of one kind, None between edges: straight for the main path and
    for edges to a node off the path, an arc for a shortcut that skips along the path."""
    xs, ys = [], []
    for src, dst, edge_kind in graph.edges:
        if edge_kind != kind:
            continue
        a, b = graph.nodes[src], graph.nodes[dst]
        if kind == "main" or a["y"] != b["y"]:
            xs += [a["x"], b["x"], None]
            ys += [a["y"], b["y"], None]
        else:
            px, py = arc(a["x"], a["y"], b["x"], b["y"], 0.9)
            xs += px + [None]
            ys += py + [None]
    return xs, ys
