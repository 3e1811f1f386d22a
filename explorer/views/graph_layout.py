"""Where the architecture figure's nodes and edges go, and what their tooltips say.

The whole net fits one screen at every depth: one row per stage (input and stem lead the
first, the head ends the last), blocks left to right. A stage with more blocks than a row
holds draws each run of identical blocks as a stack: its first and last blocks stand alone,
the rest sit packed side by side in a box labelled "x n", every one of them still a node
with its own skip arc (a stack shows its skips, never a bare box). An expanded stage draws
the layers of its single blocks and wraps onto more rows when they do not fit.

`graph.build_graph` walks the plan and calls these: a `Drawing` places nodes and records
the edges between them; `edge_lines` turns the edges into lines (straight along a row, an
arc for a skip, a return path from the end of one row to the start of the next). Tooltips
name costs as they are: parameters and multiply-adds, long lines wrapped.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from explorer.core.costs import fmt_shape

if TYPE_CHECKING:  # annotations only: graph imports this module
    from explorer.core.costs import Layer
    from explorer.core.plans import BlockPlan

# characters a tooltip line holds before it wraps: at the tooltip's 12 px about 210 px, which
# fits beside a block on a phone's ~330 px graph (60 ran past both edges there)
HOVER_WIDTH = 32
ROW_BLOCKS = 18  # block columns in a row: ResNet-110 and -164 draw every block of a stage singly
X0 = 2.0  # x of a row's first block (the input and the stem stand left of stage 1's)
RIGHT = X0 + ROW_BLOCKS - 1  # x of a row's last block column (the head may stand one further)
ROW_GAP = 1.7  # y between two rows
MIN_STACK_WIDTH = 3.0  # x a stack of identical blocks spans at least (it fills what its row leaves)
KEEP = 2  # blocks drawn singly at each end of a stacked run
LAYER_STEP = 0.5  # x between two layers of an expanded block
ARC_LIFT = 0.45  # how high a skip arc between neighbouring blocks rises


@dataclass
class Graph:
    nodes: list = field(default_factory=list)  # dicts: id, label, kind, x, y, row, hover, size, ...
    edges: list = field(default_factory=list)  # (src_id, dst_id, kind)
    stage_spans: list = field(default_factory=list)  # (label, y_top, y_bottom): a band per stage
    stacks: list = field(default_factory=list)  # {"x0", "x1", "y", "count", "first", "last"}

    @property
    def bottom(self) -> float:
        """The y of the lowest row."""
        return min(node["row"] for node in self.nodes)


def wrap(text: str, width: int = HOVER_WIDTH) -> str:
    """`text` with a <br> where a line would run past `width` characters (at spaces only)."""
    return "<br>".join(textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or text


def hover(title, kind, shape, params, flops, detail=""):
    """A node's tooltip: its name, what it is (wrapped), output shape, parameters, multiply-adds."""
    return (f"<b>{title}</b><br>{wrap(detail or kind)}<br>output {fmt_shape(shape)}"
            f"<br>params {params:,}<br>multiply-adds {flops:,}")


def block_size(block: BlockPlan, smallest: int) -> int:
    """Marker size of a block: larger where the feature map is larger (16 px at 32x32, 13 at
    16x16, 10 at 8x8 in a CIFAR net), so the stages read apart at a glance."""
    return int(10 + 3 * math.log2(max(block.out_shape[0], 1) / max(smallest, 1)))


