"""The Playground tab (issue #34): a plain net and its residual twin trained live, side by side,
on points in the plane (Start, Pause, Step, Reset), and the depth sweep; laid out and wired
here, with its link (`?tab=playground&data=spiral&blocks=32&...`). The handlers and the API
endpoints are in `ui.playground_handlers`."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.compute.playground_sessions import idle_view
from explorer.core.playground_settings import (
    DATA_SETS,
    MAX_BATCH,
    MAX_BLOCKS,
    MAX_NOISE,
    MAX_POINTS,
    MAX_TRAIN_FRACTION,
    MAX_WIDTH,
    MIN_BLOCKS,
    MIN_TRAIN_FRACTION,
    MIN_WIDTH,
    NORMS,
    PlaygroundSettings,
)
from explorer.studies.playground_sweep import DEFAULT_DEPTHS, DEFAULT_SWEEP_STEPS
from explorer.views import links, playground_charts

from . import playground_handlers as handlers
from .common import CONTROLS, WholeNumber, export_plot, user_errors

EXTRA_FEATURES = [("x²", "x2"), ("y²", "y2"), ("x·y", "xy")]  # beside x and y, which the nets always see
# the timer: a tick every half second would draw at most twice a second, and any delay (the
# request, the drawing) fewer. A tick that comes while the last is drawn waits for it (the tick's
# trigger_mode, always_last) and a tick with nothing new changes nothing, so ticks come often
# and the next redraw starts soon after the last. (Measured here, busy, with whole figures: a
# tick every 0.4 s and every 0.25 s both drew 1.3 to 1.6 snapshots a second, the browser's drawing
# the limit; with updates, UPDATE_JS, 2.4. The snapshots come a little more often than twice a
# second: `playground_task.SNAPSHOT_SECONDS`.)
TICK_SECONDS = 0.25
# a live tick's boundaries, applied to the figure on screen: Plotly.update of the two heatmaps'
# z and the title, where Gradio's own redraw parses the whole figure, reacts and resizes it (most
# of the browser's time a redraw). A figure without the two heatmaps is left to the next whole one.
UPDATE_JS = """(payload) => {
  const plot = document.querySelector('#pg-boundary .js-plotly-plot');
  if (!payload || !plot || !plot.data || !window.Plotly) return;
  const update = JSON.parse(payload);
  const heatmaps = plot.data.flatMap((trace, index) => trace.type === 'heatmap' ? [index] : []);
  if (heatmaps.length !== update.z.length) return;
  window.Plotly.update(plot, {z: update.z}, {'title.text': update.title}, heatmaps);
}"""
INTRO = ("A plain net and its residual twin, the same in every weight but for the shortcuts, train side by "
         "side on the same batches of points in the plane. Press **Start**: each one's decision boundary, "
         "its losses and the gradient reaching each block redraw as they train. Make the nets deep (32 "
         "blocks, say) and watch which one fits the spiral. Each block is dense-norm-ReLU-dense-norm, its "
         "input added back before the last ReLU in the residual net; the **Depth sweep** below trains both "
         "at several depths and draws the final training loss against depth (He et al.'s figure 1, on "
         "points).")


@dataclasses.dataclass
class PlaygroundView:
    """The tab's components."""

    controls: list  # the settings' controls, in `handlers.page_settings`' order
    steps: gr.Number  # steps a Step click trains
    buttons: dict  # "start", "pause", "step", "reset"
    status: gr.Markdown
    charts: list  # the boundaries, the losses, the gradient strip
    update: gr.Textbox  # hidden: the boundaries' update while they train (JSON), applied by UPDATE_JS
    timer: gr.Timer
    drawn: gr.State  # what is drawn: [the view's version (`Playgrounds.view`), when the curves were,
    # `handlers.boundary_key`]
    sweep: list  # depths, steps, button, chart, reading

    def link_fields(self) -> list:
        """What the address bar says of the tab: its settings."""
        return list(self.controls)

    def live_outputs(self) -> list:
        return [self.status, *self.charts, self.update, self.timer, self.drawn]


