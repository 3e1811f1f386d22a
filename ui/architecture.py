"""The Architecture tab: a ResNet as an interactive graph, its plain twin, a per-stage table,
and the real Keras model to download."""

from __future__ import annotations

import os

import gradio as gr

from explorer import graph
from explorer.specs import as_bool, make_spec

from .common import clean_scratch, scratch_path, user_errors

EXPAND_CHOICES = [("blocks (collapsed)", "none"), ("stage 1 layers", "stage1"),
                  ("stage 2 layers", "stage2"), ("stage 3 layers", "stage3"),
                  ("stage 4 layers (ImageNet)", "stage4"), ("every layer", "all")]


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
    fig = graph.figure(spec, expand)
    show_twin = as_bool(show_twin, "show_twin")
    twin = graph.figure(spec.twin(), expand) if show_twin else None
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
    build_button.click(build_architecture, inputs, outputs, api_name="build_architecture", concurrency_limit=4)
    family.input(follow_family, [family, depth], [version, depth], api_name=False).then(
        build_architecture, inputs, outputs, api_name=False, concurrency_limit=4)
    gr.on([depth.submit, depth.blur, version.input, residual.input, shortcut.input, expand.input,
           show_twin.input], build_architecture, inputs, outputs, api_name=False, concurrency_limit=4)


def build():
    """Lays out and wires the tab; returns its inputs and outputs (the page draws the
    default net on load)."""
    with gr.Row():
        with gr.Column(scale=1, min_width=260, elem_id="arch-controls"):
            inputs = list(_controls())
            build_button = gr.Button("Build", variant="primary", elem_id="arch-build")
            download = gr.Button("Prepare .keras download", elem_id="arch-download")
            keras_file = gr.File(label=".keras file (open it in Netron)", interactive=False, visible=False)
        with gr.Column(scale=3, elem_id="arch-view"):
            headline = gr.Markdown(elem_id="arch-headline")
            plot = gr.Plot(label="Architecture", elem_id="arch-plot")
            twin_plot = gr.Plot(label="Twin", visible=False, elem_id="arch-twin")
            table = gr.Dataframe(headers=graph.STAGE_HEADERS,
                                 label="Per stage", interactive=False, elem_id="arch-table")
            notes = gr.Markdown(elem_id="arch-notes")
    outputs = [plot, twin_plot, table, headline, notes]
    _wire(inputs, outputs, build_button)
    download.click(download_architecture, inputs[:5], keras_file, api_name="download_architecture",
                   concurrency_limit=1).success(lambda: gr.File(visible=True), None, keras_file, api_name=False)
    return inputs, outputs
