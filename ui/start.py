"""The page's first row: a three-step start for a newcomer (see the two nets side by side,
watch the gradient reach the first layer, predict and reveal), each a button that opens its
tab with the view ready; every tab keeps its own controls for those who go on."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.views import tour

from .architecture import build_architecture
from .common import CONTROLS
from .gradients import FlowChart, FlowControls, gradient_flow, show_file

# (button, what it shows): the three steps, in the order a first visit takes them
STEPS = (("1. See the two nets", ("ResNet-20 and its plain twin, drawn side by side: the same layers, only "
          "the shortcuts differ.")),
         ("2. Watch the gradient", ("How much gradient reaches the first layer of a 110-layer plain net and "
          "of its residual twin, at initialization.")),
         ("3. Predict, then reveal", (f"{len(tour.STEPS)} questions: say what you expect, then see what was "
          "measured.")))


@dataclasses.dataclass
class StartPath:
    """The three steps' buttons."""

    nets: gr.Button
    gradient: gr.Button
    predict: gr.Button


def build() -> StartPath:
    """Lays out the row (hidden in teacher mode, with the other input panels)."""
    with gr.Row(elem_id="start-here", elem_classes=[CONTROLS]):
        buttons = []
        for index, (title, text) in enumerate(STEPS, start=1):
            with gr.Column(min_width=100):
                buttons.append(gr.Button(title, size="sm", variant="primary" if index == 1 else "secondary",
                                         elem_id=f"start-{index}"))
                gr.Markdown(text, elem_classes=["start-text"])
    return StartPath(*buttons)


def wire(path: StartPath, tabs: gr.Tabs, architecture_inputs: list, architecture_outputs: list,
         gradients: FlowControls, chart: FlowChart) -> None:
    """Each step opens its tab with the view drawn: the Architecture tab at ResNet-20 with its
    twin, the Gradient flow tab measured at its inputs, the Tour.

    Args:
        architecture_inputs: `NetControls.all()` (depth, version, family, residual, shortcut,
            expand, show_twin).
        gradients, chart: the Gradient flow tab's controls and chart.
    """
    depth, version, family, residual, shortcut, _expand, show_twin = architecture_inputs
    path.nets.click(lambda: (gr.Tabs(selected="architecture"), 20, 1, "cifar", True, "projection", True),
                    None, [tabs, depth, version, family, residual, shortcut, show_twin], api_name=False).then(
        build_architecture, architecture_inputs, architecture_outputs, api_name=False)
    path.gradient.click(lambda: gr.Tabs(selected="gradients"), None, tabs, api_name=False).then(
        gradient_flow, gradients.inputs(), chart.outputs(), api_name=False, concurrency_limit=1,
        concurrency_id="probes").success(show_file, None, chart.numbers, api_name=False)
    path.predict.click(lambda: gr.Tabs(selected="tour"), None, tabs, api_name=False)
