"""Every chart of the app can be saved as SVG (the modebar's camera) and PNG (the button beside
the plot's label): every plot of the page is a `ui.common.ExportPlot`, and a figure a handler
returns, bare or in an update, reaches the page with the modebar's config."""

import asyncio
import concurrent.futures
import json

import gradio as gr
import plotly.graph_objects as go
import pytest
from gradio.state_holder import SessionState


@pytest.fixture(scope="module")
def demo():
    from app import build_demo

    return build_demo()


def _plots(demo):
    return [block for block in demo.blocks.values() if isinstance(block, gr.Plot)]


def test_every_plot_of_the_page_saves_svg_and_png(demo):
    from ui.common import ExportPlot, plot_filename

    plots = _plots(demo)
    assert len(plots) >= 13  # Architecture 2, Train 3, Gradient flow 3, Insight 2, Paths 3
    bare = [plot.elem_id for plot in plots if not isinstance(plot, ExportPlot)]
    assert not bare, f"plots without the SVG/PNG export (use ui.common.export_plot): {bare}"
    for plot in plots:
        assert plot.get_block_name() == "plot"  # drawn by Gradio's own plot component
        assert [button.value for button in plot.buttons] == ["PNG"], plot.elem_id
        clicks = [fn.js for fn in demo.fns.values() if (plot.buttons[0]._id, "click") in fn.targets]
        assert len(clicks) == 1 and f"#{plot.elem_id} .js-plotly-plot" in clicks[0]
        assert "downloadImage" in clicks[0] and '"format": "png"' in clicks[0]
        assert plot_filename(plot.elem_id) in clicks[0]


@pytest.mark.parametrize("figure", [go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), go.Figure()])
def test_a_bare_figure_leaves_with_the_svg_config(demo, figure):
    for plot in _plots(demo):
        sent = json.loads(plot.postprocess(figure).plot)
        assert sent["config"]["toImageButtonOptions"] == {"format": "svg",
                                                          "filename": f"resnet-explorer-{plot.elem_id}"}
        assert sent["data"] == json.loads(figure.to_json())["data"]
        assert plot.postprocess(None) is None


def test_a_handler_s_figures_and_updates_reach_the_page_with_the_config(demo):
    """/build_architecture through Gradio's own processing: the graph a bare figure, the twin
    inside gr.update(visible=...) (Gradio rebuilds the block from its arguments then)."""
    fn = next(fn for fn in demo.fns.values() if fn.api_name == "build_architecture")
    # in a thread of its own: after the browser tests, Playwright's loop runs in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, demo.process_api(
            fn, [20, 1, "cifar", True, "projection", "none", True], state=SessionState(demo))).result()
    graph, twin = result["data"][:2]
    for sent, elem_id in ((graph, "arch-plot"), (twin["value"], "arch-twin")):
        config = json.loads(sent["plot"])["config"]
        assert config["toImageButtonOptions"] == {"format": "svg", "filename": f"resnet-explorer-{elem_id}"}
