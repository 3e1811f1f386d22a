"""The architecture figure in Plotly, from the graphs `graph_layout` places: edges by kind
(the legend), a band per stage headed by its feature-map shape and block count, the boxes of
stacks labelled "x n", the nodes. A `Paint` colours the blocks by a measurement (a colour
bar, the value on hover); a second graph (the twin) is drawn below on the same colour scale.

Every node of a block (a collapsed block, a stacked one, the layers of an expanded one)
carries the block's name as its point's customdata: a page reads it from Plotly's
`plotly_click` to choose the block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from explorer.core.numbers import magnitude
from explorer.views.graph_layout import RIGHT, ROW_GAP, Graph, edge_lines

KIND_COLORS = {
    "conv": "#3b6fb6", "bn": "#9bb7d4", "relu": "#f2b134", "add": "#2e9e5b", "pool": "#8e6cbf",
    "dense": "#c0392b", "pad": "#b07aa1", "stem": "#3b6fb6", "block": "#55606e", "stacked": "#55606e",
    "stage": "#2c3e50", "head": "#c0392b",
}
WEBGL_NODES = 1500  # more nodes than this are drawn with WebGL rather than SVG
EDGE_STYLES = {  # kind: (color, dash, width, legend label)
    "main": ("#7f8c8d", "solid", 2, "main path"),
    "identity": ("#2e9e5b", "solid", 1.5, "identity shortcut"),
    "projection": ("#e67e22", "dash", 2.5, "projection shortcut (1x1 conv)"),
    "zeropad": ("#8e44ad", "dot", 2.5, "zero-pad shortcut (no parameters)"),
}
BAND_COLORS = ("#e3eaf3", "#f3efe6")
UNMEASURED = "#c8c8c8"  # a block the overlay has no value for
PX_PER_Y = 62  # figure height per unit of y
X_RANGE = [-0.8, RIGHT + 1.8]


@dataclass(frozen=True)
class Paint:
    """What colours the blocks of one graph.

    Attributes:
        values: block name -> value (None: not measured for that block, see `missing`).
        label: whose values these are ("ResNet-56 v1, at initialization"); heads a twin.
        quantity: what the values are, the colour bar's title ("‖∂L/∂(block output)‖").
        log: colour by log10 of the value (norms spanning orders of magnitude).
        center: the value the colour scale is centred on (a diverging scale), or None.
        missing: why a block has no value ("a plain block that changes shape cannot be deleted").
        percent: values are fractions, shown as percentages.
        widths: values are shares of the gradient through each block's shortcut (0 to 1): its
            skip arc drawn as wide as the share, its main path as the rest (`edge_width`).
    """

    values: dict = field(default_factory=dict)
    label: str = ""
    quantity: str = ""
    log: bool = True
    center: float | None = None
    missing: str = "not measured"
    percent: bool = False
    widths: bool = False  # values are each block's shortcut share: its lines drawn as wide as their shares

    def text(self, value) -> str:
        """`value` as a tooltip writes it: a percentage, or a number in the app's style."""
        return f"{value:.1%}" if self.percent else magnitude(value)

    def color_value(self, value):
        """The number the colour scale places `value` at (log10 for a log paint), or None."""
        if value is None or not math.isfinite(value) or (self.log and value <= 0):
            return None
        return math.log10(value) if self.log else float(value)


def _color_axis(paints: list[Paint]) -> dict:
    """One colour scale for every painted graph: range, colour bar and its ticks (10ⁿ written
    as numbers on a log paint)."""
    first = paints[0]
    values = [v for p in paints for v in map(p.color_value, p.values.values()) if v is not None] or [0.0]
    low, high = min(values), max(values)
    if first.center is not None:
        middle = first.color_value(first.center) or 0.0
        reach = max(abs(low - middle), abs(high - middle), 0.05 if first.log else 0.01)  # all alike: pale
        low, high = middle - reach, middle + reach
    elif high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    bar = dict(title=dict(text=first.quantity, side="right"), thickness=12, len=0.85)
    if first.log:
        ticks = list(np.linspace(low, high, 5)) if high - low < 2 else \
            list(range(math.ceil(low), math.floor(high) + 1, max(1, math.ceil((high - low) / 6))))
        bar.update(tickvals=ticks, ticktext=[magnitude(10 ** t) for t in ticks])
    else:
        bar.update(tickformat=".1%" if first.percent else ".3~g")
    # a lesion's cost reads as heat (yellow small, red large); Viridis put green-yellow on the
    # largest loss, which reads as good
    scale = "RdBu_r" if first.center is not None else "YlOrRd" if first.percent else "Viridis"
    return dict(colorscale=scale, cmin=low, cmax=high, colorbar=bar)


