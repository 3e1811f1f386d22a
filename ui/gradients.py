"""The Gradient flow tab: per-layer gradient norms of a plain net and its residual twin at
initialization, a depth sweep, and heatmaps over training (from a job or a short race)."""

from __future__ import annotations

import dataclasses
import json
import threading
import warnings

import gradio as gr

from explorer.compute.engine import Step, engine
from explorer.core.caches import BoundedCache
from explorer.data.cifar import resolve_source
from explorer.studies import probes
from explorer.views import charts

from .common import (
    WholeNumber,
    data_notice,
    depth_and_version,
    export_plot,
    progress_callback,
    scratch_path,
    user_errors,
)
from .glossary import linked
from .jobs_view import start, stop_from_page, tick_heatmaps


@user_errors
def gradient_flow(depth: int, version: int, batch_size: int = 64, seed: int = 0, view: str = "kernels",
                  progress=gr.Progress()):
    """Per-layer gradient norms of a plain net and its residual twin (same initial weights,
    same batch); returns the chart, a reading of it, and the numbers as a JSON file.

    Args:
        depth: 6n+2 (v1) or 9n+2 (v2), up to 2000.
        version: 1 or 2.
        batch_size: images in the batch (capped for very deep nets).
        seed: seed of the initial weights and of the batch.
        view: "kernels" (per weight layer) or "blocks" (per block output).
    """
    charts.check_flow_view(view)
    # checked before any wait
    depth, version, batch_size, seed = probes.check_request(depth, version, batch_size, seed)
    source, notice = resolve_source()  # offline: generated data at once, not a stalled download
    flow = measure_flow(depth, version, batch_size, seed, source, progress_callback(progress))
    path = scratch_path(f"gradients_{depth}_v{version}.json")
    with open(path, "w") as f:
        json.dump(flow.to_dict(), f)
    note = probes.batch_note(depth, batch_size, flow.batch_size)  # a deep net gets fewer images: why
    reading = probes.reading(flow) + (f"\n\n{note}" if note else "")
    return charts.flow_figure(flow, view), linked(data_notice(notice or flow.notice, reading)), path


def measure_flow(depth, version, batch_size, seed, source, progress=None, warm=False):
    """`probes.gradient_flow` on the engine, its two passes at once: the residual net's and the
    plain twin's halves (`probes.probe_twin`) as two tasks, each on the worker that keeps its
    twins if that worker is free, joined here (`probes.combine`). A warm-up (`warm`) sends each
    half as two steps, the twins' build and then the pass, so a visitor's request waits for
    one of them at most (`Engine.warm_up`)."""
    key = (depth, version, batch_size, seed, source)
    known = _FLOWS.get(key)
    if known is not None:  # the same numbers (another view of them, the default view opened)
        return known
    work = engine()
    if warm:
        request = (depth, version, batch_size, seed, source)
        chains = [work.warm_up([Step(probes.keep_twins, (depth, version)),
                                Step(probes.probe_twin, (*request, residual))],
                               home=("twins", depth, version, residual))
                  for residual in (True, False)]
        halves = [chain.result() for chain in chains]
    else:
        futures = [work.submit(probes.probe_twin, depth, version, batch_size, seed, source, residual,
                               progress=progress if residual else None,
                               home=("twins", depth, version, residual))
                   for residual in (True, False)]
        halves = [work.result(future) for future in futures]
    flow = probes.combine(*halves)
    _FLOWS.put(key, flow)
    return flow


_FLOWS = BoundedCache(32)  # measured flows: pure results of their arguments


# What the tab opens on: measured at start-up by a warm-up task (`warm_default_view`), so the
# first view is drawn when the tab opens instead of after a click and a build of two nets.
DEFAULT_VIEW = {"depth": 110, "version": 1, "batch_size": 64, "seed": 0}
_default_ready = threading.Event()


