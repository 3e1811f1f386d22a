"""The Paths & signals tab: why residual nets work, measured on a checkpoint or a fresh net at
initialization: path lengths (Veit et al. 2016), signal propagation (Brock et al. 2021) and
shattered gradients (Balduzzi et al. 2017)."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.compute.engine import engine
from explorer.core import limits
from explorer.core.specs import make_spec
from explorer.data.cifar import resolve_source
from explorer.shipped import pretrained
from explorer.studies import paths, probes, shattered, signals, subjects
from explorer.views import path_charts

from .common import (
    WholeNumber,
    checkpoint_choices,
    checkpoint_dropdown,
    checkpoint_path,
    data_notice,
    depth_and_version,
    export_plot,
    progress_callback,
    refresh_checkpoints,
    twin_name,
    user_errors,
)


def _subject(net, checkpoint, depth, version, seed, request) -> subjects.Subject:
    """The net asked for, looked up (a checkpoint by name, never a path) before any work."""
    if subjects.subject_kind(net) == "checkpoint":
        return subjects.trained(checkpoint_path(checkpoint, request))
    return subjects.fresh(depth, version, seed)


@user_errors
def path_lengths(net: str = "init", checkpoint: str | None = None, depth: int = 56, version: int = 1,
                 seed: int = 0, samples: int = 64, subsets: int = 1, method: str = "single",
                 request: gr.Request = None, progress=gr.Progress()):
    """The gradient each path length carries to the input of a residual net (Veit et al. 2016,
    section 6); returns the chart and a reading.

    Args:
        net: "checkpoint" or "init" (a fresh net at initialization from depth, version and seed).
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        depth: 6n+2 (v1) or 9n+2 (v2), for a fresh net.
        version: 1 or 2, for a fresh net.
        seed: seed of a fresh net's weights and of the random paths.
        samples: test images.
        subsets: passes per path length (a random path per image in each).
        method: "single" (one path, Veit et al.'s) or "subnet" (the branches off the path deleted).
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    subject = _subject(net, checkpoint, depth, version, seed, request)
    paths.path_method(method)
    limits.check_paths_request(samples, subsets, subject.spec)  # refused before the data is looked for
    source, notice = resolve_source()
    result = engine().run(paths.path_lengths, subject, samples, subsets, method, source,
                          progress=progress_callback(progress), budget=True)
    return path_charts.paths_figure(result), data_notice(notice, paths.paths_reading(result))


@user_errors
def signal_plot(net: str = "init", checkpoint: str | None = None, depth: int = 56, version: int = 1,
                seed: int = 0, samples: int = 64, request: gr.Request = None, progress=gr.Progress()):
    """Signal propagation per block (Brock, De and Smith 2021): a fresh net and its plain twin
    at initialization, or a checkpoint and its shipped twin if any; returns the chart and a
    reading.

    Args:
        net: "checkpoint" or "init" (a fresh net at initialization from depth, version and seed).
        checkpoint: a shipped checkpoint's name or `job:<id>` of a job of this session.
        depth: 6n+2 (v1) or 9n+2 (v2), for a fresh net.
        version: 1 or 2, for a fresh net.
        seed: seed of a fresh net's weights.
        samples: test images.
    """
    subject = _subject(net, checkpoint, depth, version, seed, request)
    if subject.at_init:
        nets = [subject, subject.twin()]
    else:
        twin = twin_name(checkpoint, request)
        nets = [subject] + ([subjects.trained(checkpoint_path(twin, request))] if twin else [])
    samples = limits.check_signals_request(samples, [s.spec for s in nets])
    source, notice = resolve_source()
    report = progress_callback(progress)
    results = [engine().run(signals.signal_propagation, s, samples, source, progress=report) for s in nets]
    return path_charts.signals_figure(results), data_notice(notice, signals.signals_reading(results))


@user_errors
def shattered_gradients(depths: str = "20, 56", version: int = 1, points: int = 256, seed: int = 0,
                        progress=gr.Progress()):
    """The gradient along a line of inputs and its autocorrelation, plain against residual at
    a few depths, at initialization (Balduzzi et al. 2017); returns the chart and a reading.

    Args:
        depths: 1 to 8 depths valid for `version`, separated by commas.
        version: 1 or 2.
        points: points along the line between two test images.
        seed: seed of the nets' weights.
    """
    version, depth_list = probes.sweep_depths(version, depths)
    specs = [subjects.fresh(d, version, seed, plain).spec for d in depth_list for plain in (False, True)]
    limits.check_shattered_request(points, specs)  # refused before the data is looked for
    source, notice = resolve_source()
    result = engine().run(shattered.shattered, depth_list, version, points, seed, source,
                          progress=progress_callback(progress), budget=True)
    return path_charts.shattered_figure(result), data_notice(notice, shattered.shattered_reading(result))


@dataclasses.dataclass
class SubjectControls:
    """The net the tab measures: a checkpoint, or a fresh net from depth, version and seed."""

    net: gr.Radio  # "checkpoint" or "init"
    checkpoint: gr.Dropdown
    depth: gr.Number
    version: gr.Radio
    seed: gr.Number
    refresh: gr.Button  # the checkpoint list's

    def inputs(self) -> list:
        """The first inputs of `path_lengths` and `signal_plot`: net, checkpoint, depth, version, seed."""
        return [self.net, self.checkpoint, self.depth, self.version, self.seed]


def subject_controls() -> SubjectControls:
    choices = checkpoint_choices()
    with gr.Row():
        net = gr.Radio([("a checkpoint", "checkpoint"), ("a fresh net at initialization", "init")],
                       value="checkpoint" if choices else "init", label="Measure", elem_id="paths-net")
        checkpoint = checkpoint_dropdown("Checkpoint", "paths-checkpoint",
                                         pretrained.default_pair(choices)[0], choices,
                                         min_width=280)  # a line of its own on a phone: the name whole
        depth, version = depth_and_version(56, "paths-depth")
        seed = WholeNumber(value=0, precision=0, label="Seed")
        refresh = gr.Button("Refresh list", size="sm", scale=0, min_width=120)
    return SubjectControls(net, checkpoint, depth, version, seed, refresh)


def _paths_panel(subject: SubjectControls):
    with gr.Accordion("Path lengths (Veit et al. 2016)", open=True):
        with gr.Row():
            samples = WholeNumber(value=64, precision=0, label="Test images")
            subsets = WholeNumber(value=1, precision=0, label="Passes per length",
                                info="each image takes a random path of its own in each pass")
            method = gr.Radio([("one path (Veit et al.)", "single"), ("the k-block net left", "subnet")],
                              value="single", label="Path measured")
            run = gr.Button("Measure path lengths", variant="primary", elem_id="paths-run")
        plot = export_plot("Path lengths", "paths-plot")
        text = gr.Markdown(elem_id="paths-text")
    run.click(path_lengths, [*subject.inputs(), samples, subsets, method], [plot, text], api_name="paths",
              concurrency_limit=1, concurrency_id="probes")


SIGNALS_NETS = [("a fresh v2 net and its plain twin at initialization (the paper's setting)", "paper"),
                ("the net chosen above", "chosen")]


def signals_subject(which, net, checkpoint, depth, version, seed):
    """The net the signals panel measures: Brock et al.'s claim is about pre-activation (v2)
    nets at initialization, so that is where the panel opens (the depth above where it is
    9n+2, else 56); "chosen" is the tab's subject."""
    if which != "paper":
        return net, checkpoint, depth, version, seed
    try:
        depth = make_spec(depth, 2).depth
    except ValueError:
        depth = 56
    return "init", checkpoint, depth, 2, seed


def _signals_panel(subject: SubjectControls):
    with gr.Accordion("Signal propagation (Brock, De and Smith 2021)", open=False):
        with gr.Row():
            which = gr.Radio(SIGNALS_NETS, value="paper", label="Measure", elem_id="signals-which")
            samples = WholeNumber(value=64, precision=0, label="Test images", elem_id="signals-samples")
            run = gr.Button("Plot signal propagation", elem_id="signals-run")
        plot = export_plot("Signal propagation", "signals-plot")
        text = gr.Markdown(elem_id="signals-text")
    # the net measured, as `signals_subject` picks it: hidden inputs of the API's /signals, which
    # measures the subject as given
    measured = [gr.Textbox(visible=False), gr.Textbox(visible=False), WholeNumber(visible=False, precision=0),
                WholeNumber(visible=False, precision=0), WholeNumber(visible=False, precision=0)]
    run.click(signals_subject, [which, *subject.inputs()], measured, api_name=False).then(
        signal_plot, [*measured, samples], [plot, text], api_name="signals", concurrency_limit=1,
        concurrency_id="probes")


def _shattered_panel(subject: SubjectControls):
    """Fresh nets only: the subject's version and seed."""
    with gr.Accordion("Shattered gradients (Balduzzi et al. 2017)", open=False):
        gr.Markdown("Fresh nets at initialization, each residual net beside its plain twin.")
        with gr.Row():
            depths = gr.Textbox(value="20, 56", label="Depths", info="110 adds about a minute on 2 CPU cores",
                                elem_id="shattered-depths")
            points = WholeNumber(value=256, precision=0, label="Points along the line",
                                 elem_id="shattered-points")
            run = gr.Button("Measure along a line", elem_id="shattered-run")
        plot = export_plot("Shattered gradients", "shattered-plot")
        text = gr.Markdown(elem_id="shattered-text")
    run.click(shattered_gradients, [depths, subject.version, points, subject.seed], [plot, text],
              api_name="shattered", concurrency_limit=1, concurrency_id="probes")


def build():
    """Lays out and wires the tab; returns its checkpoint dropdown (refreshed when the tab opens)."""
    gr.Markdown("Why residual nets train: which paths carry the gradient, how the signal's scale grows "
                "block by block, and how the gradient changes along a line of inputs. Measure a trained "
                "checkpoint or a fresh net at initialization.")
    subject = subject_controls()
    _paths_panel(subject)
    _signals_panel(subject)
    _shattered_panel(subject)
    subject.refresh.click(refresh_checkpoints, subject.checkpoint, subject.checkpoint, api_name=False)
    return subject.checkpoint
