"""The Architecture tab: a ResNet as an interactive graph (the whole net on one screen), its
plain twin, a per-stage table, the real Keras model to download; measurements drawn on the
graph (overlays) and one block chosen, its numbers and its deletion."""

from __future__ import annotations

import json
import os

import gradio as gr
from gradio.components.plot import PlotData

from explorer import deletion, graph, overlays
from explorer.data import resolve_source
from explorer.graph_figure import MODEBAR, PNG_OPTIONS
from explorer.plans import plan
from explorer.specs import ResNetSpec, as_bool, make_spec

from . import session
from .common import (
    checkpoint_choices,
    checkpoint_dropdown,
    checkpoint_path,
    clean_scratch,
    progress_callback,
    refresh_checkpoints,
    scratch_path,
    user_errors,
)

EXPAND_CHOICES = [("blocks (collapsed)", "none"), ("stage 1 layers", "stage1"),
                  ("stage 2 layers", "stage2"), ("stage 3 layers", "stage3"),
                  ("stage 4 layers (ImageNet)", "stage4"), ("every layer", "all")]


def png_js(elem_id: str) -> str:
    """The click of a plot's PNG button (the modebar's camera saves SVG, see `MODEBAR`)."""
    return (f"() => {{ const plot = document.querySelector('#{elem_id} .js-plotly-plot'); "
            f"if (plot && window.Plotly) window.Plotly.downloadImage(plot, {json.dumps(PNG_OPTIONS)}); }}")


def plot_value(fig):
    """A Plotly figure as `gr.Plot` sends it, with the modebar's config (Gradio passes a
    figure's "config" on to Plotly; a bare figure has none)."""
    if fig is None:
        return None
    return PlotData(type="plotly", plot=json.dumps({**json.loads(fig.to_json()), "config": MODEBAR}))


@user_errors
def build_architecture(depth, version, family="cifar", residual=True, shortcut="projection",
                       expand="none", show_twin=False):
    """Architecture of a ResNet: graph, plain-twin graph, per-stage table, headline, notes.

    Args:
        depth: 6n+2 for v1 (20, 56, 110, 1202...), 9n+2 for v2 (29, 164, 1001...), or 18-152 (ImageNet).
        version: 1 (basic blocks, post-activation) or 2 (pre-activation bottlenecks).
        family: "cifar" or "imagenet".
        residual: False for the plain twin (no shortcuts).
        shortcut: "projection" or "zeropad" where shapes change.
        expand: "none" (blocks collapsed), "stage1".."stage4", or "all" (every layer).
        show_twin: also draw the plain twin's graph.
    """
    spec = make_spec(depth, version, family=family, residual=residual, shortcut=shortcut)
    summary = graph.summarize(spec)
    rows = graph.stage_rows(summary)  # thousands separators, the total last
    totals = summary["totals"]
    fig = plot_value(graph.figure(spec, expand))
    show_twin = as_bool(show_twin, "show_twin")
    twin = plot_value(graph.figure(spec.twin(), expand)) if show_twin else None
    headline = (f"**{spec.name}**: {totals['params']:,} parameters "
                f"({totals['trainable_params']:,} trainable), {totals['weighted_layers']} weighted layers, "
                f"{totals['layers']} Keras layers, {totals['flops'] / 1e6:,.1f} M multiply-adds per image")
    return fig, gr.update(value=twin, visible=show_twin), rows, headline, graph.explain(spec)


@user_errors
def download_architecture(depth, version, family="cifar", residual=True, shortcut="projection"):
    """Builds the real Keras model and returns its `.keras` file (opens in Netron).

    Args:
        depth: 6n+2 (v1) or 9n+2 (v2) for CIFAR-10; 18, 34, 50, 101 or 152 for ImageNet.
        version: 1 or 2 (CIFAR-10 nets).
        family: "cifar" or "imagenet".
        residual: False for the plain twin (no shortcuts).
        shortcut: "projection" or "zeropad", where shapes change.
    """
    from explorer.models import build_model  # TensorFlow only when a model is really built

    spec = make_spec(depth, version, family=family, residual=residual, shortcut=shortcut)
    path = clean_scratch() / f"{spec.slug}.keras"  # one file per architecture (up to 243 MB)
    if not path.exists():
        partial = scratch_path(f"{spec.slug}.partial.keras")
        build_model(spec).save(partial)
        os.replace(partial, path)  # whole or absent: a concurrent request never sees half
    return str(path)


