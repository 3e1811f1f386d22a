"""The playground's figures (issue #34): each twin's decision boundary over the plane with the
points, the loss curves of both, the per-block gradient norms as a strip, the depth sweep's
final training loss against depth, and the line of text beside them. Plain red and residual
blue, as on every chart (`charts.PLAIN_COLOR`, `RESIDUAL_COLOR`); the two classes of points
orange and purple, colours no net has.

The figures are drawn twice a second while the twins train, from a snapshot
(`compute.playground_task.expand`): small (a 64 x 64 grid a net, sent as typed arrays) and
with a fixed `uirevision`, so a zoom survives the redraws.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import plotly.graph_objects as go

from explorer.core.playground_settings import PlaygroundSettings
from explorer.data.points import GRID_EXTENT, grid_axis, make_points
from explorer.views.charts import PLAIN_COLOR, RESIDUAL_COLOR

NETS = (("residual", "Residual net", RESIDUAL_COLOR), ("plain", "Plain net", PLAIN_COLOR))
CLASS_COLORS = ("#e66101", "#5e3c99")  # class 0 orange, class 1 purple: the points
# the boundary's background: pale orange where the net says class 0, pale purple for class 1
BOUNDARY_SCALE = [[0.0, "#fdb863"], [0.5, "#f7f7f7"], [1.0, "#b2abd2"]]
CHANCE_LOSS = math.log(2)  # the logistic loss of a net that says 0.5 everywhere (balanced classes)


@functools.lru_cache(maxsize=32)
def points_of(settings: PlaygroundSettings):
    """The settings' points (`data.points.make_points`: NumPy only, the worker's own)."""
    return make_points(settings.data, settings.points, settings.noise, settings.train_fraction, settings.seed)


def _number(value) -> str:
    if value is None or not math.isfinite(value):
        return "NaN"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"  # a fitted net's loss: 2.4e-05, not 0.000


# plotly_white's look in the few settings these figures use: the whole template (7 KB) would go
# with every figure of every redraw
# (no automargin: its extra layout passes were a third of Plotly's time a redraw, in a profile here)
_AXIS = dict(gridcolor="#EBF0F8", linecolor="#EBF0F8", zerolinecolor="#EBF0F8")
_LIGHT = dict(layout=dict(paper_bgcolor="white", plot_bgcolor="white", font=dict(color="#2a3f5f"),
                          title=dict(x=0.05), hovermode="closest", xaxis=_AXIS, yaxis=_AXIS))


def _figure(data: list, layout: dict) -> go.Figure:
    """A live figure from plain dicts, left unvalidated: drawn twice a second, and Plotly's
    validation of every property cost ten times the rest (67 against 7 ms for the pair's
    boundaries and points, measured here); the tests check what these figures hold."""
    layout = {"template": _LIGHT, "uirevision": "playground", **layout}
    return go.Figure(data=data, layout=layout, _validate=False)


@functools.lru_cache(maxsize=32)
def _point_traces(settings: PlaygroundSettings) -> tuple:
    """The points of both panels, training points filled and test points open (the same on
    every redraw of the settings)."""
    points = points_of(settings)
    traces = []
    for col, axes in enumerate((("x", "y"), ("x2", "y2")), start=1):
        for split, xy, labels in (("train", points.x_train, points.y_train),
                                  ("test", points.x_test, points.y_test)):
            for label in (0, 1):
                chosen = xy[labels == label]
                color = CLASS_COLORS[label]
                marker = (dict(size=5, color=color) if split == "train"
                          else dict(size=6, color="rgba(0,0,0,0)", line=dict(color=color, width=1.2)))
                traces.append(dict(type="scatter", x=chosen[:, 0], y=chosen[:, 1], mode="markers",
                                   marker=marker, name=f"class {label}, {split}", showlegend=False,
                                   hoverinfo="skip", xaxis=axes[0], yaxis=axes[1]))
    return tuple(traces)


def _percent(boundary) -> np.ndarray:
    """A boundary's probabilities in whole percent, uint8: a quarter of float32's bytes to send,
    parse and copy at every redraw."""
    return np.rint(np.clip(boundary, 0, 1) * 100).astype(np.uint8)


def boundary_figure(settings: PlaygroundSettings, snapshot: dict | None) -> go.Figure:
    """Each twin's decision boundary (its probability of class 1 over the grid, in whole percent:
    white at 50) with the training points (filled) and the test points (open), side by side,
    the residual net first. No contour line: it was a third of the page's drawing time (126 of 386 ms in a
    busy Chromium here), which a redraw twice a second cannot spare.

    Args:
        settings: the points' settings.
        snapshot: an expanded snapshot, or None before the first (the points alone).
    """
    axis, extent = grid_axis(), [-GRID_EXTENT, GRID_EXTENT]
    data, layout = [], {}
    for col, ((net, label, color), domain) in enumerate(zip(NETS, ([0, 0.47], [0.53, 1])), start=1):
        x, y = ("x", "y") if col == 1 else ("x2", "y2")
        values = snapshot.get(net) if snapshot else None
        if values is not None:
            # zsmooth "fast": the browser scales a 64 x 64 image, smooth and the cheapest to draw
            data.append(dict(type="heatmap", x=axis, y=axis, z=_percent(values["boundary"]), zmin=0,
                             zmax=100, name=net, colorscale=BOUNDARY_SCALE, showscale=False, zsmooth="fast",
                             xaxis=x, yaxis=y,
                             hovertemplate="x %{x:.2f}, y %{y:.2f}<br>P(class 1) %{z}%<extra></extra>"))
        plain_axis = dict(range=extent, constrain="domain", showgrid=False, zeroline=False)
        layout["xaxis" if col == 1 else "xaxis2"] = dict(plain_axis, domain=domain, anchor=y)
        # square panels; on a narrow screen they shrink to the top, under their titles
        layout["yaxis" if col == 1 else "yaxis2"] = dict(plain_axis, anchor=x, scaleanchor=x, scaleratio=1,
                                                         constraintoward="top")
        # short titles: two panels side by side on a phone leave each about 170 px (the numbers
        # are in the status line and the loss chart)
        layout.setdefault("annotations", []).append(dict(
            text=label, x=sum(domain) / 2, y=1.0, xref="paper", yref="paper", xanchor="center",
            yanchor="bottom", showarrow=False, font=dict(color=color, size=16)))
    # no legend: it took two lines of a phone's screen; the page's caption says what the marks are
    return _figure(data + list(_point_traces(settings)), dict(
        layout, title=dict(text=boundary_title(settings, snapshot), font=dict(size=15)),
        height=400, margin=dict(l=30, r=10, t=70, b=30)))


def boundary_title(settings: PlaygroundSettings, snapshot: dict | None) -> str:
    """The boundaries' title: the data, the blocks and the step drawn."""
    step = f"step {snapshot['step']:,}" if snapshot else "press Start"
    return f"{settings.data}, {settings.blocks} blocks ({step})"