@dataclass
class Drawing:
    """A graph drawn in rows: `x` is the last on-path node's x, `y` its row's."""

    graph: Graph = field(default_factory=Graph)
    x: float = 0.0
    y: float = 0.0

    def node(self, label, kind, hover, size=14, dy=0.0, after: dict | None = None, **extra) -> dict:
        """A new node at the cursor (`dy` above the row for one off the main path); `after`
        is the node the main path comes from, if any."""
        node = {"id": len(self.graph.nodes), "label": label, "kind": kind, "x": self.x, "y": self.y + dy,
                "row": self.y, "hover": hover, "size": size, **extra}
        self.graph.nodes.append(node)
        if after is not None:
            self.edge(after, node)
        return node

    def edge(self, source: dict, target: dict, kind: str = "main"):
        self.graph.edges.append((source["id"], target["id"], kind))

    def new_row(self, prev: dict) -> dict:
        """Moves to the start of the next row; returns the joint the main path enters it by
        (an unmarked node: the input of the row's first block)."""
        self.y -= ROW_GAP
        self.x = X0 - 1
        return self.node("", "joint", "", size=0, after=prev)

    def room(self, prev: dict, width: float, right: float = RIGHT) -> dict:
        """`prev`, or the joint of a new row when `width` more x does not fit in this one."""
        if self.x + width > right + 1e-9 and self.x > X0:
            return self.new_row(prev)
        return prev


def part_node(drawing: Drawing, part: str, layers: list[Layer], prev: dict | None) -> dict:
    """One node for the stem or the head, its layers summed up, one step after `prev`."""
    drawing.x += 1
    return drawing.node(part, part, hover(
        part, part, layers[-1].output_shape, sum(layer.params for layer in layers),
        sum(layer.flops for layer in layers), " → ".join(layer.detail for layer in layers)),
        size=18, after=prev)


def _block_hover(block: BlockPlan, members: list[Layer]) -> str:
    return hover(block.name, "block", block.out_shape, sum(m.params for m in members),
                 sum(m.flops for m in members),
                 " → ".join(m.detail.split(",")[0] for m in members if not m.shortcut))


def block_node(drawing: Drawing, block: BlockPlan, members: list[Layer], prev: dict, size: int = 16) -> dict:
    """A collapsed block: one square node a step after `prev`, joined to it by the main path
    and by its shortcut."""
    prev = drawing.room(prev, 1)
    drawing.x += 1
    node = drawing.node(str(block.index), "block", _block_hover(block, members), size=size, symbol="square",
                        after=prev, block=block.name)
    if block.shortcut:
        drawing.edge(prev, node, block.shortcut)
    return node


def stack_nodes(drawing: Drawing, run: list[BlockPlan], members: dict, prev: dict, size: int = 16,
                width: float = MIN_STACK_WIDTH) -> dict:
    """A run of identical blocks as a stack: one thin node per block packed into `width` (in
    block columns), each joined to the last by the main path and its own skip arc, in a box
    labelled "x n"."""
    width = max(width, MIN_STACK_WIDTH)
    prev = drawing.room(prev, width)
    step = (width - 1) / max(len(run) - 1, 1)
    start = drawing.x + 1
    for i, block in enumerate(run):
        drawing.x = start + i * step
        node = drawing.node("", "stacked", _block_hover(block, members[block.name]), size=size - 4,
                            symbol="line-ns-open", after=prev, block=block.name)
        if block.shortcut:
            drawing.edge(prev, node, block.shortcut)
        prev = node
    drawing.graph.stacks.append({"x0": start - 0.3, "x1": drawing.x + 0.3, "y": drawing.y, "count": len(run),
                                 "first": run[0].name, "last": run[-1].name, "size": size})
    return prev


def _shortcut_arc(drawing: Drawing, block: BlockPlan, members: list[Layer], block_input: dict, add: dict):
    """An expanded block's shortcut, input to add; its own layers as one node above the path
    (part of the block: an overlay colours it, a click on it chooses the block)."""
    short = [member for member in members if member.shortcut]
    if not short:
        drawing.edge(block_input, add, "identity")
        return
    saved_x, drawing.x = drawing.x, (block_input["x"] + add["x"]) / 2
    node = drawing.node(short[0].name.split("_", 2)[-1], short[0].kind, hover(
        short[0].name, short[0].kind, short[-1].output_shape, sum(layer.params for layer in short),
        sum(layer.flops for layer in short), " + ".join(layer.detail for layer in short)),
        dy=0.5, size=12, symbol="diamond", block=block.name)
    drawing.x = saved_x
    drawing.edge(block_input, node, block.shortcut)
    drawing.edge(node, add, block.shortcut)


