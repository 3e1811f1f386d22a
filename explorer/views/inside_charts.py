"""Plotly figures of the Look inside tab: one block's channel maps (x, F(x), x + F(x) and the
ReLU after it, on one colour scale), ‖F(x)‖/‖x‖ and the cosine over the depth, the read-out
accuracy per block (Alain and Bengio's probe curve) and an image's read-out top 3 per block.

Blocks are labelled "stage.block" (2.3 is stage2_block3) so a 27-block net's axis stays
readable on a phone; hovering gives the full name.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from explorer.studies.look_inside import REFINES_COSINE, REFINES_RATIO
from explorer.views.charts import RESIDUAL_COLOR, kind_colors

CHOSEN_COLOR = "#ff7f0e"  # the block chosen, marked on every chart (as on the Architecture graph)
MAP_SCALE = "RdBu_r"  # negative blue, positive red, zero white: one scale, symmetric per block
CLASS_COLORS = qualitative.Set3  # light: the class name printed on each cell stays readable
SHORT_CLASSES = {"automobile": "car", "airplane": "plane"}  # a cell's name fits a phone's narrow column
_LAYOUT = dict(template="plotly_white",
               legend=dict(orientation="h", x=0, y=-0.18, xanchor="left", yanchor="top"))


def short_name(block: str) -> str:
    """"stage2_block3" -> "2.3" (anything else unchanged)."""
    stage, _, number = block.partition("_block")
    return f"{stage.removeprefix('stage')}.{number}" if number and stage.startswith("stage") else block


def _rows(record: dict, residual: bool) -> list[tuple[str, str]]:
    """The tensors a block's maps show, top to bottom: (key in the maps, label)."""
    maps = record["maps"]
    rows = [("x", maps["x_is"]), ("branch", "F(x)")]
    if maps.get("sum") is not None:
        rows.append(("sum", "x + F(x)"))
    if maps.get("relu") is not None:
        rows.append(("relu", "ReLU(x + F(x))" if residual else "ReLU(F(x))"))
    return rows


def chosen_record(result: dict) -> dict | None:
    """The block of an `inside` result that carries maps, or None."""
    return next((b for b in result["blocks"] if "maps" in b), None)