def _controls(defaults: PlaygroundSettings) -> list:
    with gr.Column(scale=1, min_width=260, elem_id="pg-controls", elem_classes=[CONTROLS]):
        data = gr.Dropdown(list(DATA_SETS), value=defaults.data, label="Data", elem_id="pg-data")
        noise = gr.Slider(0, MAX_NOISE, value=defaults.noise, step=0.01, label="Noise", elem_id="pg-noise")
        split = gr.Slider(MIN_TRAIN_FRACTION, MAX_TRAIN_FRACTION, value=defaults.train_fraction, step=0.05,
                          label="Share of the points trained on", elem_id="pg-split")
        blocks = gr.Slider(MIN_BLOCKS, MAX_BLOCKS, value=defaults.blocks, step=1, label="Blocks per net",
                           elem_id="pg-blocks")
        width = gr.Slider(MIN_WIDTH, MAX_WIDTH, value=defaults.width, step=1, label="Width (units a layer)",
                          elem_id="pg-width")
        extras = gr.CheckboxGroup(EXTRA_FEATURES, value=[f for f in defaults.features if f not in ("x", "y")],
                                  label="Extra features (beside x and y)", elem_id="pg-features")
        norm = gr.Radio(list(NORMS), value=defaults.norm, label="Normalisation", elem_id="pg-norm")
        init = gr.Radio([("default", "default"), ("zero last layer of each branch", "zero")],
                        value=defaults.init, label="Initialisation", elem_id="pg-init")
        optimizer = gr.Radio([("Adam", "adam"), ("SGD, momentum 0.9", "sgd")], value=defaults.optimizer,
                             label="Optimizer", elem_id="pg-optimizer")
        with gr.Row():
            rate = gr.Number(defaults.learning_rate, label="Learning rate", elem_id="pg-rate", min_width=110)
            batch = WholeNumber(value=defaults.batch_size, precision=0, label=f"Batch (≤ {MAX_BATCH})",
                                elem_id="pg-batch", min_width=110)
        with gr.Row():
            seed = WholeNumber(value=defaults.seed, precision=0, label="Seed", elem_id="pg-seed",
                               min_width=110)
            points = WholeNumber(value=defaults.points, precision=0, label=f"Points (≤ {MAX_POINTS})",
                                 elem_id="pg-points", min_width=110)
    return [data, noise, split, blocks, width, extras, norm, init, optimizer, rate, batch, seed, points]


def _live_panel(defaults: PlaygroundSettings):
    with gr.Row(elem_id="pg-buttons"):
        start = gr.Button("Start", variant="primary", elem_id="pg-start", min_width=80)
        pause = gr.Button("Pause", variant="stop", elem_id="pg-pause", min_width=80)
        step = gr.Button("Step", elem_id="pg-step", min_width=80)
        reset = gr.Button("Reset", elem_id="pg-reset", min_width=80)
        steps = WholeNumber(value=10, precision=0, label="Steps a Step", elem_id="pg-steps", min_width=100)
    status = gr.Markdown(playground_charts.status_text(idle_view()), elem_id="pg-status")
    boundary = export_plot("Decision boundaries", "pg-boundary",
                           value=playground_charts.boundary_figure(defaults, None))
    gr.Markdown("Filled points: training; open: test; orange and purple, the two classes. The background "
                "is each net's probability of purple, white at 0.5: its decision boundary.",
                elem_id="pg-caption")
    with gr.Row():
        with gr.Column(min_width=300):
            losses = export_plot("Loss", "pg-loss",
                                 value=playground_charts.loss_figure(idle_view()["history"]))
        with gr.Column(min_width=300):
            strip = export_plot("Gradient norms", "pg-gradients",
                                value=playground_charts.gradient_strip(None))
    buttons = {"start": start, "pause": pause, "step": step, "reset": reset}
    return steps, buttons, status, [boundary, losses, strip]


def _sweep_panel() -> list:
    with gr.Accordion("Depth sweep: final training loss against depth", open=False,
                      elem_id="pg-sweep-section"):
        gr.Markdown("Both nets train the same steps from the same weights at each depth; the chart is the "
                    "training loss where they end (the settings above, but the blocks). It runs on the "
                    "engine: 15 to 20 s with the defaults on two CPU cores (measured: docs/measured.md).")
        with gr.Row():
            depths = gr.Textbox(",".join(map(str, DEFAULT_DEPTHS)), label="Depths (blocks, comma-separated)",
                                elem_id="pg-sweep-depths")
            steps = WholeNumber(value=DEFAULT_SWEEP_STEPS, precision=0, label="Steps at each depth",
                                elem_id="pg-sweep-steps")
        button = gr.Button("Run the depth sweep", elem_id="pg-sweep-run")
        chart = export_plot("Depth sweep", "pg-sweep-plot")
        reading = gr.Markdown(elem_id="pg-sweep-reading")
    return [depths, steps, button, chart, reading]