# ----------------------------------------------------------------------------- measurements on the graph

OVERLAY_CHOICES = [("none: the bare graph", "none"),
                   ("gradient norm at initialization, plain twin below", "gradient"),
                   ("gradient norm, trained against at initialization", "gradient_trained"),
                   ("gradient norm over training (a job's log)", "gradient_training"),
                   ("lesion: accuracy lost per deleted block", "lesion"),
                   ("residual-branch share ‖F(x)‖ / ‖x‖", "branch_share"),
                   ("ratio residual / plain gradient norm", "ratio")]


def _job_history(checkpoint, request) -> dict:
    """A job's history with its steps per epoch (the job must be this browser's)."""
    name = str(checkpoint or "")
    if not name.startswith("job:"):
        raise ValueError("gradient over training reads a job's log: choose a job of this browser as the "
                         "checkpoint (its name starts with job:), or type the job's id")
    checkpoint_path(name, request)  # unknown ids and other browsers' jobs are refused here
    status = session.jobs().status(name[4:])
    return {**status["history"], "steps_per_epoch": status.get("steps_per_epoch")}


@user_errors
def graph_overlay(depth, version, overlay, checkpoint=None, epoch=None, request: gr.Request = None,
                  progress=gr.Progress()):
    """The whole-net graph with its blocks coloured by a measurement (a colour bar, the value
    on hover), the twin below on the same scale; returns the figure and the numbers as JSON:
    {"overlay", "blocks" (input to output), "values", "twin_values" (where a twin is drawn), ...}.

    Args:
        depth: the CIFAR-10 net measured at initialization, 6n+2 (v1) or 9n+2 (v2); a
            checkpoint's own net is drawn where one is used.
        version: 1 or 2.
        overlay: gradient, gradient_trained, gradient_training, lesion, branch_share or ratio
            ("none": the bare graph).
        checkpoint: a shipped checkpoint's name or `job:<id>` of this session: needed by
            gradient_trained, gradient_training (a job) and lesion; branch_share trained with one.
        epoch: the epoch gradient_training shows (0: its first logged step); none: the last.
    """
    if overlay == "none":
        return plot_value(graph.figure(make_spec(depth, version))), {}
    kind = overlays.check_kind(overlay)
    history = _job_history(checkpoint, request) if kind == "gradient_training" else None
    path = None
    if kind in overlays.NEEDS_CHECKPOINT or (kind == "branch_share" and checkpoint):
        path = checkpoint_path(checkpoint, request)
    source, notice = resolve_source()
    result = overlays.overlay(depth, version, kind, path, history, epoch, source,
                              progress=progress_callback(progress))
    return plot_value(overlays.overlay_figure(result)), {**result, **({"notice": notice} if notice else {})}


def _measured(result, seen, block):
    """After an overlay: the epoch slider (gradient over training only), the block list of
    the net drawn, and the values seen so far, per overlay, for the block panel."""
    result, seen = result or {}, {"drawn": None, "kinds": {}, **(seen or {})}
    seen["drawn"] = result.get("net")  # none: the net the controls describe
    if result.get("overlay"):
        twin = dict(zip(result["blocks"], result.get("twin_values") or []))
        seen["kinds"] = {**seen["kinds"], result["overlay"]: {"model": result["model"], "quantity": result["quantity"],
                                   "values": dict(zip(result["blocks"], result["values"])),
                                   "twin_label": result.get("twin_label"), "twin": twin, "net": result["net"],
                                   "percent": result["overlay"] == "lesion"}}
    blocks = result.get("blocks") or []
    training = result.get("overlay") == "gradient_training"
    slider = gr.Slider(visible=training, maximum=max(result.get("epochs", 1), 1), value=result.get("epoch", 0)) \
        if training else gr.Slider(visible=False)
    choice = gr.Dropdown(choices=blocks, value=block if block in blocks else (blocks[0] if blocks else None)) \
        if blocks else gr.skip()
    return slider, choice, seen