def warm_default_view() -> threading.Thread:
    """Measures the default view as a warm-up task (the app's start-up calls it): a visitor's
    request outranks it."""
    def measure():
        try:
            measure_flow(**DEFAULT_VIEW, source=resolve_source()[0], warm=True)
            _default_ready.set()
        except Exception as err:  # noqa: BLE001 - the button still measures; only the head start is lost
            warnings.warn(f"the gradient tab's default view was not measured at start-up: {err}",
                          stacklevel=1)

    thread = threading.Thread(target=measure, name="warm-gradient-view", daemon=True)
    thread.start()
    return thread


def default_view_if_ready(depth, version, batch_size, seed, view):
    """Opening the tab: the default view, drawn at once when it was measured at start-up and
    the inputs still ask for it; otherwise nothing changes."""
    asked = {"depth": depth, "version": version, "batch_size": batch_size, "seed": seed}
    if not _default_ready.is_set() or asked != DEFAULT_VIEW:
        return gr.skip(), gr.skip(), gr.skip()
    return gradient_flow(depth, version, batch_size, seed, view)


@user_errors
def depth_sweep(version: int = 1, depths: str = "20, 56, 110, 218", progress=gr.Progress()):
    """First-layer and median gradient norm against depth, plain and residual (at
    initialization, the same weights and batch for each pair); returns the chart.

    Args:
        version: 1 or 2.
        depths: 1 to 8 depths valid for `version`, separated by commas.
    """
    probes.sweep_depths(version, depths)  # bad values refused before any wait
    sweep = engine().run(probes.depth_sweep, version, depths, source=resolve_source()[0],
                         progress=progress_callback(progress))
    return charts.sweep_figure(sweep)


# The race's own depths: at 20 its first heatmap column is drawn within about 20 s of the click
# on 2 CPU cores (bench/first_point.py measures the Train tab's equivalent); deeper, minutes.
RACE_DEPTHS = {1: [20, 32, 44, 56, 110], 2: [29, 56, 110]}


@user_errors
def start_race_for_heatmaps(depth, version, request: gr.Request):
    """Gradient tab: a short race whose per-layer gradient heatmaps fill in as it trains."""
    ids, _ = start(depth, version, [True, False], 2, 2048, request, group="gradients")
    return ", ".join(ids), gr.Timer(active=True)


@user_errors
def stop_race(job_text, request: gr.Request):
    """Gradient tab: stops the race's jobs (those of this browser); their heatmaps stay."""
    _, heatmap, text, timer, charted = stop_from_page(job_text, request)
    return heatmap, text, timer, charted


def race_depths(version):
    """The race's depth choices for a version, the first (quickest) chosen."""
    depths = RACE_DEPTHS.get(int(version) if str(version) in ("1", "2") else 1)
    return gr.update(choices=depths, value=depths[0])


def _sweep():
    with gr.Accordion("Depth sweep", open=False):
        with gr.Row():
            version = gr.Radio([1, 2], value=1, label="Version")
            depths = gr.Textbox(value="20, 56, 110, 218", label="Depths")
            run = gr.Button("Sweep", elem_id="grad-sweep")
        plot = export_plot("Gradient norm against depth", "grad-sweep-plot")
    run.click(depth_sweep, [version, depths], plot, api_name="depth_sweep",
              concurrency_limit=1, concurrency_id="probes")


@dataclasses.dataclass
class FlowControls:
    """What the measured view is asked for, in `gradient_flow`'s order (a link sets them)."""

    depth: gr.Number
    version: gr.Radio
    batch: gr.Number
    seed: gr.Number
    view: gr.Radio  # per weight layer or per block output

    def inputs(self) -> list:
        """`gradient_flow`'s inputs: depth, version, batch, seed, view."""
        return [self.depth, self.version, self.batch, self.seed, self.view]


@dataclasses.dataclass
class FlowChart:
    """What `gradient_flow` draws: the chart, its reading and the numbers' file."""

    plot: gr.Plot
    reading: gr.Markdown
    numbers: gr.File  # hidden until there is a file in it (`show_file`)

    def outputs(self) -> list:
        return [self.plot, self.reading, self.numbers]