def _grid(rows: list[str], titles: list[str], count: int) -> dict:
    """The layout of a grid of square maps: `len(rows)` rows of `count`, each titled, each row
    labelled on its first map. Laid out here, not by `make_subplots`, whose per-axis updates
    took ten times as long (0.13 s against 0.01 s for 16 maps): a request draws two."""
    across, down = 0.02, 0.07  # the gaps between maps, in fractions of the figure
    width, height = (1 - across * (count - 1)) / count, (1 - down * (len(rows) - 1)) / len(rows)
    layout, notes = {}, []
    for i, label in enumerate(rows):
        for j in range(count):
            axis = i * count + j + 1
            suffix = "" if axis == 1 else str(axis)
            left, top = j * (width + across), 1 - i * (height + down)
            hidden = dict(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
            layout[f"xaxis{suffix}"] = dict(hidden, domain=[left, min(left + width, 1)], anchor=f"y{suffix}")
            # square maps, the image's rows downwards
            layout[f"yaxis{suffix}"] = dict(hidden, domain=[max(top - height, 0), top], anchor=f"x{suffix}",
                                            scaleanchor=f"x{suffix}", autorange="reversed",
                                            title=dict(text=label, font=dict(size=11)) if j == 0 else None)
            notes.append(dict(text=titles[axis - 1], x=left + width / 2, y=top, xref="paper", yref="paper",
                              showarrow=False, yanchor="bottom", font=dict(size=10)))
    return {**layout, "annotations": notes}


def maps_figure(result: dict) -> go.Figure | None:
    """One block's channel maps from an `inside.inside` result: a row per tensor (x, F(x),
    x + F(x), the ReLU after it), a column per channel (the block's most energetic), all on
    one symmetric colour scale. None when the result maps no block."""
    record = chosen_record(result)
    if record is None:
        return None
    maps, rows = record["maps"], _rows(record, result["residual"])
    count = len(maps["channels"])
    titles = [f"ch {(maps['x_channels'] if key == 'x' else maps['channels'])[j]}"
              for key, _ in rows for j in range(count)]
    traces = []
    for i, (key, label) in enumerate(rows):
        for j in range(count):
            axis = i * count + j + 1
            suffix = "" if axis == 1 else str(axis)
            values = np.round(np.asarray(maps[key][j], dtype=float), 4)
            traces.append(go.Heatmap(z=values, coloraxis="coloraxis", name=label, xaxis=f"x{suffix}",
                                     yaxis=f"y{suffix}",
                                     hovertemplate=f"{label}, {titles[axis - 1]}<br>"
                                                   "row %{y}, col %{x}: %{z:.3g}<extra></extra>"))
    scale = max(float(maps["scale"]), 1e-12)
    return go.Figure(data=traces, layout=dict(
        _grid([label for _, label in rows], titles, count),
        title=dict(text=f"{result['model']}, {record['block']}:<br><sup>the {count} channels with the most "
                        f"energy, one colour scale (±{scale:.3g})</sup>", font=dict(size=14)),
        coloraxis=dict(colorscale=MAP_SCALE, cmin=-scale, cmax=scale, cmid=0,
                       colorbar=dict(thickness=12, len=0.9)),
        height=100 + 120 * len(rows), margin=dict(l=50, r=10, t=90, b=10), template="plotly_white"))


def _mark(fig, labels: list[str], block: str | None, rows: int) -> None:
    """The chosen block shaded on every panel; dotted lines where a stage begins."""
    for row in range(1, rows + 1):
        for i in range(1, len(labels)):
            if labels[i].split(".")[0] != labels[i - 1].split(".")[0]:
                fig.add_vline(x=i - 0.5, line=dict(color="#999", dash="dot", width=1), row=row, col=1)
        if block is not None and short_name(block) in labels:
            at = labels.index(short_name(block))
            fig.add_vrect(x0=at - 0.45, x1=at + 0.45, fillcolor=CHOSEN_COLOR, opacity=0.18, line_width=0,
                          row=row, col=1)


def depth_figure(result: dict, block: str | None = None) -> go.Figure | None:
    """‖F(x)‖/‖x‖ and the cosine between x and x + F(x) per block of a residual net's `inside`
    result (dotted: where a block counts as refining, `look_inside.REFINES_*`); None for a
    plain net, which has neither."""
    blocks = [b for b in result["blocks"] if b["branch_ratio"] is not None]
    if not blocks:
        return None
    labels = [short_name(b["block"]) for b in result["blocks"]]
    names = [b["block"] for b in result["blocks"]]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.16, subplot_titles=(
        f"‖F(x)‖ / ‖x‖ (dotted: {REFINES_RATIO})", f"cos(x, x + F(x)) (dotted: {REFINES_COSINE})"))
    for row, key in enumerate(("branch_ratio", "cosine"), start=1):
        fig.add_trace(go.Scatter(x=labels, y=[b[key] for b in result["blocks"]], customdata=names,
                                 mode="lines+markers", line=dict(color=RESIDUAL_COLOR), showlegend=False,
                                 name=key, hovertemplate="%{customdata}: %{y:.3f}<extra></extra>"), row, 1)
    fig.add_hline(y=REFINES_RATIO, line=dict(color="#777", dash="dot"), row=1, col=1)
    fig.add_hline(y=REFINES_COSINE, line=dict(color="#777", dash="dot"), row=2, col=1)
    _mark(fig, labels, block, 2)
    fig.update_xaxes(type="category", tickangle=0, tickfont=dict(size=9))
    fig.update_xaxes(title_text="block (stage.block)", row=2, col=1)
    fig.update_annotations(font_size=12)
    fig.update_layout(title=dict(text=f"{result['model']}, this image:<br><sup>what each block adds</sup>",
                                 font=dict(size=14)),
                      height=440, margin=dict(l=50, r=10, t=85, b=50), **_LAYOUT)
    return fig


