"""ResNet Explorer: the Gradio page. Layout and event wiring only; the work is in `explorer/`.

Run `python app.py` (http://127.0.0.1:7860). Set EXPLORER_HOST=0.0.0.0 to serve beyond this
machine (Docker, Hugging Face Spaces do this for you).
"""

from __future__ import annotations

import functools
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gradio as gr  # noqa: E402

from explorer import graph  # noqa: E402
from explorer.specs import make_spec  # noqa: E402

EXPAND_CHOICES = [("blocks (collapsed)", "none"), ("stage 1 layers", "stage1"),
                  ("stage 2 layers", "stage2"), ("stage 3 layers", "stage3"),
                  ("stage 4 layers (ImageNet)", "stage4"), ("every layer", "all")]


def user_errors(fn):
    """Turns the package's ValueError into a message in the page, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapper


# ----------------------------------------------------------------------------- handlers


@user_errors
def build_architecture(depth, version, family="cifar", residual=True, shortcut="projection",
                       expand="none", show_twin=False):
    """Architecture of a ResNet: graph, plain-twin graph, per-stage table, notes."""
    spec = make_spec(depth, version, family=family, residual=residual, shortcut=shortcut)
    summary = graph.summarize(spec)
    rows = [[r["stage"], r["blocks"], r["output_shape"], r["params"], r["flops"]]
            for r in summary["stages"]]
    t = summary["totals"]
    rows.append(["total", t["blocks"], "", t["params"], t["flops"]])
    fig = graph.figure(spec, expand)
    twin = graph.figure(spec.twin(), expand) if show_twin else None
    headline = (f"**{spec.name}**: {t['params']:,} parameters ({t['trainable_params']:,} trainable), "
                f"{t['weighted_layers']} weighted layers, {t['layers']} Keras layers, "
                f"{t['flops'] / 1e6:,.1f} M multiply-adds per image")
    return fig, gr.update(value=twin, visible=bool(show_twin)), rows, headline, graph.explain(spec)


@user_errors
def download_architecture(depth, version, family="cifar", residual=True, shortcut="projection"):
    """Builds the real Keras model and returns its `.keras` file (opens in Netron)."""
    from explorer.models import build_model

    spec = make_spec(depth, version, family=family, residual=residual, shortcut=shortcut)
    path = os.path.join(tempfile.mkdtemp(prefix="explorer-"), f"{spec.slug}.keras")
    build_model(spec).save(path)
    return path


# ----------------------------------------------------------------------------- layout

INTRO = """# ResNet Explorer
See why residual networks train when plain deep networks don't: pick a network, look inside it,
train it, and compare how the gradient reaches its first layers with and without shortcuts."""


def architecture_tab():
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            family = gr.Radio([("CIFAR-10", "cifar"), ("ImageNet", "imagenet")], value="cifar",
                              label="Family")
            version = gr.Radio([("v1: basic blocks, 6n+2", 1), ("v2: pre-activation bottlenecks, 9n+2", 2)],
                               value=1, label="Version")
            depth = gr.Number(value=56, precision=0, label="Depth",
                              info="v1: 20, 32, 44, 56, 110, 1202...; v2: 29, 56, 164, 1001...; "
                                   "ImageNet: 18, 34, 50, 101, 152")
            residual = gr.Checkbox(value=True, label="Residual (untick for the plain twin)")
            shortcut = gr.Radio(["projection", "zeropad"], value="projection",
                                label="Shortcut where shapes change")
            expand = gr.Dropdown(EXPAND_CHOICES, value="none", label="Expand")
            show_twin = gr.Checkbox(value=False, label="Show the twin beside it")
            build = gr.Button("Build", variant="primary", elem_id="arch-build")
            download = gr.Button("Prepare .keras download", elem_id="arch-download")
            keras_file = gr.File(label=".keras file (open it in Netron)", interactive=False)
        with gr.Column(scale=3):
            headline = gr.Markdown(elem_id="arch-headline")
            plot = gr.Plot(label="Architecture", elem_id="arch-plot")
            twin_plot = gr.Plot(label="Twin", visible=False, elem_id="arch-twin")
            table = gr.Dataframe(headers=["stage", "blocks", "output shape", "parameters", "FLOPs"],
                                 label="Per stage", interactive=False, elem_id="arch-table")
            notes = gr.Markdown(elem_id="arch-notes")
    inputs = [depth, version, family, residual, shortcut, expand, show_twin]
    outputs = [plot, twin_plot, table, headline, notes]
    build.click(build_architecture, inputs, outputs, api_name="build_architecture",
                concurrency_limit=4)
    for control in (expand, show_twin, residual, shortcut):
        control.change(build_architecture, inputs, outputs, api_name=False, concurrency_limit=4)
    download.click(download_architecture, inputs[:5], keras_file, api_name="download_architecture",
                   concurrency_limit=1)
    return build, inputs, outputs


with gr.Blocks(title="ResNet Explorer") as demo:
    gr.Markdown(INTRO)
    with gr.Tabs():
        with gr.Tab("Architecture", id="architecture"):
            arch_build, arch_inputs, arch_outputs = architecture_tab()
    demo.load(build_architecture, arch_inputs, arch_outputs, api_name=False)


def main():
    host = os.environ.get("EXPLORER_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = int(os.environ.get("EXPLORER_PORT", os.environ.get("GRADIO_SERVER_PORT", "7860")))
    demo.queue(default_concurrency_limit=2, max_size=64).launch(
        server_name=host, server_port=port, max_file_size="10mb", show_error=True)


if __name__ == "__main__":
    main()