@user_errors
def _after_build(overlay, depth, version, family, checkpoint, progress=gr.Progress()):
    """After the net is rebuilt: an overlay measured at initialization is measured on the new
    net; one of a checkpoint (which drew the checkpoint's net) is dropped."""
    if family == "cifar" and (overlay in ("gradient", "ratio") or (overlay == "branch_share" and not checkpoint)):
        return *graph_overlay(depth, version, overlay, None, None, None, progress), gr.skip()
    if overlay == "none":
        return gr.skip(), {}, gr.skip()  # the bare graph the build drew
    return gr.skip(), {}, "none"


def _net_blocks(depth, version, family, residual, shortcut):
    """The block list of the net the controls describe (after a build)."""
    try:
        blocks = [b.name for b in plan(make_spec(depth, version, family, residual, shortcut)).blocks]
    except ValueError:
        return gr.skip()
    return gr.Dropdown(choices=blocks, value=blocks[0])


@user_errors
def block_info(block, depth, version, family, residual, shortcut, seen=None):
    """A block's numbers (Markdown): shapes, parameters, multiply-adds, whether it can be
    deleted, and every overlay value measured for it so far (`seen`, see `_measured`)."""
    seen = seen or {}
    drawn = seen.get("drawn")  # the net an overlay drew, else the one the controls describe
    spec = ResNetSpec.from_config(drawn) if drawn else make_spec(depth, version, family, residual, shortcut)
    found = [b for b in plan(spec).blocks if b.name == block]
    if not found:
        return f"{spec.name} has no block {block!r}."
    b, rows = found[0], graph.block_layers(found[0], plan(spec))
    lines = [(f"**{block}** of {spec.name}: {'x'.join(map(str, b.in_shape))} → {'x'.join(map(str, b.out_shape))}, "
              f"{sum(r.params for r in rows):,} parameters, {sum(r.flops for r in rows):,} multiply-adds, "
              f"shortcut: {b.shortcut or 'none (plain)'}.")]
    try:
        deletion.check_block(spec, block)
        lines.append("Its residual branch can be deleted (choose a checkpoint of this net).")
    except ValueError as err:
        lines.append(str(err) + ".")
    for kind, m in seen.get("kinds", {}).items():
        if m["model"] == spec.name and block in m["values"]:
            twin = f"; {m['twin_label']}: {_number(m['twin'].get(block))}" if m["twin"] else ""
            lines.append(f"- {kind} ({m['quantity']}): {_number(m['values'][block], m['percent'])}{twin}")
    return "\n".join(lines)


def _number(value, percent=False) -> str:
    from explorer.numbers import magnitude

    return "n/a" if value is None else f"{value:.1%}" if percent else magnitude(value)


@user_errors
def delete_block(checkpoint, block, samples=overlays.OVERLAY_SAMPLES, request: gr.Request = None):
    """A checkpoint's accuracy on the first test images with and without one block's residual
    branch (the lesion study's numbers for the same images), with the lesion study's median
    deletion where it has been measured; returns {"block", "accuracy_with", "accuracy_without", ...}.

    Args:
        checkpoint: a shipped checkpoint's name or `job:<id>` of this session.
        block: the block's name, "stage2_block3"; a plain block that changes shape cannot be deleted.
        samples: test images (the first ones).
    """
    path = checkpoint_path(checkpoint, request)
    return deletion.delete_block(path, block, samples, resolve_source()[0])


def deletion_text(result) -> str:
    """A deletion's answer in words (Markdown)."""
    if not result:
        return ""
    cost = result["cost"] * 100
    said = f"{cost:.1f} points lost" if cost >= 0 else f"{-cost:.1f} points gained"
    text = (f"**{result['model']} without {result['block']}'s residual branch**: {result['accuracy_without']:.1%} "
            f"of {result['n']:,} test images right instead of {result['accuracy_with']:.1%} ({said}).")
    if "lesion_median_cost" in result:
        return text + (f" A median deletion costs {result['lesion_median_cost'] * 100:.1f} points "
                       "(the lesion overlay's study, same images).")
    return text + " Apply the lesion overlay with this checkpoint to see it beside the median deletion."


