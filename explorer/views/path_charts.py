"""Plotly figures of the paths-and-signals studies: path lengths (Veit et al. 2016), signal
propagation plots (Brock et al. 2021) and shattered gradients (Balduzzi et al. 2017), in the
app's palette (plain red, residual blue) with its log axes (see `charts`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.studies.paths import held_share, path_fit
from explorer.views.charts import RESIDUAL_COLOR, kind_colors, log_axis

# Panels sit one under another (or two beside a wide one), titles in short lines: a phone's
# chart is about 330 px wide, where three panels side by side ran their titles into each other
_LAYOUT = dict(template="plotly_white",
               legend=dict(orientation="h", x=0, y=-0.08, xanchor="left", yanchor="top"))
_DASHES = ("solid", "dash", "dot", "dashdot")
_PANEL_TITLE_SIZE = 13


def _small_panel_titles(fig: go.Figure) -> None:
    """The subplot titles (layout annotations made by `make_subplots`) at a size that fits."""
    for annotation in fig.layout.annotations:
        annotation.font = dict(size=_PANEL_TITLE_SIZE)


def paths_figure(result: dict) -> go.Figure:
    """Veit et al.'s Figure 6 from a `paths.path_lengths` result: how many paths each length
    has, the gradient one path of that length carries (log axis), and their product, the total
    gradient per length. The measured points are markers; the line through the log of the
    gradient per path (`paths.path_fit`) and the total it gives are lines, and the effective
    range of that fitted total (the shortest range holding `share` of it) is shaded: one
    noisy length at a small sample makes a spike of the measured total, not of the line."""
    lengths = result["lengths"]
    fit = path_fit(result)
    lo, hi = (fit or result)["effective_range"]
    shaded = held_share(result, fitted=fit is not None)
    # the two factors side by side, their product (the headline) under them, full width
    fig = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], horizontal_spacing=0.14,
                        vertical_spacing=0.2, subplot_titles=(
                            "paths of each length", "‖∂L/∂x‖ per path",
                            f"total gradient per length: {shaded:.0%} in {lo}-{hi}"))
    cells = ((1, 1), (1, 2), (2, 1))
    common = dict(x=lengths, marker=dict(size=5, color=RESIDUAL_COLOR), line=dict(color=RESIDUAL_COLOR),
                  showlegend=False)
    fig.add_trace(go.Scatter(y=[float(c) for c in result["path_counts"]], name="paths", mode="lines+markers",
                             hovertemplate="%{y:.3g} paths of %{x} branches<extra></extra>", **common),
                  *cells[0])
    measured_hover, line_hover = ("length %{x}: %{y:.3g} measured<extra></extra>",
                                  "length %{x}: %{y:.3g} by the line<extra></extra>")
    for col, name, measured in ((2, "gradient per path", "gradient_per_path"), (3, "total", "total")):
        fig.add_trace(go.Scatter(y=result[measured], name=f"{name}, measured",
                                 mode="markers" if fit else "lines+markers", hovertemplate=measured_hover,
                                 **common), *cells[col - 1])
        if fit:
            fig.add_trace(go.Scatter(y=fit["gradient" if col == 2 else "total"], name=f"{name}, line",
                                     mode="lines", hovertemplate=line_hover,
                                     **{**common, "line": dict(color=RESIDUAL_COLOR, dash="dash")}),
                          *cells[col - 1])
    for row, col in cells:
        fig.add_vrect(x0=lo - 0.5, x1=hi + 0.5, fillcolor=RESIDUAL_COLOR, opacity=0.12, line_width=0,
                      row=row, col=col)
    fig.update_xaxes(title_text="path length")
    fig.update_xaxes(title_text="path length (branches passed)", row=2, col=1)
    fig.update_yaxes(log_axis([result["gradient_per_path"], fit["gradient"] if fit else []]), row=1, col=2)
    _small_panel_titles(fig)
    moment = "" if result.get("at_init") else " (trained)"
    fig.update_layout(title=dict(text=f"{result['model']}{moment}:<br>which path lengths carry the gradient"
                                      f"<br><sup>Veit et al. 2016, {result['blocks']} blocks</sup>",
                                 font=dict(size=15)),
                      height=650, margin=dict(l=50, r=10, t=118, b=50), **_LAYOUT)
    return fig


def _value_axis(values) -> dict:
    """`charts.log_axis` where the values span more than a factor of 3; else a linear axis, whose
    labels tell 0.98 from 1.02 (a log axis over so narrow a span labels every tick "1")."""
    flat = np.asarray([v for series in values for v in series], dtype=float)
    flat = flat[np.isfinite(flat) & (flat > 0)]
    if flat.size and flat.max() > 3 * flat.min():
        return log_axis(values)
    return dict(type="linear", tickformat=".4~g")


def _stage_lines(fig, result: dict, rows: int) -> None:
    """A dotted line before each stage's first block, on every panel (one a row)."""
    stages = result["stages"]
    for i in range(1, len(stages)):
        if stages[i] != stages[i - 1]:
            for row in range(1, rows + 1):
                fig.add_vline(x=i + 0.5, line=dict(color="#999", dash="dot"), row=row, col=1)


