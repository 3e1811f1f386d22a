"""Plotly figures shared by several tabs: training curves and gradient-norm heatmaps."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.core.numbers import magnitude
from explorer.core.specs import result_net

# One palette for the whole app: plain nets red, residual nets blue, on every tab.
PLAIN_COLOR = "#d62728"
RESIDUAL_COLOR = "#1f77b4"
# A second or third net of the same kind on one chart: a darker, then a lighter shade of its color.
SHADES = {False: (PLAIN_COLOR, "#8b1a1a", "#f08080"), True: (RESIDUAL_COLOR, "#0b3c6b", "#6baed6")}
PALETTE = [RESIDUAL_COLOR, PLAIN_COLOR, "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]  # runs of unknown kind


def kind_colors(residual: list) -> list[str]:
    """A color per run: plain red and residual blue (shaded apart when a kind comes again);
    a run whose flag is None (kind unknown) takes its place in the run-order `PALETTE`."""
    seen = {False: 0, True: 0}
    colors = []
    for i, flag in enumerate(residual):
        if flag is None:
            colors.append(PALETTE[i % len(PALETTE)])
            continue
        shades = SHADES[bool(flag)]
        colors.append(shades[seen[bool(flag)] % len(shades)])
        seen[bool(flag)] += 1
    return colors


def is_residual(result: dict) -> bool | None:
    """Whether a lesion or landscape result is a residual net's, from the net it carries (see
    `specs.result_net`); None for a result that carries none (its kind is unknown)."""
    net = result_net(result)
    return None if net is None else net.residual


def log_axis(values, **extra) -> dict:
    """A log axis that reads one way: powers of ten written 10ⁿ (never SI suffixes like "1B, 1T"
    beside 10¹⁵), unlabeled minor ticks between them, and plain numbers ("0.4 ... 0.9", not
    the digits "4 ... 9") where the data span about a decade or less.

    Args:
        values: the numbers the axis shows, or lists of them (those not positive are ignored).
        extra: more axis settings (title, ...).
    """
    flat = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in values] or [np.ones(0)])
    finite = flat[np.isfinite(flat) & (flat > 0)]
    low, high = (np.log10(finite.min()), np.log10(finite.max())) if finite.size else (0.0, 1.0)
    axis = dict(type="log", exponentformat="power", **extra)
    if high - low < 1.3 and -3 <= low and high < 5:
        axis["tickformat"] = ",.2~g"  # every label a number
    else:
        # minor ticks inside: outside, they were drawn over the labels
        axis.update(dtick=max(1, math.ceil((high - low) / 8)), minor=dict(ticks="inside", ticklen=3))
        if math.floor(high) - math.ceil(low) < 1:  # fewer than two powers of ten inside: widen to two
            axis["range"] = [math.floor(low), math.ceil(high)]
    return axis


def training_curves(runs: list[tuple[str, dict]], title: str = "Training", residual: list | None = None
                    ) -> go.Figure:
    """Loss, accuracy (train solid, test dashed) and learning rate per epoch, one color per run.

    Args:
        runs: (label, history) pairs; history as written by `training.train`.
        title: the figure's title.
        residual: one flag per run, True for a residual net and False for a plain one (red and
            blue, as on every chart); None, or None for a run, colors by run order.
    """
    fig = make_subplots(rows=1, cols=3, subplot_titles=("loss", "accuracy", "learning rate"),
                        horizontal_spacing=0.07)
    colors = kind_colors(residual if residual is not None else [None] * len(runs))
    epochs_seen, rates = set(), []
    for (label, history), color in zip(runs, colors):
        series = _curve_series(history)
        for x, _ in series.values():
            epochs_seen.update(x)
        rates += series["learning_rate"][1]
        for key, col, name, dash, legend in (("loss", 1, "train loss", "solid", True),
                                             ("val_loss", 1, "test loss", "dash", True),
                                             ("accuracy", 2, "train acc", "solid", True),
                                             ("val_accuracy", 2, "test acc", "dash", True),
                                             ("learning_rate", 3, "lr", "dot", False)):
            x, y = series[key]
            # per-step points as a line; the per-epoch points (test, or a run without steps) marked
            marked = not history.get("steps", {}).get("step") or key.startswith("val_")
            fig.add_trace(go.Scatter(x=x, y=y, name=f"{label} {name}", legendgroup=label,
                                     mode="lines+markers" if marked else "lines", marker=dict(size=5),
                                     line=dict(color=color, dash=dash), showlegend=legend), 1, col)
    fig.update_xaxes(title_text="epoch")
    if len(epochs_seen) == 1:  # one point: an axis around its epoch, not -0.5 .. 1
        (epoch,) = epochs_seen
        fig.update_xaxes(range=[epoch - 1, epoch + 1], dtick=1)
    elif epochs_seen:  # from the start of training: a curve mid-epoch 1 is not stretched to fill
        fig.update_xaxes(range=[0, max(max(epochs_seen), 1) * 1.02])
    else:  # no point yet: axes from 0 (not Plotly's -1 to 6) and a word on why they are empty
        fig.update_xaxes(range=[0, 1])
        fig.update_yaxes(range=[0, 1], row=1, col=3)
        fig.add_annotation(text="no curve point yet: the first comes with the first steps trained",
                           xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False, font=dict(color="#777"))
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    if rates and max(rates) > 0:
        fig.update_yaxes(range=[0, 1.1 * max(rates)], row=1, col=3)
    # the legend under the epoch axis' title, not over it
    fig.update_layout(title=title, height=380, margin=dict(l=40, r=10, t=60, b=90),
                      legend=dict(orientation="h", y=-0.3, yanchor="top"), template="plotly_white")
    return fig


def _curve_series(history: dict) -> dict:
    """(x in epochs, y) per curve of `training_curves`: the training loss, accuracy and rate
    from the per-step running means where the run logged them (epochs in fractions), else
    per epoch; the test curves per epoch, always."""
    epochs = history.get("epochs", [])
    steps = history.get("steps", {})
    per_epoch = [e["epoch"] for e in epochs]
    series = {key: (per_epoch, [e.get(key) for e in epochs])
              for key in ("loss", "val_loss", "accuracy", "val_accuracy", "learning_rate")}
    if steps.get("step"):
        series.update({key: (steps["epoch"], _stretch_means(steps["epoch"], steps[key]))
                       for key in ("loss", "accuracy")})
        series["learning_rate"] = (steps["epoch"], steps["learning_rate"])
    return series


def _stretch_means(epochs: list, running: list) -> list:
    """Keras logs a running mean that restarts each epoch, which draws a step at every epoch's
    start; the mean of each stretch between two logged points is continuous across epochs:
    (m_k p_k - m_(k-1) p_(k-1)) / (p_k - p_(k-1)), p the fraction of the epoch done."""
    means, before = [], (None, 0.0, 0.0)  # (epoch index, fraction done, running mean)
    for epoch, mean in zip(epochs, running):
        index = math.ceil(epoch) - 1 if epoch > 0 else 0
        done = epoch - index
        if mean is None or not math.isfinite(mean):
            means.append(mean)
            continue
        same = before[0] == index and done > before[1]
        means.append(round((mean * done - before[2] * before[1]) / (done - before[1]), 5) if same else mean)
        before = (index, done, mean)
    return means


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
            # in paper coordinates: the page's Plotly drew "x2 domain" at the first subplot
            suffix = col if col > 1 else ""
            x_domain, y_domain = fig.layout[f"xaxis{suffix}"].domain, fig.layout[f"yaxis{suffix}"].domain
            fig.add_annotation(text="no gradient norms logged yet", showarrow=False, xref="paper",
                               yref="paper", x=sum(x_domain) / 2, y=sum(y_domain) / 2)
            continue
        fig.add_trace(go.Heatmap(
            x=grads["steps"], y=list(range(len(layers))), z=z, zmin=low, zmax=high,
            colorscale="Viridis", showscale=col == len(runs), colorbar=dict(title="log10 ‖g‖"),
            customdata=np.array(layers, dtype=object)[:, None].repeat(len(grads["steps"]), 1),
            hovertemplate="%{customdata}<br>step %{x}<br>log10 norm %{z:.2f}<extra></extra>"),
            1, col)
        if grads["steps"] and max(grads["steps"]) - min(grads["steps"]) < 10:
            fig.update_xaxes(dtick=1, row=1, col=col)  # whole steps: a first column read "0.6 ... 1.4"
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="layer (input → output)", col=1)
    fig.update_layout(title=title, height=380, margin=dict(l=50, r=10, t=70, b=40),
                      template="plotly_white")
    return fig


def training_gradient_reading(runs: list[tuple[str, bool, dict]]) -> str:
    """One Markdown line on a race's gradient heatmaps, from their numbers: the first layer's
    gradient norm, plain against residual, at the first and the last step both runs logged,
    said to be during training (the Gradient-flow chart's numbers are at initialization).

    Args:
        runs: (label, residual, grad_norms) per job; grad_norms as in history.json
            ({"layers", "steps", "norms"}, norms steps x layers, input layer first).

    Returns:
        The line; "" until a plain and a residual run have logged norms at a common step.
    """
    def first_layer(grads: dict) -> dict:  # step -> the first layer's norm
        return {step: row[0] for step, row in zip(grads.get("steps") or [], grads.get("norms") or []) if row}

    plain = next(((label, first_layer(g)) for label, residual, g in runs if not residual), None)
    residual = next(((label, first_layer(g)) for label, is_res, g in runs if is_res), None)
    if plain is None or residual is None or not set(plain[1]) & set(residual[1]):
        return ""
    steps = sorted(set(plain[1]) & set(residual[1]))

    def at(step: int) -> str:
        p, r = plain[1][step], residual[1][step]
        ratio = magnitude(p / r) if r > 0 else "undefined"
        return f"{magnitude(p)} against {magnitude(r)} at step {step:,} (plain/residual {ratio})"

    said = at(steps[0]) + (f", and {at(steps[-1])}" if len(steps) > 1 else "")
    return (f"**During training** (the heatmaps): the first layer's gradient norm of {plain[0]} against "
            f"{residual[0]}: {said}. These norms are measured as training changes the weights, not at "
            "initialization, where the Gradient flow tab's first chart measures how a deep plain net's "
            "early-layer gradients explode.")


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
    for label, values, color in (("plain", plain, PLAIN_COLOR), ("residual", residual, RESIDUAL_COLOR)):
        fig.add_trace(go.Scatter(x=x, y=values, mode="lines+markers", name=label, customdata=names,
                                 line=dict(color=color), marker=dict(size=4),
                                 hovertemplate="%{customdata}<br>%{y:.3g}<extra>" + label + "</extra>"))
    for i, start in enumerate(starts):
        fig.add_vline(x=start - 0.5, line=dict(color="#999", dash="dot"),
                      annotation_text=f"stage {i + 1}", annotation_position="top right")
    # the title in short lines and the legend under the axis: a phone's chart is about 330 px
    # wide, and a one-line title or a legend at the top ran off it and over the stage labels
    fig.update_layout(
        title=dict(text=f"{flow.spec_name}: gradient norm per {'layer' if view == 'kernels' else 'block'}"
                        f"<br><sup>at initialization, plain vs residual:<br>"
                        f"same initial weights, same {flow.batch_size} images</sup>", font=dict(size=15)),
        xaxis_title=("weight layer, input → output" if view == "kernels" else "block, input → output"),
        yaxis=log_axis(list(plain) + list(residual), title=y_title), height=460, template="plotly_white",
        margin=dict(l=60, r=10, t=90, b=90), legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig


def sweep_figure(sweep: dict) -> go.Figure:
    """First-layer and median gradient norm against depth, plain and residual."""
    rows = sweep["rows"]
    depths = [r["depth"] for r in rows]
    fig = go.Figure()
    for key, label, color, dash in (
            ("plain_first", "plain, first layer", PLAIN_COLOR, "solid"),
            ("plain_median", "plain, median layer", PLAIN_COLOR, "dash"),
            ("residual_first", "residual, first layer", RESIDUAL_COLOR, "solid"),
            ("residual_median", "residual, median layer", RESIDUAL_COLOR, "dash")):
        fig.add_trace(go.Scatter(x=depths, y=[r[key] for r in rows], name=label, mode="lines+markers",
                                 line=dict(color=color, dash=dash)))
    title = f"Gradient norm against depth (v{sweep['version']}, at initialization)"
    if sweep.get("data") == "synthetic":  # say so on the chart, as the other views do
        title += "<br><sup>on generated images, not CIFAR-10</sup>"
    fig.update_layout(title=title,
                      xaxis=dict(title="depth", type="log", tickvals=depths,
                                 ticktext=[str(d) for d in depths], exponentformat="power"),
                      yaxis=log_axis([trace.y for trace in fig.data], title="‖∂L/∂W‖"),
                      height=400, template="plotly_white",
                      margin=dict(l=60, r=10, t=60, b=50))
    return fig


def degradation_figure(runs: list[dict]) -> go.Figure:
    """Training error (thin) and test error (bold) against epoch, plain red and residual blue
    (shaded apart by depth): the paper's Figures 1 and 6 from our own runs.

    Args:
        runs: dicts with "label", "residual" and "epochs" (each a dict with epoch, train_error
            and test_error); plain runs are dashed. A run with "repeat" true (a second, longer
            run of a shipped net) starts hidden, one click on its legend entry away: drawn, it
            would stretch the epoch axis and squeeze the pairs the figure is about.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training error", "test error"),
                        horizontal_spacing=0.08)
    for run, color in zip(runs, kind_colors([run["residual"] for run in runs])):
        label, epochs, residual = run["label"], run["epochs"], run["residual"]
        dash = "solid" if residual else "dash"
        visible = "legendonly" if run.get("repeat") else True
        x = [e["epoch"] for e in epochs]
        fig.add_trace(go.Scatter(x=x, y=[e["train_error"] for e in epochs], name=label, legendgroup=label,
                                 visible=visible, line=dict(color=color, dash=dash, width=1.5)), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=[e["test_error"] for e in epochs], name=label, legendgroup=label,
                                 visible=visible, showlegend=False,
                                 line=dict(color=color, dash=dash, width=2.5)), 1, 2)
    if not runs:
        fig.add_annotation(text="no shipped histories yet", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="error", tickformat=".0%", range=[0, 1])
    fig.update_layout(title="Degradation: plain (dashed) against residual (solid)", height=380,
                      template="plotly_white", margin=dict(l=50, r=10, t=60, b=40))
    return fig