@dataclasses.dataclass
class RaceControls:
    """Over training: the jobs whose heatmaps are drawn, and the short race that makes some."""

    jobs: gr.Textbox  # job ids, pasted or the race's
    depth: gr.Dropdown  # the race's
    start: gr.Button
    stop: gr.Button
    status: gr.Markdown
    heat: gr.Plot
    timer: gr.Timer
    charted: gr.State  # what the heatmaps show (see jobs_view.tick_jobs)

    def drawn(self) -> list:
        """What a tick (and the stop) redraws: the heatmaps, the status, the timer, what is charted."""
        return [self.heat, self.status, self.timer, self.charted]


def flow_controls() -> FlowControls:
    with gr.Row(elem_id="grad-controls"):
        depth, version = depth_and_version(DEFAULT_VIEW["depth"], "grad-depth")
        batch = WholeNumber(value=DEFAULT_VIEW["batch_size"], precision=0, label="Batch size",
                            elem_id="grad-batch")
        seed = WholeNumber(value=DEFAULT_VIEW["seed"], precision=0, label="Seed", elem_id="grad-seed")
        view = gr.Radio([("per weight layer", "kernels"), ("per block output", "blocks")],
                        value="kernels", label="View")
    return FlowControls(depth, version, batch, seed, view)


def race_controls() -> RaceControls:
    with gr.Accordion("Over training", open=False):
        gr.Markdown("Paste job ids from the Train tab, or start a short plain-vs-residual race here.")
        with gr.Row():
            jobs = gr.Textbox(label="Job id(s)", elem_id="grad-jobs")
            depth = gr.Dropdown(RACE_DEPTHS[1], value=RACE_DEPTHS[1][0], label="Race depth",
                                info="20: a first column in about 20 s here; deeper: minutes",
                                elem_id="grad-race-depth")
            start_race = gr.Button("Start a short race (2 epochs)", elem_id="grad-race")
            stop = gr.Button("Stop", variant="stop", elem_id="grad-race-stop")
        status = gr.Markdown()
        heat = export_plot("Gradient norms over training", "grad-heat")
    timer = gr.Timer(1.5, active=False)
    return RaceControls(jobs, depth, start_race, stop, status, heat, timer, gr.State(None))


def _over_training(version):
    race = race_controls()
    version.change(race_depths, version, race.depth, api_name=False)
    race.start.click(start_race_for_heatmaps, [race.depth, version], [race.jobs, race.timer], api_name=False)
    race.stop.click(stop_race, race.jobs, race.drawn(), api_name=False)
    race.jobs.submit(tick_heatmaps, race.jobs, race.drawn(), api_name=False)
    race.timer.tick(tick_heatmaps, [race.jobs, race.charted], race.drawn(), api_name=False,
                    show_progress="hidden")


def build() -> tuple[FlowControls, FlowChart]:
    """Lays out and wires the tab; returns what its view is asked for and what it draws (a link
    can set and measure them)."""
    gr.Markdown("The same initial weights and the same batch of images through a plain net and its "
                "residual twin: how large is the gradient that reaches each layer?")
    controls = flow_controls()
    run = gr.Button("Measure", variant="primary", elem_id="grad-run")
    plot = export_plot("Gradient norm per layer", "grad-plot")
    chart = FlowChart(plot, gr.Markdown(elem_id="grad-reading"),
                      gr.File(label="The numbers (JSON)", interactive=False, visible=False))  # until measured
    run.click(gradient_flow, controls.inputs(), chart.outputs(), api_name="gradient_flow",
              concurrency_limit=1, concurrency_id="probes").success(show_file, None, chart.numbers,
                                                                    api_name=False)
    _sweep()
    _over_training(controls.version)
    return controls, chart


def on_open(page, controls: FlowControls, chart: FlowChart) -> None:
    """Wires the tab's opening (`page`, its gr.Tab) to draw the default view measured at start-up."""
    page.select(default_view_if_ready, controls.inputs(), chart.outputs(), api_name=False,
                show_progress="hidden").success(show_file, None, chart.numbers, api_name=False)


def show_file():
    """The numbers' file box, shown once there is a file in it."""
    return gr.File(visible=True)