def _node_traces(graph: Graph, dy: float, paint: Paint | None, scatter) -> list[dict]:
    """Marker traces of a graph's nodes, by kind; blocks coloured by `paint` when given."""
    groups = {}
    for node in graph.nodes:
        if node["kind"] == "joint":
            continue
        key = node["kind"]
        if paint is not None and "block" in node:
            key = (key, paint.color_value(paint.values.get(node["block"])) is not None)
        groups.setdefault(key, []).append(node)
    traces = []
    for key, group in groups.items():
        kind, measured = key if isinstance(key, tuple) else (key, None)
        color, hovers = KIND_COLORS.get(kind, "#555"), [n["hover"] for n in group]
        if measured is not None:
            raw = [paint.values.get(n["block"]) for n in group]
            hovers = [f"{h}<br><b>{paint.quantity}: {paint.text(v) if measured else paint.missing}</b>"
                      for h, v in zip(hovers, raw)]
            color = [paint.color_value(v) for v in raw] if measured else UNMEASURED
        marker = dict(size=[n["size"] for n in group], color=color,
                      opacity=1,  # sizes per node: 0.7 otherwise
                      symbol=[n.get("symbol", "circle") for n in group],
                      line=dict(width=2 if kind == "stacked" else 1,
                                color="#2c3e50" if measured else "white"))
        if measured:
            marker["coloraxis"] = "coloraxis"
        traces.append(scatter(
            x=[n["x"] for n in group], y=[n["y"] + dy for n in group], mode="markers+text",
            name=str(kind), showlegend=False, text=[n["label"] for n in group],
            textposition=[n.get("text_position", "bottom center") for n in group],
            textfont=dict(size=9), hovertext=hovers, hoverinfo="text", marker=marker,
            customdata=[n.get("block", "") for n in group]))
    return traces


def _stack_traces(graph: Graph, dy: float, scatter) -> list[dict]:
    """The boxes around stacks of identical blocks, and their "x n" labels."""
    if not graph.stacks:
        return []
    xs, ys = [], []
    for stack in graph.stacks:
        y0, y1 = stack["y"] + dy - 0.2, stack["y"] + dy + 0.2
        xs += [stack["x0"], stack["x1"], stack["x1"], stack["x0"], stack["x0"], None]
        ys += [y0, y0, y1, y1, y0, None]
    box = scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor="rgba(85,96,110,0.10)",
                  line=dict(color="#55606e", width=1), hoverinfo="skip", showlegend=False, name="stacks")
    labels = scatter(
        x=[(s["x0"] + s["x1"]) / 2 for s in graph.stacks], y=[s["y"] + dy - 0.5 for s in graph.stacks],
        mode="text", text=[f"× {s['count']:,}" for s in graph.stacks],
        textfont=dict(size=11, color="#2c3e50"),
        hovertext=[f"{s['count']:,} identical blocks, {s['first']} to {s['last']}, each with its skip"
                   for s in graph.stacks], hoverinfo="text", showlegend=False, name="stack sizes")
    return [box, labels]


MAX_EDGE_WIDTH = 9.0  # px: a line that carries the whole of a block's gradient


def edge_width(graph: Graph, dst: int, kind: str, width: float, paint: Paint | None) -> float:
    """The width of an edge into node `dst`: its style's, or where `paint` gives line widths
    (`Paint.widths`) and the edge's block has a share, the share of the gradient it carries
    (the skip arc the share, the main path the rest) times `MAX_EDGE_WIDTH`, at least 0.5 px
    so a line never vanishes, rounded to half pixels."""
    block = graph.nodes[dst].get("block")
    share = paint.values.get(block) if paint is not None and paint.widths and block else None
    if share is None:
        return width
    carried = share if kind != "main" else 1 - share
    return max(0.5, round(2 * MAX_EDGE_WIDTH * carried) / 2)