def _layer_node(drawing: Drawing, member: Layer, prev: dict, block: str, label: str = "",
                size: int | None = None) -> dict:
    """One layer of an expanded block on the main path, a step after `prev`; it carries its
    block's name, so an overlay colours the block's layers and a click on one chooses it."""
    drawing.x += LAYER_STEP
    return drawing.node(label, member.kind,
                        hover(member.name, member.kind, member.output_shape, member.params,
                              member.flops, member.detail),
                        size=size or (12 if member.kind == "conv" else 7), after=prev, block=block)


def expanded_width(members: list[Layer]) -> float:
    """The x an expanded block takes: its main-path layers and the add, a gap before it."""
    return (sum(1 for member in members if not member.shortcut and member.kind != "add") + 2) * LAYER_STEP


def expanded_block(drawing: Drawing, block: BlockPlan, members: list[Layer], prev: dict,
                   size: int = 16) -> dict:
    """An expanded block, node by node: main path, add and shortcut arc, ReLU after the add (v1);
    on a new row when it does not fit in this one."""
    main = [member for member in members if not member.shortcut and member.kind != "add"]
    prev = block_input = drawing.room(prev, expanded_width(members))
    drawing.x += LAYER_STEP  # a gap between blocks
    add_layer = next((member for member in members if member.kind == "add"), None)
    tail = [member for member in main if add_layer is not None and member.name.endswith("_out")]
    for member in main:
        if member not in tail:
            prev = _layer_node(drawing, member, prev, block.name,
                               member.name.split("_", 2)[-1] if member.kind == "conv" else "")
    if add_layer is not None:  # the add and the ReLU after it have no parameters and no multiply-adds
        prev = add = _layer_node(drawing, add_layer, prev, block.name, "+", size=14)
        _shortcut_arc(drawing, block, members, block_input, add)
    for member in tail:
        prev = _layer_node(drawing, member, prev, block.name)
    return prev


def arc(x0, y0, x1, y1, lift, points=9):
    """Points of a quadratic curve from (x0, y0) to (x1, y1) bulging up by `lift`."""
    cx, cy = (x0 + x1) / 2, max(y0, y1) + lift
    ts = [i / (points - 1) for i in range(points)]
    return ([(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x1 for t in ts],
            [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y1 for t in ts])


def _return_path(a: dict, b: dict) -> tuple[list, list]:
    """The main path from the end of one row to the joint that starts the next: out to the
    right, back along the gap between the rows, down into the joint."""
    middle = b["row"] + 0.6  # above the next row's skip arcs, below its heading
    out = a["x"] + 0.6
    return [a["x"], out, out, b["x"], b["x"]], [a["y"], a["y"], middle, middle, b["y"]]


def edge_lines(graph: Graph, kind: str, only: set | None = None) -> tuple[list, list]:
    """x and y of every edge of one kind (those of `only`, (source, target) pairs, when given),
    None between edges: straight along a row and to a node off the path, an arc for a skip
    along the path, a return path between rows."""
    xs, ys = [], []
    for src, dst, edge_kind in graph.edges:
        if edge_kind != kind or (only is not None and (src, dst) not in only):
            continue
        a, b = graph.nodes[src], graph.nodes[dst]
        if a["row"] != b["row"]:
            px, py = _return_path(a, b)
        elif kind == "main" or a["y"] != a["row"] or b["y"] != b["row"]:
            px, py = [a["x"], b["x"]], [a["y"], b["y"]]
        else:  # a skip: an arc as high as a block's, lower over a stack's packed blocks
            dx = b["x"] - a["x"]
            px, py = arc(a["x"], a["y"], b["x"], b["y"], ARC_LIFT if dx >= 0.5 else 0.36,
                         9 if dx >= 0.5 else 5)
        xs += px + [None]
        ys += py + [None]
    return xs, ys