def _overlay_controls():
    with gr.Accordion("Measure on the graph", open=True, elem_id="arch-measure"):
        overlay = gr.Dropdown(OVERLAY_CHOICES, value="none", label="Overlay", elem_id="arch-overlay")
        choices = checkpoint_choices()
        checkpoint = checkpoint_dropdown("Checkpoint (trained overlays, deletion)", "arch-checkpoint",
                                         value=choices[0][1] if choices else None, choices=choices)
        job = gr.Textbox(label="or a job id of this browser", placeholder="e.g. 3f2a9c1b7d4e", max_lines=1,
                         elem_id="arch-job")
        epoch = gr.Slider(0, 1, value=0, step=1, label="Epoch (gradient over training)", visible=False,
                          elem_id="arch-epoch")
        epoch_value = gr.Number(None, precision=0, visible=False)  # the slider's, or none (the last): the API's
        apply = gr.Button("Apply overlay", elem_id="arch-apply")
    with gr.Accordion("A block", open=True, elem_id="arch-block-panel"):
        names = [b.name for b in plan(make_spec(56, 1)).blocks]  # the net the page opens on
        block = gr.Dropdown(names, value=names[0], label="Block", elem_id="arch-block", allow_custom_value=True)
        info = gr.Markdown(block_info(names[0], 56, 1, "cifar", True, "projection"), elem_id="arch-block-info")
        samples = gr.Number(overlays.OVERLAY_SAMPLES, precision=0, label="Test images", elem_id="arch-samples")
        delete = gr.Button("Delete this block", variant="stop", elem_id="arch-delete")
        deleted = gr.Markdown(elem_id="arch-deleted")
    with gr.Accordion("Numbers (JSON)", open=False):
        numbers = gr.JSON(label="overlay", elem_id="arch-numbers")
        deletion = gr.JSON(label="deletion", elem_id="arch-deletion")
    return overlay, checkpoint, job, (epoch, epoch_value), apply, block, info, samples, delete, deleted, numbers, deletion


def _wire_overlays(inputs, plot, controls, built):
    """Overlays redraw at once on a new choice, the epoch slider replays a run; Apply is the API."""
    overlay, checkpoint, job, (epoch, epoch_value), apply, block, info, samples, delete, deleted, numbers, deletion = \
        controls
    depth, version = inputs[:2]
    seen = gr.State({})
    shown = [plot, numbers]

    def after(event):
        event.success(_measured, [numbers, seen, block], [epoch, block, seen], api_name=False).then(
            block_info, [block, *inputs[:5], seen], info, api_name=False)

    epoch.change(lambda value: value, epoch, epoch_value, api_name=False, show_progress="hidden")
    after(apply.click(graph_overlay, [depth, version, overlay, checkpoint, epoch_value], shown, api_name="graph_overlay",
                      concurrency_limit=1, concurrency_id="probes"))
    after(gr.on([overlay.input, checkpoint.input], graph_overlay, [depth, version, overlay, checkpoint], shown,
                api_name=False, concurrency_limit=1, concurrency_id="probes"))
    after(epoch.release(graph_overlay, [depth, version, overlay, checkpoint, epoch], shown, api_name=False,
                        concurrency_limit=1, concurrency_id="probes"))
    after(job.submit(lambda text: f"job:{text.strip()}" if text.strip() else gr.skip(), job, checkpoint,
                     api_name=False).then(graph_overlay, [depth, version, overlay, checkpoint], shown,
                                          api_name=False, concurrency_limit=1, concurrency_id="probes"))
    for event in built:
        after(event.success(_net_blocks, inputs[:5], block, api_name=False).then(
            _after_build, [overlay, depth, version, inputs[2], checkpoint], [*shown, overlay], api_name=False,
            concurrency_limit=1, concurrency_id="probes"))
    block.change(block_info, [block, *inputs[:5], seen], info, api_name=False)
    checkpoint.focus(refresh_checkpoints, checkpoint, checkpoint, api_name=False)  # this browser's new jobs
    delete.click(delete_block, [checkpoint, block, samples], deletion, api_name="delete_block",
                 concurrency_limit=1, concurrency_id="probes").success(deletion_text, deletion, deleted, api_name=False)


DEPTH_HELP = {"cifar": "v1: 20, 32, 44, 56, 110, 1202...; v2: 29, 56, 164, 1001...",
              "imagenet": "18, 34 (basic blocks); 50, 101, 152 (bottlenecks)"}