def boundary_update(settings: PlaygroundSettings, snapshot: dict) -> dict:
    """What changes in `boundary_figure` from one snapshot to the next of the same settings:
    its title and each twin's boundary (whole percent, the residual net first, the order of
    its heatmaps). The page applies it to the figure on screen with `Plotly.update`, a
    fraction of the browser's time of drawing the whole figure again.

    Returns:
        {"title": str, "z": [residual rows, plain rows]} (nested lists of ints, JSON-ready).
    """
    z = [_percent(snapshot[net]["boundary"]).tolist() for net, _, _ in NETS if snapshot.get(net) is not None]
    return {"title": boundary_title(settings, snapshot), "z": z}


def loss_figure(history: dict) -> go.Figure:
    """The training loss (solid) and test loss (dashed) of both twins against the step, with
    the loss of a net that has learned nothing (ln 2) dotted.

    Args:
        history: {"step": [...], "residual"/"plain": {"train_loss": [...], "test_loss": [...]}}.
    """
    steps = history.get("step", [])
    data, values = [], []
    for net, label, color in NETS:
        for name, dash in (("train_loss", "solid"), ("test_loss", "dash")):
            y = [v if v is not None and math.isfinite(v) else None
                 for v in history.get(net, {}).get(name, [])]
            values += [v for v in y if v is not None]
            data.append(dict(type="scatter", x=steps, y=y, mode="lines", line=dict(color=color, dash=dash),
                             name=f"{label.split()[0].lower()}, {name.split('_')[0]}"))
    chance = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=CHANCE_LOSS, y1=CHANCE_LOSS,
                  line=dict(color="#888", dash="dot", width=1))
    note = dict(text="ln 2: nothing learned", xref="paper", x=0, xanchor="left", yref="y", y=CHANCE_LOSS,
                yanchor="bottom", showarrow=False, font=dict(size=11, color="#666"))
    # linear from 0: a net at ln 2 and one near 0 read at a glance (a diverged net's NaN is left out)
    return _figure(data, dict(
        title=dict(text="Loss: train (solid) and test (dashed)"), height=350,
        margin=dict(l=50, r=10, t=50, b=110),
        xaxis=dict(title=dict(text="training step", standoff=4), rangemode="tozero"),
        yaxis=dict(title=dict(text="loss (whole split)"), range=[0, 1.1 * max(values + [CHANCE_LOSS])]),
        shapes=[chance] if steps else [], annotations=[note] if steps else [],
        legend=dict(orientation="h", y=-0.42, yanchor="top")))


