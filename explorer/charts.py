"""Plotly figures shared by several tabs: training curves and gradient-norm heatmaps."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def training_curves(runs: list[tuple[str, dict]], title: str = "Training") -> go.Figure:
    """Loss, accuracy (train solid, test dashed) and learning rate per epoch, one color per run.

    Args:
        runs: (label, history) pairs; history as written by `training.train`.
    """
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "accuracy", "learning rate"),
                        horizontal_spacing=0.07)
    for i, (label, history) in enumerate(runs):
        epochs = history.get("epochs", [])
        color = PALETTE[i % len(PALETTE)]
        x = [e["epoch"] for e in epochs]
        common = dict(mode="lines+markers", marker=dict(size=5), legendgroup=label)
        fig.add_trace(go.Scatter(x=x, y=[e["loss"] for e in epochs], name=f"{label} train loss",
                                 line=dict(color=color), **common), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=[e["val_loss"] for e in epochs], name=f"{label} test loss",
                                 line=dict(color=color, dash="dash"), **common), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=[e["accuracy"] for e in epochs], name=f"{label} train acc",
                                 line=dict(color=color), **common), 1, 2)
        fig.add_trace(go.Scatter(x=x, y=[e["val_accuracy"] for e in epochs], name=f"{label} test acc",
                                 line=dict(color=color, dash="dash"), **common), 1, 2)
        fig.add_trace(go.Scatter(x=x, y=[e["learning_rate"] for e in epochs], name=f"{label} lr",
                                 line=dict(color=color, dash="dot"), showlegend=False, **common), 1, 3)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_layout(title=title, height=360, margin=dict(l=40, r=10, t=60, b=40),
                      legend=dict(orientation="h", y=-0.25), template="plotly_white")
    return fig


def gradient_heatmaps(runs: list[tuple[str, dict]], title: str = "Per-layer gradient norm") -> go.Figure:
    """One heatmap per run, side by side: layers (input at the bottom) by training steps,
    colored by log10 of the gradient norm on one shared color scale.

    Args:
        runs: (label, grad_norms) pairs; grad_norms as in history.json.
    """
    runs = runs or [("", {})]
    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=[label for label, _ in runs],
                        horizontal_spacing=0.08)
    grids = [np.log10(np.maximum(np.asarray(g.get("norms") or [], dtype=float).T, 1e-12))
             for _, g in runs]
    filled = [z for z in grids if z.size]
    low = min((float(z.min()) for z in filled), default=-3.0)
    high = max((float(z.max()) for z in filled), default=1.0)
    for col, ((label, grads), z) in enumerate(zip(runs, grids), start=1):
        layers = grads.get("layers") or []
        if not z.size:
            fig.add_annotation(text="no gradient norms logged yet", showarrow=False,
                               xref=f"x{col if col > 1 else ''} domain",
                               yref=f"y{col if col > 1 else ''} domain", x=0.5, y=0.5)
            continue
        fig.add_trace(go.Heatmap(
            x=grads["steps"], y=list(range(len(layers))), z=z, zmin=low, zmax=high,
            colorscale="Viridis", showscale=col == len(runs), colorbar=dict(title="log10 ‖g‖"),
            customdata=np.array(layers, dtype=object)[:, None].repeat(len(grads["steps"]), 1),
            hovertemplate="%{customdata}<br>step %{x}<br>log10 norm %{z:.2f}<extra></extra>"),
            1, col)
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="layer (input → output)", col=1)
    fig.update_layout(title=title, height=380, margin=dict(l=50, r=10, t=70, b=40),
                      template="plotly_white")
    return fig


def check_flow_view(view: str) -> str:
    """Returns `view` if `flow_figure` can draw it; raises ValueError otherwise."""
    if view not in ("kernels", "blocks"):
        raise ValueError(f"view must be kernels or blocks, got {view!r}")
    return view


def flow_figure(flow, view: str = "kernels") -> go.Figure:
    """Gradient norm per layer (or per block output), plain against residual, log y axis.

    Args:
        flow: a `probes.FlowResult`.
        view: "kernels" (||dL/dW|| per weight layer) or "blocks" (||dL/d output|| per block).
    """
    if check_flow_view(view) == "kernels":
        names, plain, residual = flow.layers, flow.plain, flow.residual
        y_title = "‖∂L/∂W‖ (kernel)"
        starts = flow.stage_starts
    else:
        names, plain, residual = flow.blocks, flow.plain_blocks, flow.residual_blocks
        y_title = "‖∂L/∂(block output)‖"
        starts = [i for i, n in enumerate(names) if n.endswith("_block1")]
    x = list(range(len(names)))
    fig = go.Figure()
    for label, values, color in (("plain", plain, PALETTE[1]), ("residual", residual, PALETTE[0])):
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines+markers", name=label, customdata=names,
                                 line=dict(color=color), marker=dict(size=4),
                                 hovertemplate="%{customdata}<br>%{y:.3g}<extra>" + label + "</extra>"))
    for i, start in enumerate(starts):
        fig.add_vline(x=start - 0.5, line=dict(color="#999", dash="dot"),
                      annotation_text=f"stage {i + 1}", annotation_position="top right")
    fig.update_layout(
        title=f"{flow.spec_name}: gradient norm per {'layer' if view == 'kernels' else 'block'}, "
              f"plain vs residual (same initial weights, same {flow.batch_size} images)",
        xaxis_title=("weight layer, input → output" if view == "kernels" else "block, input → output"),
        yaxis=dict(type="log", title=y_title), height=420, template="plotly_white",
        margin=dict(l=60, r=10, t=60, b=50), legend=dict(orientation="h", y=1.02, x=1, xanchor="right"))
    return fig


def sweep_figure(sweep: dict) -> go.Figure:
    """First-layer and median gradient norm against depth, plain and residual."""
    rows = sweep["rows"]
    depths = [r["depth"] for r in rows]
    fig = go.Figure()
    for key, label, color, dash in (
            ("plain_first", "plain, first layer", PALETTE[1], "solid"),
            ("plain_median", "plain, median layer", PALETTE[1], "dash"),
            ("residual_first", "residual, first layer", PALETTE[0], "solid"),
            ("residual_median", "residual, median layer", PALETTE[0], "dash")):
        fig.add_trace(go.Scatter(x=depths, y=[r[key] for r in rows], name=label, mode="lines+markers",
                                 line=dict(color=color, dash=dash)))
    title = f"Gradient norm against depth (v{sweep['version']}, at initialization)"
    if sweep.get("data") == "synthetic":  # say so on the chart, as the other views do
        title += "<br><sup>on generated images, not CIFAR-10</sup>"
    fig.update_layout(title=title,
                      xaxis=dict(title="depth", type="log", tickvals=depths),
                      yaxis=dict(type="log", title="‖∂L/∂W‖"), height=400, template="plotly_white",
                      margin=dict(l=60, r=10, t=60, b=50))
    return fig


def degradation_figure(runs: list[dict]) -> go.Figure:
    """Training error (thin) and test error (bold) against epoch, one color per run: the
    paper's Figures 1 and 6 from our own runs.

    Args:
        runs: dicts with "label", "residual" and "epochs" (each a dict with epoch, train_error
            and test_error); plain runs are dashed.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training error", "test error"),
                        horizontal_spacing=0.08)
    for i, run in enumerate(runs):
        label, epochs, residual = run["label"], run["epochs"], run["residual"]
        color = PALETTE[i % len(PALETTE)]
        dash = "solid" if residual else "dash"
        x = [e["epoch"] for e in epochs]
        fig.add_trace(go.Scatter(x=x, y=[e["train_error"] for e in epochs], name=label, legendgroup=label,
                                 line=dict(color=color, dash=dash, width=1.5)), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=[e["test_error"] for e in epochs], name=label, legendgroup=label,
                                 showlegend=False, line=dict(color=color, dash=dash, width=2.5)), 1, 2)
    if not runs:
        fig.add_annotation(text="no shipped histories yet", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="error", tickformat=".0%", range=[0, 1])
    fig.update_layout(title="Degradation: plain (dashed) against residual (solid)", height=380,
                      template="plotly_white", margin=dict(l=50, r=10, t=60, b=40))
    return fig