def readout_figure(results: list[dict], block: str | None = None) -> go.Figure:
    """Read-out accuracy per block, one line per net (residual blue, plain red), each net's own
    accuracy on the same test images dashed in its colour (Alain and Bengio's probe curve)."""
    fig = make_subplots(rows=1, cols=1)
    colors = kind_colors([(r.get("net") or {}).get("residual") for r in results])
    labels = [short_name(name) for name in results[0]["blocks"]] if results else []
    for result, color in zip(results, colors):
        x = [short_name(name) for name in result["blocks"]]
        fig.add_trace(go.Scatter(x=x, y=result["accuracy"], customdata=result["blocks"], mode="lines+markers",
                                 name=f"{result['model']}: read-out", line=dict(color=color),
                                 hovertemplate="%{customdata}: %{y:.1%}<extra></extra>"))
        fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[result["model_accuracy"]] * 2, mode="lines",
                                 name=f"{result['model']} itself ({result['model_accuracy']:.1%})",
                                 line=dict(color=color, dash="dash"), hoverinfo="skip"))
    _mark(fig, labels, block, 1)
    n = results[0]["test_images"] if results else 0
    fig.update_xaxes(type="category", tickfont=dict(size=9), title_text="block (stage.block)")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", title_text="test accuracy")
    fig.update_layout(title=dict(text="Linear read-out of each block<br><sup>Alain and Bengio 2016; "
                                      f"{n:,} test images; dashed: the net itself</sup>", font=dict(size=14)),
                      height=440, margin=dict(l=60, r=10, t=75, b=50), **_LAYOUT)
    return fig


def tops_figure(results: list[dict]) -> go.Figure:
    """An image's read-out top 3 per block, a column of blocks per net (input at the top), each
    cell coloured by its class and labelled with the class and the probe's score."""
    fig = make_subplots(rows=1, cols=len(results), subplot_titles=[r["model"] for r in results],
                        horizontal_spacing=0.12)
    for col, result in enumerate(results, start=1):
        classes = list(result["classes"])
        tops = [top or [] for top in result["tops"]]
        z = [[classes.index(t["class"]) if t["class"] in classes else None for t in top] for top in tops]
        text = [[SHORT_CLASSES.get(t["class"], t["class"][:6]) for t in top] for top in tops]
        scores = [[f"{t['class']}, score {t['score']:.2f}" for t in top] for top in tops]
        width = max((len(top) for top in tops), default=0)
        count = len(classes)
        scale = [[edge, CLASS_COLORS[i % len(CLASS_COLORS)]] for i in range(count)
                 for edge in (i / count, (i + 1) / count)]
        fig.add_trace(go.Heatmap(
            z=z, text=text, texttemplate="%{text}", textfont=dict(size=10), zmin=-0.5, zmax=count - 0.5,
            hovertext=scores,
            x=["1st", "2nd", "3rd"][:width], y=[short_name(name) for name in result["blocks"]],
            colorscale=scale, showscale=False, xgap=1, ygap=1,
            customdata=[[name] * width for name in result["blocks"]],
            hovertemplate="%{customdata}, %{x}: %{hovertext}<extra></extra>"), 1, col)
        fig.update_yaxes(type="category", autorange="reversed", tickfont=dict(size=9), row=1, col=col)
    fig.update_xaxes(side="top")
    fig.update_annotations(yshift=24)  # the nets' names above the 1st/2nd/3rd heads
    rows = max((len(r["blocks"]) for r in results), default=1)
    fig.update_layout(title=dict(text="What each block's read-out reads<br><sup>in this image: its top 3 "
                                      "classes (hover: the probe's score)</sup>", font=dict(size=14)),
                      height=145 + 22 * rows, margin=dict(l=40, r=10, t=130, b=10), template="plotly_white")
    return fig