IMAGENET_DEPTHS = (18, 34, 50, 101, 152)


def follow_family(family, depth):
    """A new family: the version choice applies to CIFAR-10 nets only (ImageNet ResNets are
    fixed by their depth: basic blocks to 34, bottlenecks from 50), so it is hidden and reset
    for ImageNet; a depth the family has no net for becomes its nearest (ResNet-50 and
    ResNet-56 as the defaults)."""
    imagenet = family == "imagenet"
    try:
        depth = int(depth)
    except (TypeError, ValueError):
        depth = 0
    if imagenet and depth not in IMAGENET_DEPTHS:
        depth = 50
    elif not imagenet and depth in IMAGENET_DEPTHS:
        depth = 56
    return (gr.Radio(value=1, visible=not imagenet),
            gr.Number(value=depth, info=DEPTH_HELP["imagenet" if imagenet else "cifar"]))


def _controls():
    family = gr.Radio([("CIFAR-10", "cifar"), ("ImageNet", "imagenet")], value="cifar", label="Family")
    version = gr.Radio([("v1: basic blocks, 6n+2", 1), ("v2: pre-activation bottlenecks, 9n+2", 2)],
                       value=1, label="Version")
    depth = gr.Number(value=56, precision=0, label="Depth", info=DEPTH_HELP["cifar"], elem_id="arch-depth")
    residual = gr.Checkbox(value=True, label="Residual (untick for the plain twin)")
    shortcut = gr.Radio(["projection", "zeropad"], value="projection", label="Shortcut where shapes change")
    expand = gr.Dropdown(EXPAND_CHOICES, value="none", label="Expand")
    show_twin = gr.Checkbox(value=False, label="Show the twin beside it")
    return depth, version, family, residual, shortcut, expand, show_twin


def _wire(inputs, outputs, build_button):
    """One rule for the whole tab: every control redraws at once (the depth box when it is
    left or Enter is pressed, so a half-typed number is not built); Build does the same."""
    depth, version, family, residual, shortcut, expand, show_twin = inputs
    return [
        build_button.click(build_architecture, inputs, outputs, api_name="build_architecture", concurrency_limit=4),
        family.input(follow_family, [family, depth], [version, depth], api_name=False).then(
            build_architecture, inputs, outputs, api_name=False, concurrency_limit=4),
        gr.on([depth.submit, depth.blur, version.input, residual.input, shortcut.input, expand.input,
               show_twin.input], build_architecture, inputs, outputs, api_name=False, concurrency_limit=4)]


def build():
    """Lays out and wires the tab; returns its inputs and outputs (the page draws the
    default net on load)."""
    with gr.Row():
        with gr.Column(scale=1, min_width=260, elem_id="arch-controls"):
            inputs = list(_controls())
            build_button = gr.Button("Build", variant="primary", elem_id="arch-build")
            download = gr.Button("Prepare .keras download", elem_id="arch-download")
            keras_file = gr.File(label=".keras file (open it in Netron)", interactive=False, visible=False)
            controls = _overlay_controls()
        with gr.Column(scale=3, elem_id="arch-view"):
            headline = gr.Markdown(elem_id="arch-headline")
            png, twin_png = gr.Button("PNG", size="sm"), gr.Button("PNG", size="sm")
            plot = gr.Plot(label="Architecture", elem_id="arch-plot", buttons=[png])
            twin_plot = gr.Plot(label="Twin", visible=False, elem_id="arch-twin", buttons=[twin_png])
            table = gr.Dataframe(headers=graph.STAGE_HEADERS,
                                 label="Per stage", interactive=False, elem_id="arch-table")
            notes = gr.Markdown(elem_id="arch-notes")
    outputs = [plot, twin_plot, table, headline, notes]
    _wire_overlays(inputs, plot, controls, _wire(inputs, outputs, build_button))
    png.click(None, js=png_js("arch-plot"), api_name=False)
    twin_png.click(None, js=png_js("arch-twin"), api_name=False)
    download.click(download_architecture, inputs[:5], keras_file, api_name="download_architecture",
                   concurrency_limit=1).success(lambda: gr.File(visible=True), None, keras_file, api_name=False)
    return inputs, outputs