def lesion_figure(results: list[dict]) -> go.Figure:
    """Test accuracy with each block deleted, one bar series per checkpoint; the dashed
    lines are the intact nets' accuracies; downsampling blocks are marked with a hatch."""
    fig = go.Figure()
    for i, result in enumerate(results):
        color = PALETTE[i % len(PALETTE)]
        accuracy = result["accuracy"]  # None: a plain block that changes shape, marked "n/a"
        fig.add_trace(go.Bar(
            x=result["blocks"], y=[0 if a is None else a for a in accuracy],
            name=f"{result['model']} (intact {result['baseline']:.1%})",
            marker=dict(color=color, pattern_shape=["/" if d else "" for d in result["downsampling"]]),
            text=["n/a" if a is None else "" for a in accuracy], textposition="outside",
            customdata=["cannot be deleted (its shape changes)" if a is None else f"{a:.1%}"
                        for a in accuracy],
            hovertemplate="without %{x}: %{customdata}<extra></extra>"))
        fig.add_hline(y=result["baseline"], line=dict(color=color, dash="dash"))
    fig.update_layout(title="Lesion study: accuracy after deleting one block (hatched: downsampling)",
                      barmode="group", yaxis=dict(title="test accuracy", tickformat=".0%", range=[0, 1]),
                      height=400, template="plotly_white", margin=dict(l=50, r=10, t=60, b=80))
    return fig


def landscape_figure(results: list[dict]) -> go.Figure:
    """1-D slices side by side with a 2-D contour per checkpoint (log10 of the loss), the
    contours on one color scale and the same levels, so their colors compare."""
    fig = make_subplots(rows=1, cols=1 + len(results), horizontal_spacing=0.08,
                        subplot_titles=["1-D slice"] + [f"2-D: {r['model']}" for r in results])
    planes = [np.log10(np.maximum(np.asarray(result["loss_2d"]), 1e-6)) for result in results]
    low, high = min(float(z.min()) for z in planes), max(float(z.max()) for z in planes)
    levels = dict(start=low, end=high, size=max(high - low, 1e-6) / 12)
    for i, (result, z) in enumerate(zip(results, planes)):
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=result["alphas"], y=result["loss_1d"], name=result["model"],
                                 line=dict(color=color)), 1, 1)
        fig.add_trace(go.Contour(x=result["grid"], y=result["grid"], z=z, coloraxis="coloraxis",
                                 contours=dict(coloring="heatmap", **levels), name=result["model"],
                                 showlegend=False), 1, 2 + i)
    fig.update_yaxes(type="log", title_text="loss", row=1, col=1)
    fig.update_xaxes(title_text="step along direction 1")
    fig.update_layout(title="Loss landscape along filter-normalized random directions (Li et al. 2018)",
                      coloraxis=dict(colorscale="Viridis", cmin=low, cmax=high,
                                     colorbar=dict(title="log10 loss")),
                      legend=dict(orientation="h", x=0, y=-0.22, xanchor="left", yanchor="top"),
                      height=450, template="plotly_white", margin=dict(l=50, r=10, t=70, b=80))
    return fig