def signals_figure(results: list[dict]) -> go.Figure:
    """Signal propagation plots (Brock et al. 2021) from `signals.signal_propagation` results:
    per block, the average squared channel mean, the average channel variance and the
    residual branch's variance, log axes (where they span more than a factor of 3), one color per
    net (plain red, residual blue), dotted lines at the stage transitions."""
    keys = (("mean_sq", "average squared channel mean"), ("variance", "average channel variance"),
            ("branch_variance", "residual branch variance"))
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[title for _, title in keys])
    for result, color in zip(results, kind_colors([r["residual"] for r in results])):
        x = list(range(1, len(result["blocks"]) + 1))
        for col, (key, _) in enumerate(keys, start=1):
            if key == "branch_variance" and not result["residual"]:
                continue  # a plain net has no residual branch beside its signal
            fig.add_trace(go.Scatter(
                x=x, y=result[key], name=result["model"], legendgroup=result["model"], showlegend=col == 1,
                mode="lines+markers", marker=dict(size=4), line=dict(color=color),
                customdata=result["blocks"],
                hovertemplate="%{customdata}: %{y:.3g}<extra>" + result["model"] + "</extra>"), col, 1)
    for col, (key, _) in enumerate(keys, start=1):
        fig.update_yaxes(_value_axis([r[key] for r in results]), row=col, col=1)
    if results:
        _stage_lines(fig, results[0], len(keys))
    fig.update_xaxes(title_text="block, input → output", row=3, col=1)
    _small_panel_titles(fig)
    fig.update_layout(title=dict(text="Signal propagation per block, at the add<br>"
                                      "<sup>Brock, De and Smith 2021</sup>", font=dict(size=15)),
                      height=720, margin=dict(l=50, r=10, t=80, b=50), **_LAYOUT)
    return fig


def shattered_figure(result: dict) -> go.Figure:
    """Shattered gradients (Balduzzi et al. 2017) from a `shattered.shattered` result: the
    derivative along the line for the deepest plain and residual pair (each scaled to unit
    spread), and the autocorrelation against lag for every net."""
    nets = result["nets"]
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.2, subplot_titles=(
        "gradient along the line (deepest pair, scaled)", "autocorrelation of the gradient"))
    depths = sorted({net["depth"] for net in nets})
    colors = kind_colors([net["residual"] for net in nets])
    for net, color in zip(nets, colors):
        dash = _DASHES[depths.index(net["depth"]) % len(_DASHES)]
        if net["depth"] == depths[-1]:
            g = np.asarray(net["gradient"], dtype=float)
            scaled = (g - g.mean()) / (g.std() or 1.0)
            fig.add_trace(go.Scatter(x=np.linspace(0, 1, len(g)), y=scaled, name=net["model"],
                                     legendgroup=net["model"], showlegend=False, mode="lines",
                                     line=dict(color=color, width=1)), 1, 1)
        fig.add_trace(go.Scatter(x=result["lags"], y=net["autocorrelation"], name=net["model"],
                                 legendgroup=net["model"], mode="lines",
                                 line=dict(color=color, dash=dash)), 2, 1)
    fig.update_xaxes(title_text="t along the line", row=1, col=1)
    fig.update_xaxes(title_text="lag (points)", row=2, col=1)
    low = min([-0.5] + [min(net["autocorrelation"]) for net in nets])
    fig.update_yaxes(range=[low - 0.02, 1.02], row=2, col=1)
    _small_panel_titles(fig)
    fig.update_layout(title=dict(text="Shattered gradients at initialization<br><sup>Balduzzi et al. 2017, "
                                      f"{result['points']} points<br>between two test images</sup>",
                                 font=dict(size=15)),
                      height=650, margin=dict(l=50, r=10, t=115, b=50), **_LAYOUT)
    return fig