def _panel(parts: dict, graph: Graph, dy: float, paint: Paint | None, heading: str, scatter, seen: set):
    """Draws one graph with its rows shifted by `dy` into `parts` ({"data", "shapes",
    "annotations"}): bands and headings, edges, stacks, nodes."""
    for i, (label, top, bottom) in enumerate(graph.stage_spans):
        parts["shapes"].append(dict(type="rect", x0=X_RANGE[0], x1=X_RANGE[1], y0=bottom + dy - 0.75,
                                    y1=top + dy + 0.95, fillcolor=BAND_COLORS[i % 2], opacity=0.6,
                                    line=dict(width=0), layer="below"))
        parts["annotations"].append(dict(x=X_RANGE[0] + 0.1, y=top + dy + 0.93, text=label, showarrow=False,
                                         xanchor="left", yanchor="top", font=dict(size=11, color="#2c3e50")))
    if heading:
        parts["annotations"].append(dict(x=X_RANGE[1] - 0.1, y=dy + 1.0, text=f"<b>{heading}</b>",
                                         showarrow=False, xanchor="right", yanchor="bottom",
                                         font=dict(size=12)))
    for kind, (color, dash, width, label) in EDGE_STYLES.items():
        # one trace per width (Plotly's line width is a trace's): a few, as widths are rounded
        by_width = {}
        for src, dst, edge_kind in graph.edges:
            if edge_kind == kind:
                by_width.setdefault(edge_width(graph, dst, kind, width, paint), set()).add((src, dst))
        for drawn, edges in sorted(by_width.items()):
            xs, ys = edge_lines(graph, kind, edges)
            parts["data"].append(scatter(
                x=xs, y=[None if y is None else y + dy for y in ys], mode="lines", name=label,
                legendgroup=kind, showlegend=kind not in seen, hoverinfo="skip",
                line=dict(color=color, dash=dash, width=drawn)))
            seen.add(kind)
    parts["data"] += _stack_traces(graph, dy, scatter) + _node_traces(graph, dy, paint, scatter)


def draw(panels: list[tuple[Graph, Paint | None, str]], title: str) -> go.Figure:
    """The figure of one graph or more, each below the last, on one colour scale.

    Args:
        panels: (graph, paint or None, heading) per graph, top to bottom.
        title: the figure's title.
    """
    nodes = sum(len(graph.nodes) for graph, _, _ in panels)
    # SVG for the usual views (a browser allows only a handful of WebGL plots per page);
    # WebGL only past thousands of nodes, where SVG would stall.
    kind = "scattergl" if nodes > WEBGL_NODES else "scatter"

    def scatter(**trace) -> dict:
        return dict(type=kind, **trace)

    parts, dy, seen = {"data": [], "shapes": [], "annotations": []}, 0.0, set()
    for graph, paint, heading in panels:
        _panel(parts, graph, dy, paint, heading, scatter, seen)
        dy += graph.bottom - ROW_GAP - 0.7
    bottom, top = dy + ROW_GAP + 0.7 - 1.0, 1.35 if any(heading for _, _, heading in panels) else 1.0
    paints = [paint for _, paint, _ in panels if paint is not None]
    layout = dict(
        title=dict(text=title), showlegend=True, legend=dict(orientation="h", y=0, yanchor="top"),
        height=int(PX_PER_Y * (top - bottom)) + 110, margin=dict(l=10, r=10, t=60, b=30),
        plot_bgcolor="white", hovermode="closest", hoverlabel=dict(font=dict(size=12)), dragmode="pan",
        shapes=parts["shapes"],
        annotations=parts["annotations"], xaxis=dict(visible=False, range=X_RANGE),
        yaxis=dict(visible=False, range=[bottom, top]), template=pio.templates[pio.templates.default])
    if paints:
        layout["coloraxis"] = _color_axis(paints)
    # built from plain dicts unvalidated: validating every property cost most of the drawing
    # time (the tests check the figure's contents)
    return go.Figure(data=parts["data"], layout=layout, _validate=False)
