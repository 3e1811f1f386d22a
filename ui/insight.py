"""The Insight lab: views computed on trained checkpoints, one or two side by side: the
lesion study (Veit et al. 2016), the loss landscape (Li et al. 2018), and ImageNet photos."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.compute.engine import engine
from explorer.core import limits
from explorer.data import images
from explorer.data.cifar import resolve_source
from explorer.shipped import pretrained, stored
from explorer.studies import estimates, imagenet, landscape
from explorer.studies import lesion as lesions
from explorer.views import charts

from .common import (
    CONTROLS,
    WholeNumber,
    checked_upload,
    checkpoint_choices,
    checkpoint_dropdown,
    checkpoint_path,
    data_notice,
    export_plot,
    progress_callback,
    refresh_checkpoints,
    refresh_compare,
    twin_name,
    user_errors,
)
from .glossary import linked
from .imports import import_panel


def _names(checkpoint, compare) -> list:
    return [checkpoint] + ([compare] if compare else [])


def _paths(checkpoint, compare, request):
    """The chosen checkpoints' names and files, all looked up before any work."""
    names = _names(checkpoint, compare)
    return names, [checkpoint_path(name, request) for name in names]


@user_errors
def lesion(checkpoint: str, samples: int = 1000, compare: str | None = None, request: gr.Request = None,
           progress=gr.Progress()):
    """Test accuracy with each block deleted in turn (Veit et al. 2016), for one checkpoint or
    two side by side; returns the bar chart and a reading.

    Args:
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        samples: test images to measure on.
        compare: an optional second checkpoint (say the plain twin), named the same way.
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    names, paths = _paths(checkpoint, compare, request)
    lesions.check_lesion_request(samples, paths)  # refused before the data is looked for
    source, notice = resolve_source()
    results = engine().run(lesions.lesion_study, paths, samples, names, source,
                           progress=progress_callback(progress))
    reading = " ".join(filter(None, [lesions.lesion_reading(results), stored.provenance(results)]))
    return charts.lesion_figure(results), data_notice(notice, reading)


@user_errors
def loss_landscape(checkpoint: str, steps: int = 9, samples: int = 128, compare: str | None = None,
                   request: gr.Request = None, progress=gr.Progress()):
    """Loss around trained checkpoints along filter-normalized random directions (Li et al.
    2018): a 1-D slice and a 2-D plane; returns the chart and a reading of it.

    Args:
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        steps: grid points per axis of the plane (the slice has 2 steps - 1).
        samples: test images the loss is computed on.
        compare: an optional second checkpoint, named the same way.
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    names, paths = _paths(checkpoint, compare, request)
    landscape.check_landscape_request(steps, samples, paths)  # refused before the data is looked for
    source, notice = resolve_source()
    if notice:
        gr.Warning(notice)
    results = engine().run(landscape.landscape_study, paths, steps, samples, names, source=source,
                           progress=progress_callback(progress))
    reading = " ".join(filter(None, [landscape.landscape_reading(results), stored.provenance(results)]))
    return charts.landscape_figure(results), linked(reading)


@user_errors
def classify_imagenet(image: gr.FileData | str | None):
    """Top-5 ImageNet classes of a photo with keras.applications ResNet-50 weights (they are
    downloaded once: needs internet, else a clear message).

    Args:
        image: an image file.
    """
    return imagenet.classify_imagenet(images.image_path(image))


def _expected_paths(checkpoint, compare, request) -> list:
    """The checkpoints an expected time is said for; at build time (no request) shipped names
    only, so laying out the page never makes the job manager."""
    if request is not None:
        return _paths(checkpoint, compare, request)[1]
    return [pretrained.resolve(name) for name in _names(checkpoint, compare)]


def lesion_expected(checkpoint, samples, compare, request: gr.Request = None) -> str:
    """The lesion study's expected time here, before it starts ("" until the request is valid:
    the button's click says what is wrong)."""
    try:
        paths = _expected_paths(checkpoint, compare, request)
        samples = lesions.check_lesion_request(samples, paths)
        return estimates.lesion_line(paths, samples, resolve_source()[0])
    except ValueError:
        return ""


def landscape_expected(checkpoint, steps, samples, compare, request: gr.Request = None) -> str:
    """The loss landscape's expected time here, before it starts (see `lesion_expected`)."""
    try:
        paths = _expected_paths(checkpoint, compare, request)
        steps, samples = landscape.check_landscape_request(steps, samples, paths)
        return estimates.landscape_line(paths, steps, samples, resolve_source()[0])
    except ValueError:
        return ""


def follow_twin(first, request: gr.Request = None):
    """A new first checkpoint: compare it with its shipped twin, if any."""
    twin = twin_name(first, request)
    return gr.update(value=twin) if twin else gr.skip()


@dataclasses.dataclass
class CheckpointPair:
    """The checkpoints every study here is run on: one, and an optional second beside it."""

    first: gr.Dropdown
    second: gr.Dropdown  # "Compare with (optional)"
    refresh: gr.Button  # both lists'


@dataclasses.dataclass
class StudyControls:
    """A study's panel: run on the pair, with its own settings (`settings()`, a subclass's)."""

    pair: CheckpointPair
    run: gr.Button
    stop: gr.Button
    expected: gr.Markdown  # its expected time here, before it starts
    plot: gr.Plot
    text: gr.Markdown

    def settings(self) -> list:
        return []

    def inputs(self) -> list:
        """The study's (and its expected time's) inputs: checkpoint, its settings, compare."""
        return [self.pair.first, *self.settings(), self.pair.second]

    def outputs(self) -> list:
        return [self.plot, self.text]