def gradient_strip(snapshot: dict | None) -> go.Figure:
    """The norm of each block's gradient, mean over the steps since the last snapshot, one row
    a twin, coloured by log10 on a scale whole decades wide: the strip moves as it trains.

    Args:
        snapshot: an expanded snapshot, or None.
    """
    rows = [(label, snapshot[net]["gradient_norms"]) for net, label, _ in reversed(NETS)
            if snapshot and net in snapshot and snapshot[net]["gradient_norms"] is not None]
    step = f" (step {snapshot['step']:,})" if snapshot else ""
    layout = dict(title=dict(text=f"Gradient norm per block{step}"), height=230,
                  margin=dict(l=90, r=10, t=50, b=40))
    if not rows:
        return _figure([], dict(layout, xaxis=dict(visible=False), yaxis=dict(visible=False), annotations=[
            dict(text="no step trained yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)]))
    z = np.log10(np.maximum(np.stack([norms for _, norms in rows]).astype(float), 1e-12))
    finite = z[np.isfinite(z)]
    low, high = (math.floor(finite.min()), math.ceil(finite.max())) if finite.size else (-3, 1)
    heatmap = dict(type="heatmap", x=list(range(1, z.shape[1] + 1)), y=[label for label, _ in rows], z=z,
                   zmin=low, zmax=max(high, low + 1), colorscale="Viridis",
                   colorbar=dict(title=dict(text="log10 ‖g‖"), thickness=12),
                   hovertemplate="%{y}, block %{x}<br>log10 norm %{z:.2f}<extra></extra>")
    return _figure([heatmap], dict(layout, xaxis=dict(title=dict(text="block (input → output)"))))


def sweep_figure(result: dict) -> go.Figure:
    """Final training loss against depth, plain and residual (He et al.'s figure 1 on points),
    depths on a log axis; the loss of a net that learned nothing (ln 2) dotted.

    Args:
        result: a `studies.playground_sweep.depth_sweep` result.
    """
    fig = go.Figure()
    for net, label, color in reversed(NETS):
        rows = sorted((row for row in result["rows"] if row["net"] == net), key=lambda row: row["blocks"])
        fig.add_trace(go.Scatter(
            x=[row["blocks"] for row in rows],
            y=[row["train_loss"] if math.isfinite(row["train_loss"]) else None for row in rows],
            customdata=[[row["train_accuracy"], row["test_loss"]] for row in rows],
            mode="lines+markers", marker=dict(size=8), line=dict(color=color), name=label,
            hovertemplate=label + ", %{x} blocks<br>train loss %{y:.3f} (accuracy %{customdata[0]:.1%})"
                                  "<br>test loss %{customdata[1]:.3f}<extra></extra>"))
    fig.add_hline(y=CHANCE_LOSS, line=dict(color="#888", dash="dot", width=1),
                  annotation_text="ln 2: nothing learned", annotation_position="bottom right")
    settings = result["settings"]
    fig.update_xaxes(type="log", tickvals=result["depths"], ticktext=[str(d) for d in result["depths"]],
                     title_text="blocks per net")
    fig.update_yaxes(title_text="final training loss", rangemode="tozero")
    fig.update_layout(title=f"Depth sweep: {settings['data']}, width {settings['width']}, "
                            f"{result['steps']} steps a depth", height=360,
                      margin=dict(l=50, r=10, t=50, b=40),
                      legend=dict(orientation="h", y=-0.2, yanchor="top"), template="plotly_white")
    return fig


def status_text(view: dict) -> str:
    """The line above the charts: the state, the step, the speed, each twin's numbers."""
    snapshot, state = view["snapshot"], view["state"]
    said = {"idle": "press Start", "starting": "starting", "training": "training", "paused": "paused",
            "failed": "failed"}.get(state, state)
    if state == "paused" and view.get("ended") == "time limit":
        said = "paused (a run trains two minutes at most: Start goes on)"
    parts = [f"**Step {snapshot['step']:,}**" if snapshot else "**No step yet**", said]
    if snapshot and snapshot["steps_per_s"]:
        parts.append(f"{snapshot['steps_per_s']:.0f} pair steps/s")
    if view.get("note"):
        parts.append(view["note"])
    text = " · ".join(parts)
    if view.get("error"):
        text += f"\n\n{view['error']}"
    for net, label, _ in NETS:
        values = snapshot.get(net) if snapshot else None
        if values is not None:
            text += (f"\n\n{label}: training loss {_number(values['train_loss'])} (accuracy "
                     f"{values['train_accuracy']:.0%}), test loss {_number(values['test_loss'])} "
                     f"(accuracy {values['test_accuracy']:.0%})")
    return text

