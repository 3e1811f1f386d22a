"""The Architecture tab: a ResNet as an interactive graph (the whole net on one screen), its
plain twin, a per-stage table, the real Keras model to download; measurements drawn on the
graph (overlays) and one block chosen, its numbers and its deletion."""

from __future__ import annotations

import os

import gradio as gr

from explorer.compute.engine import engine
from explorer.core import costs
from explorer.core.plans import plan
from explorer.core.specs import as_bool, make_spec
from explorer.data.cifar import resolve_source
from explorer.nets.models import checkpoint_spec
from explorer.shipped import pretrained
from explorer.studies import overlays
from explorer.views import graph, overlay_figures

from . import session
from .architecture_controls import (
    EXPAND_CHOICES,
    NetControls,
    OverlayControls,
    block_panel,
    follow_family,
    follow_version,
    net_controls,
    overlay_controls,
)
from .block_panel import (
    CLICK_JS,
    CLICKED_JS,
    HIGHLIGHT_JS,
    block_info,
    choose_block,
    delete_block,
    deletion_text,
)
from .common import (
    checkpoint_path,
    clean_scratch,
    export_plot,
    new_choices,
    progress_callback,
    refresh_checkpoints,
    scratch_path,
    user_errors,
)
from .glossary import linked

# A draw keeps the last request made while it runs (Gradio's default, "once", skips a step whose last
# run is still open: a request made meanwhile was lost); "probes": the heavy measurements' one lane.
LAST = {"trigger_mode": "always_last"}
PROBES = {"concurrency_limit": 1, "concurrency_id": "probes", **LAST}

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
        expand: "none" (blocks collapsed), "stage1".."stage4", "all" (every layer), or a
            block's name ("stage2_block3": its layers only).
        show_twin: also draw the plain twin's graph.
    """
    spec = make_spec(depth, version, family=family, residual=residual, shortcut=shortcut)
    summary = costs.summarize(spec)
    rows = costs.stage_rows(summary)  # thousands separators, the total last
    totals = summary["totals"]
    fig = graph.figure(spec, expand)  # the plot adds the modebar's config (common.ExportPlot)
    show_twin = as_bool(show_twin, "show_twin")
    twin = graph.figure(spec.twin(), expand) if show_twin else None
    headline = (f"**{spec.name}**: {totals['params']:,} parameters "
                f"({totals['trainable_params']:,} trainable), {totals['weighted_layers']} weighted layers, "
                f"{totals['layers']} Keras layers, {totals['flops'] / 1e6:,.1f} M multiply-adds per image")
    return fig, gr.update(value=twin, visible=show_twin), rows, linked(headline), linked(graph.explain(spec))


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
    from explorer.nets.models import build_model  # TensorFlow only when a model is really built

    spec = make_spec(depth, version, family=family, residual=residual, shortcut=shortcut)
    path = clean_scratch() / f"{spec.slug}.keras"  # one file per architecture (up to 243 MB)
    if not path.exists():
        partial = scratch_path(f"{spec.slug}.partial.keras")
        build_model(spec).save(partial)
        os.replace(partial, path)  # whole or absent: a concurrent request never sees half
    return str(path)


# ----------------------------------------------------------------------------- measurements on the graph




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
def graph_overlay(depth, version, overlay, checkpoint=None, epoch=None, expand="none",
                  request: gr.Request = None, progress=gr.Progress()):
    """The whole-net graph with its blocks coloured by a measurement (a colour bar, the value
    on hover), the twin below on the same scale; returns the figure and the numbers as JSON:
    {"overlay", "blocks" (input to output), "values", "twin_values" (where a twin is drawn), ...}.

    Args:
        depth: the CIFAR-10 net measured at initialization, 6n+2 (v1) or 9n+2 (v2); a
            checkpoint's own net is drawn where one is used.
        version: 1 or 2.
        overlay: gradient, gradient_trained, gradient_training, lesion, branch_share, ratio,
            branch_ratio, readout or gradient_paths ("none": the bare graph).
        checkpoint: a shipped checkpoint's name, `job:<id>` or `import:<id>` of this session:
            needed by gradient_trained, gradient_training (a job), lesion, branch_ratio and
            readout; branch_share and gradient_paths trained with one.
        epoch: the epoch gradient_training shows (0: its first logged step); none: the last.
        expand: how the net is drawn: "none" (blocks), "stageK", "all", or a block's name
            (its layers only); expanded layers take their block's colour.
    """
    if overlay == "none":
        return graph.figure(make_spec(depth, version), expand), {}
    kind = overlays.check_kind(overlay)
    history = _job_history(checkpoint, request) if kind == "gradient_training" else None
    path = None
    if overlays.needs_checkpoint(kind, checkpoint):
        path = checkpoint_path(checkpoint, request)
    source, notice = resolve_source()
    # a checkpoint's studies go to the worker that keeps it loaded, and its lesion study for a
    # block's deletion (`block_panel.delete_block` asks for the same home)
    result = engine().run(overlays.overlay, depth, version, kind, path, history, epoch, source,
                          progress=progress_callback(progress),
                          home=("checkpoint", str(path)) if path is not None else None)
    return (overlay_figures.overlay_figure(result, expand),
            {**result, **({"notice": notice} if notice else {})})


@user_errors
def check_overlay(overlay, checkpoint, request: gr.Request = None):
    """An overlay's request checked before anything is drawn (no outputs): one that cannot be
    drawn says why once, and the graph on screen stays as it is."""
    if overlay == "none":
        return
    kind = overlays.check_kind(overlay)
    if kind == "gradient_training":
        _job_history(checkpoint, request)
    elif overlays.needs_checkpoint(kind, checkpoint):
        checkpoint_path(checkpoint, request)


def _overlay_now(depth, version, overlay, checkpoint, expand, request: gr.Request = None,
                 progress=gr.Progress()):
    """A new overlay or checkpoint: drawn as the graph is expanded, at the last epoch."""
    return graph_overlay(depth, version, overlay, checkpoint, None, expand, request, progress)


def _measured(result, seen, block):
    """After an overlay: the epoch slider (gradient over training only), the block list of
    the net drawn, and the values seen so far, per overlay, for the block panel."""
    result, seen = result or {}, {"drawn": None, "kinds": {}, **(seen or {})}
    seen["drawn"] = result.get("net")  # none: the net the controls describe
    if result.get("overlay"):
        twin = dict(zip(result["blocks"], result.get("twin_values") or []))
        seen["kinds"] = {**seen["kinds"], result["overlay"]: {
            "model": result["model"], "quantity": result["quantity"],
            "values": dict(zip(result["blocks"], result["values"])), "twin_label": result.get("twin_label"),
            "twin": twin, "net": result["net"], "percent": result["overlay"] in ("lesion", "readout")}}
    blocks = result.get("blocks") or []
    training = result.get("overlay") == "gradient_training"
    slider = gr.Slider(visible=training, maximum=max(result.get("epochs", 1), 1),
                       value=result.get("epoch", 0)) if training else gr.Slider(visible=False)
    choice = new_choices(blocks, block) if blocks else gr.skip()
    return slider, choice, seen


@user_errors
def _after_build(overlay, depth, version, family, checkpoint, expand, progress=gr.Progress()):
    """After the net is rebuilt: an overlay measured at initialization is measured on the new
    net; one of a checkpoint (which drew the checkpoint's net) is dropped."""
    if family == "cifar" and (overlay in ("gradient", "ratio")
                              or (overlay in ("branch_share", "gradient_paths") and not checkpoint)):
        return *graph_overlay(depth, version, overlay, None, None, expand, None, progress), gr.skip()
    if overlay == "none":
        return gr.skip(), {}, gr.skip()  # the bare graph the build drew
    return gr.skip(), {}, "none"


@user_errors
def expand_view(depth, version, family, residual, shortcut, expand, show_twin, overlay="none",
                checkpoint=None, epoch=None, request: gr.Request = None, progress=gr.Progress()):
    """A new expansion redraws what is on screen expanded: the overlay (its measurement is
    kept, so only the drawing is new) or the bare graph and its twin."""
    if overlay == "none":
        return tuple(build_architecture(depth, version, family, residual, shortcut, expand, show_twin)[:2])
    return graph_overlay(depth, version, overlay, checkpoint, epoch, expand, request, progress)[0], gr.skip()


def _expand_block(block):
    """The Expand choice of one block's layers (the panel's button)."""
    return gr.Dropdown(choices=[*EXPAND_CHOICES, (f"{block}'s layers", block)], value=block)


def _fit_expand(depth, version, family, residual, shortcut, expand):
    """A block expanded on its own stays expanded while the net has it (a new depth may not)."""
    if expand in {value for _, value in EXPAND_CHOICES}:
        return gr.skip()
    try:
        names = {b.name for b in plan(make_spec(depth, version, family, residual, shortcut)).blocks}
    except ValueError:
        return gr.skip()  # the build says what is wrong
    return gr.skip() if expand in names else "none"


def _net_blocks(depth, version, family, residual, shortcut, block, seen):
    """After a build the panel follows the graph: the new net's blocks (the one chosen kept
    where the net has it), and the net drawn is the controls' until an overlay draws another."""
    try:
        blocks = [b.name for b in plan(make_spec(depth, version, family, residual, shortcut)).blocks]
    except ValueError:
        return gr.skip(), gr.skip()
    return new_choices(blocks, block), {**(seen or {}), "drawn": None}


def _checkpoint_net(name, request):
    """The net a checkpoint holds (a shipped one's manifest entry, a job's config), or None."""
    name = str(name or "")
    if name.startswith("job:"):
        return session.jobs().config(name[4:], session.owner(request)).spec()
    if name.startswith("import:"):
        return checkpoint_spec(checkpoint_path(name, request))
    entry = next((e for e in pretrained.manifest() if e["name"] == name), None)
    if entry is None:
        return None
    return make_spec(entry["depth"], entry["version"], residual=entry["residual"],
                     shortcut=entry.get("shortcut", "projection"))


def follow_net(depth, version, family, residual, shortcut, checkpoint, request: gr.Request = None):
    """The checkpoint follows the net on screen: kept while it holds this net, else the net's
    own shipped checkpoint, else none (an overlay or a deletion then asks for one)."""
    try:
        spec = make_spec(depth, version, family, residual, shortcut)
    except ValueError:
        return gr.skip()  # the build says what is wrong
    try:
        held = _checkpoint_net(checkpoint, request)
    except ValueError:  # a damaged manifest, a job no longer known
        held = None
    return gr.skip() if held == spec else gr.Dropdown(value=pretrained.shipped_for(spec))


def _wire_block(net: NetControls, plots, controls: OverlayControls, seen):
    """The block panel: a click on the graph chooses the block, its button expands it."""
    panel = controls.panel
    view = [*net.all(), controls.overlay, controls.checkpoint, controls.epoch_value]
    plots[0].change(None, js=CLICK_JS, api_name=False)  # wires the click once the first figure is drawn
    # the chosen block ringed on the graph (and its twin), again whenever a figure is redrawn
    for source in (panel.block, *plots):
        source.change(None, panel.block, js=HIGHLIGHT_JS, api_name=False)
    panel.clicked.click(choose_block, [panel.block, *net.spec(), seen], panel.block, js=CLICKED_JS,
                        api_name=False)
    described = [panel.block, *net.spec(), seen, controls.checkpoint]
    panel.block.change(block_info, described, panel.info, api_name=False)
    controls.checkpoint.change(block_info, described, panel.info, api_name=False)
    panel.expand.click(_expand_block, panel.block, net.expand, api_name=False).then(
        expand_view, view, plots, api_name=False, **PROBES)
    # `select`, not `input`: Gradio's Dropdown sends `input` for a pick and again for the blur
    # that follows it (and for any blur), which drew every view twice
    net.expand.select(expand_view, view, plots, api_name=False, **PROBES)
    panel.delete.click(delete_block, [controls.checkpoint, panel.block, panel.samples], controls.deletion,
                       api_name="delete_block", concurrency_limit=1, concurrency_id="probes").success(
        deletion_text, controls.deletion, panel.deleted, api_name=False)


def _wire_overlays(net: NetControls, plots, controls: OverlayControls, built):
    """Overlays redraw at once on a new choice, the epoch slider replays a run; Apply is the API."""
    overlay, checkpoint, job, epoch, numbers = (controls.overlay, controls.checkpoint, controls.job,
                                                controls.epoch, controls.numbers)
    block, info = controls.panel.block, controls.panel.info
    depth, version, expand = net.depth, net.version, net.expand
    seen = gr.State({})
    shown = [plots[0], numbers]

    def after(event):
        event.success(_measured, [numbers, seen, block], [epoch, block, seen], api_name=False, **LAST).then(
            block_info, [block, *net.spec(), seen, checkpoint], info, api_name=False, **LAST)

    epoch.change(lambda value: value, epoch, controls.epoch_value, api_name=False, show_progress="hidden")
    after(controls.apply.click(check_overlay, [overlay, checkpoint], None, api_name=False,
                               show_progress="hidden").success(
        graph_overlay, [depth, version, overlay, checkpoint, controls.epoch_value, expand], shown,
        api_name="graph_overlay", concurrency_limit=1, concurrency_id="probes"))
    # a pick from either list (`select`: see `_wire_block`); a typed name waits for Apply. A pick
    # made while the last one is still drawn is kept and drawn next: the check and the draw after
    # it both "always_last" (Gradio's default, "once", skips a step whose last run is still open:
    # an overlay chosen right after a checkpoint never came, and one chosen while the last was
    # still drawn was checked but never drawn)
    after(gr.on([overlay.select, checkpoint.select], check_overlay, [overlay, checkpoint], None,
                trigger_mode="always_last", api_name=False, show_progress="hidden").success(
        _overlay_now, [depth, version, overlay, checkpoint, expand], shown, api_name=False,
        **PROBES))
    after(epoch.release(graph_overlay, [depth, version, overlay, checkpoint, epoch, expand], shown,
                        api_name=False, **PROBES))
    after(job.submit(lambda text: f"job:{text.strip()}" if text.strip() else gr.skip(), job, checkpoint,
                     api_name=False).then(_overlay_now, [depth, version, overlay, checkpoint, expand], shown,
                                          api_name=False, **PROBES))
    for event in built:
        after(event.success(_net_blocks, [*net.spec(), block, seen], [block, seen], api_name=False).then(
            block_info, [block, *net.spec(), seen, checkpoint], info, api_name=False).then(
            follow_net, [*net.spec(), checkpoint], checkpoint, api_name=False).then(
            _after_build, [overlay, depth, version, net.family, checkpoint, expand], [*shown, overlay],
            api_name=False, **PROBES))
    checkpoint.focus(refresh_checkpoints, checkpoint, checkpoint, api_name=False)  # this browser's new jobs
    _wire_block(net, plots, controls, seen)


def _wire(net: NetControls, outputs, build_button):
    """One rule for the whole tab: every control redraws at once (the depth box when it is
    left or Enter is pressed, so a half-typed number is not built); Build does the same."""
    inputs = net.all()
    depth, version, family, residual, shortcut, expand, show_twin = (
        net.depth, net.version, net.family, net.residual, net.shortcut, net.expand, net.show_twin)
    drawn_depth = gr.State(depth.value)  # the depth of the net last drawn
    events = [
        build_button.click(build_architecture, inputs, outputs, api_name="build_architecture",
                           concurrency_limit=4),
        family.input(follow_family, [family, depth], [version, depth], api_name=False).then(
            _fit_expand, net.drawing(), expand, api_name=False).then(
            build_architecture, inputs, outputs, api_name=False, concurrency_limit=4),
        version.input(follow_version, [version, depth], depth, api_name=False).then(
            _fit_expand, net.drawing(), expand, api_name=False).then(
            build_architecture, inputs, outputs, api_name=False, concurrency_limit=4),
        gr.on([depth.submit, depth.blur], _fit_expand, net.drawing(), expand, api_name=False).then(
            build_on_depth, [*inputs, drawn_depth], outputs, api_name=False, concurrency_limit=4),
        gr.on([residual.input, shortcut.input, show_twin.input],
              _fit_expand, net.drawing(), expand, api_name=False).then(
            build_architecture, inputs, outputs, api_name=False, concurrency_limit=4)]
    for event in events:
        event.success(lambda value: value, depth, drawn_depth, api_name=False, show_progress="hidden")
    return events


def build_on_depth(depth, version, family, residual, shortcut, expand, show_twin, drawn):
    """The depth box left or Enter pressed: the net is built if the depth is new. The box is
    left after Enter too, or by a click on v2, whose own event moves a 6n+2 depth to v2's
    nearest: building the old depth with the new version there put a stale error on screen."""
    if str(depth) == str(drawn):
        return (gr.skip(),) * 5
    return build_architecture(depth, version, family, residual, shortcut, expand, show_twin)


def build():
    """Lays out and wires the tab; returns its inputs and outputs (the page draws the
    default net on load), and its block panel's "Look inside this block" with the checkpoint
    and the block it opens (the page wires it to the Look inside tab)."""
    with gr.Row():
        with gr.Column(scale=1, min_width=260, elem_id="arch-controls"):
            net = net_controls()
            build_button = gr.Button("Build", variant="primary", elem_id="arch-build")
            download = gr.Button("Prepare .keras download", elem_id="arch-download")
            keras_file = gr.File(label=".keras file (open it in Netron)", interactive=False, visible=False)
            controls = overlay_controls()
        with gr.Column(scale=3, elem_id="arch-view"):
            headline = gr.Markdown(elem_id="arch-headline")
            plot = export_plot("Architecture", "arch-plot")
            twin_plot = export_plot("Twin", "arch-twin", visible=False)
            block_panel(controls)
            table = gr.Dataframe(headers=costs.STAGE_HEADERS,
                                 label="Per stage", interactive=False, elem_id="arch-table")
            notes = gr.Markdown(elem_id="arch-notes")
    outputs = [plot, twin_plot, table, headline, notes]
    _wire_overlays(net, [plot, twin_plot], controls, _wire(net, outputs, build_button))
    download.click(download_architecture, net.spec(), keras_file, api_name="download_architecture",
                   concurrency_limit=1).success(lambda: gr.File(visible=True), None, keras_file,
                                                api_name=False)
    return net.all(), outputs, (controls.panel.look, controls.checkpoint, controls.panel.block)
