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