@dataclasses.dataclass
class LesionControls(StudyControls):
    samples: gr.Number

    def settings(self) -> list:
        return [self.samples]


@dataclasses.dataclass
class LandscapeControls(StudyControls):
    steps: gr.Number  # grid points per axis
    samples: gr.Number

    def settings(self) -> list:
        return [self.steps, self.samples]


def pair_controls() -> CheckpointPair:
    choices = checkpoint_choices()
    first_value, second_value = pretrained.default_pair(choices)
    with gr.Row(elem_classes=[CONTROLS]):
        first = checkpoint_dropdown("Checkpoint", "ins-first", first_value, choices, min_width=300)
        second = checkpoint_dropdown("Compare with (optional)", "ins-second", second_value, choices,
                                     info="its plain (or residual) twin when shipped", min_width=300)
        refresh = gr.Button("Refresh lists", size="sm", scale=0, min_width=120)
    import_panel(first, "ins-import")
    return CheckpointPair(first, second, refresh)


def lesion_controls(pair: CheckpointPair) -> LesionControls:
    with gr.Accordion("Lesion study (Veit et al. 2016)", open=True):
        with gr.Row(elem_classes=[CONTROLS]):
            samples = WholeNumber(value=1000, precision=0, label="Test images", elem_id="ins-lesion-samples")
            run = gr.Button("Delete each block in turn", variant="primary", elem_id="ins-lesion")
            stop = gr.Button("Stop", variant="stop", elem_id="ins-lesion-stop")
        expected = gr.Markdown(lesion_expected(pair.first.value, samples.value, pair.second.value),
                               elem_id="ins-lesion-expected", elem_classes=[CONTROLS])  # the defaults
        plot = export_plot("Lesion study", "ins-lesion-plot")
        text = gr.Markdown(elem_id="ins-lesion-text")
    return LesionControls(pair, run, stop, expected, plot, text, samples=samples)


def landscape_controls(pair: CheckpointPair) -> LandscapeControls:
    with gr.Accordion("Loss landscape (Li et al. 2018)", open=False):
        with gr.Row(elem_classes=[CONTROLS]):
            steps = WholeNumber(value=limits.default_landscape_steps(), precision=0,
                                label="Grid steps per axis",
                                info="9: about a minute on 2 CPU cores for ResNet-56; a GPU starts finer")
            samples = WholeNumber(value=128, precision=0, label="Test images")
            run = gr.Button("Compute", elem_id="ins-landscape")
            stop = gr.Button("Stop", variant="stop", elem_id="ins-landscape-stop")
        expected = gr.Markdown(landscape_expected(pair.first.value, steps.value, samples.value,
                                                  pair.second.value), elem_id="ins-landscape-expected",
                               elem_classes=[CONTROLS])
        plot = export_plot("Loss landscape", "ins-landscape-plot")
        text = gr.Markdown(elem_id="ins-landscape-text")
    return LandscapeControls(pair, run, stop, expected, plot, text, steps=steps, samples=samples)


def _wire_study(study: StudyControls, handler, expected, **queue):
    """A study's button (`handler`, its API named in `queue`), its stop, and its expected time,
    said again when an input changes and after each run (its new pace)."""
    inputs = study.inputs()
    gr.on([field.change for field in inputs], expected, inputs, study.expected, api_name=False,
          show_progress="hidden")
    event = study.run.click(handler, inputs, study.outputs(), **queue)
    event.then(expected, inputs, study.expected, api_name=False, show_progress="hidden")
    # frees the page at once; the pass under way ends on its own (a thread cannot be killed)
    study.stop.click(None, None, None, cancels=[event], api_name=False)


def _imagenet_panel():
    with gr.Accordion("ImageNet photo (keras.applications ResNet-50)", open=False):
        with gr.Row():
            photo = checked_upload(gr.File(label="Photo", file_types=["image"], type="filepath"))
            label = gr.Label(num_top_classes=5, label="ImageNet top 5")
        run = gr.Button("Classify photo", elem_id="ins-imagenet")
    run.click(classify_imagenet, photo, label, api_name="classify_imagenet", concurrency_limit=1)


def build() -> tuple[CheckpointPair, LesionControls]:
    """Lays out and wires the tab; returns its checkpoint pair (refreshed when the tab opens)
    and its lesion study (a link to the tab draws it at once)."""
    gr.Markdown("Views computed on trained checkpoints: pick a residual net and, to compare, its "
                "plain twin (shipped checkpoints or models you trained in this session).")
    pair = pair_controls()
    lesion_study = lesion_controls(pair)
    _wire_study(lesion_study, lesion, lesion_expected, api_name="lesion",
                concurrency_limit=1, concurrency_id="probes")
    _wire_study(landscape_controls(pair), loss_landscape, landscape_expected, api_name="loss_landscape",
                concurrency_limit=1, concurrency_id="landscape")
    _imagenet_panel()
    # a pick only: Gradio's Dropdown also sends `input` when it merely loses focus, which
    # replaced a second checkpoint the visitor had chosen
    pair.first.select(follow_twin, pair.first, pair.second, api_name=False)
    pair.refresh.click(refresh_checkpoints, pair.first, pair.first, api_name=False)
    pair.refresh.click(refresh_compare, pair.second, pair.second, api_name=False)
    return pair, lesion_study