def lesion_figure(results: list[dict]) -> go.Figure:
    """Test accuracy with each block deleted, one bar series per checkpoint (plain red, residual
    blue); the dashed lines are the intact nets' accuracies; downsampling blocks are hatched."""
    fig = go.Figure()
    for result, color in zip(results, kind_colors([is_residual(result) for result in results])):
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
    colors = kind_colors([is_residual(result) for result in results])
    for i, (result, z, color) in enumerate(zip(results, planes, colors)):
        fig.add_trace(go.Scatter(x=result["alphas"], y=result["loss_1d"], name=result["model"],
                                 line=dict(color=color)), 1, 1)
        fig.add_trace(go.Contour(x=result["grid"], y=result["grid"], z=z, coloraxis="coloraxis",
                                 contours=dict(coloring="heatmap", **levels), name=result["model"],
                                 showlegend=False), 1, 2 + i)
    fig.update_yaxes(log_axis([v for result in results for v in result["loss_1d"]], title_text="loss"),
                     row=1, col=1)
    fig.update_xaxes(title_text="step along direction 1")
    fig.update_layout(title="Loss landscape along filter-normalized random directions (Li et al. 2018)",
                      coloraxis=dict(colorscale="Viridis", cmin=low, cmax=high,
                                     colorbar=dict(title="log10 loss")),
                      legend=dict(orientation="h", x=0, y=-0.22, xanchor="left", yanchor="top"),
                      height=450, template="plotly_white", margin=dict(l=50, r=10, t=70, b=80))
    return fig