def build() -> PlaygroundView:
    """Lays out and wires the tab and its API endpoints; returns its components."""
    defaults = PlaygroundSettings()
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=3, min_width=320, elem_id="pg-view"):
            steps, buttons, status, charts = _live_panel(defaults)
        controls = _controls(defaults)
    timer = gr.Timer(TICK_SECONDS, active=False)
    update = gr.Textbox(visible=False)
    view = PlaygroundView(controls, steps, buttons, status, charts, update, timer, gr.State([0, 0.0, None]),
                          _sweep_panel())
    _wire(view)
    return view


def _wire(view: PlaygroundView) -> None:
    live = dict(api_name=False, show_progress="hidden", concurrency_limit=8, concurrency_id="playground")
    outputs = view.live_outputs()
    view.buttons["start"].click(handlers.start_from_page, view.controls, outputs, **live)
    view.buttons["pause"].click(handlers.pause_from_page, None, outputs, **live)
    view.buttons["step"].click(handlers.step_from_page, [view.steps, *view.controls], outputs, **live)
    view.buttons["reset"].click(handlers.reset_from_page, view.controls, outputs, **live)
    # always_last: a tick that comes while the last is drawn is sent as soon as it is done (the
    # default, "once", drops it and waits for the next tick: up to a tick lost each time)
    view.timer.tick(handlers.tick, view.drawn, outputs, trigger_mode="always_last", **live)
    view.update.change(None, view.update, None, js=UPDATE_JS, api_name=False)
    gr.on([control.change for control in view.controls], handlers.preview, view.controls,
          [view.charts[0], view.drawn], trigger_mode="always_last", **live)
    depths, sweep_steps, button, chart, reading = view.sweep
    button.click(handlers.sweep_from_page, [depths, sweep_steps, *view.controls], [chart, reading],
                 api_name=False, concurrency_limit=1, concurrency_id="probes")
    gr.api(handlers.playground_start, api_name="playground_start", concurrency_limit=4)
    gr.api(handlers.playground_status, api_name="playground_status", concurrency_limit=8)
    gr.api(handlers.playground_stop, api_name="playground_stop", concurrency_limit=4)
    gr.api(handlers.playground_step, api_name="playground_step", concurrency_limit=4)
    gr.api(handlers.playground_reset, api_name="playground_reset", concurrency_limit=4)
    gr.api(handlers.playground_sweep, api_name="playground_sweep", concurrency_limit=1,
           concurrency_id="probes")


def warm_default() -> None:
    """Compiles the default pair ahead on the engine (the app's start-up calls it after its
    other warm-ups)."""
    handlers.warm_default()


def on_open(page) -> None:
    """Wires the tab's opening (`page`, its gr.Tab): the default pair compiled ahead again."""
    page.select(handlers.open_tab, None, None, api_name=False, show_progress="hidden")


# ----------------------------------------------------------------------------- the link


def link_values(settings: dict) -> list:
    """The controls' values for settings (`PlaygroundSettings.to_dict()`), in their order."""
    extras = [name for name in settings["features"] if name not in ("x", "y")]
    return [settings["data"], settings["noise"], settings["train_fraction"], settings["blocks"],
            settings["width"], extras, settings["norm"], settings["init"], settings["optimizer"],
            settings["learning_rate"], settings["batch_size"], settings["seed"], settings["points"]]


def link_view(request: gr.Request):
    """Page load: a link to this tab sets its controls (what it asked for that could not be
    used `ui.links` says at the top); nothing trains until Start."""
    params = dict(getattr(request, "query_params", None) or {})
    if params.get("tab") != "playground":
        return [gr.skip()] * len(link_values(PlaygroundSettings().to_dict()))
    return link_values(links.parse(params, []).playground)


@user_errors
def link_query(*values) -> str:
    """The address bar's query for the controls' values (the tab alone while one is not valid,
    or when the controls are not wired)."""
    try:
        return links.playground_query(handlers.page_settings(*values).to_dict())
    except (ValueError, TypeError):
        return links.query("playground", {})


def wire_link(demo: gr.Blocks, view: PlaygroundView) -> None:
    """Opens a link's settings on page load."""
    demo.load(link_view, None, view.controls, api_name=False)
