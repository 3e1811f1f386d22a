"""The Train tab: background jobs (one, or a plain-vs-residual race) with live curves, the
degradation view of the shipped runs, this browser's jobs and their models."""

from __future__ import annotations

import gradio as gr

from explorer.shipped import histories, pretrained
from explorer.train import hardware
from explorer.train.config import PAGE_DEFAULTS
from explorer.views import charts

from . import session
from .common import depth_and_version, export_plot, user_errors
from .jobs_view import (
    JOB_TEST_IMAGES,
    download_job_model,
    job_ids,
    session_jobs,
    start,
    stop_from_page,
    tick_jobs,
    watch_jobs,
)


@user_errors
def train_start(depth: int, version: int, plain: bool = False, epochs: int = PAGE_DEFAULTS["epochs"],
                subset: int = PAGE_DEFAULTS["subset"], request: gr.Request = None) -> str:
    """Starts a background training job with the project's recipe; returns its id.

    Args:
        depth: 6n+2 (v1) or 9n+2 (v2).
        version: 1 or 2.
        plain: train the plain twin (no shortcuts).
        epochs: epochs to train (more than EXPLORER_MAX_EPOCHS is refused).
        subset: the first N training images (0: all 50,000).
    """
    return start(depth, version, [plain], epochs, subset, request)[0][0]


@user_errors
def train_status(job_id: str) -> dict:
    """A job's state (queued, running, done, stopped, failed), epoch, step, history, device, error.

    Args:
        job_id: the id train_start returned.
    """
    return session.jobs().status(job_id)


@user_errors
def train_stop(job_id: str, request: gr.Request = None) -> dict:
    """Stops a job of this session; its last finished epoch stays on disk.

    Args:
        job_id: the id train_start returned (in this session).
    """
    return session.jobs().stop(job_id, owner=session.owner(request))


# A single job's defaults: about a minute on 2 CPU cores, with real learning (README, "Measured")
JOB_DEPTH, JOB_EPOCHS, JOB_SUBSET = PAGE_DEFAULTS["depth"], PAGE_DEFAULTS["epochs"], PAGE_DEFAULTS["subset"]
# A race's: a depth where the plain net falls behind its residual twin within a few minutes
# (README, "Measured": plain-56 against ResNet-56, 5,000 images, 2 epochs)
RACE_DEPTH, RACE_EPOCHS, RACE_SUBSET = 56, 2, 5000


def race_defaults(race: bool):
    """Ticking Race sets the depth, epochs and images to the race's defaults; unticking, to a
    single job's (all stay editable)."""
    values = (RACE_DEPTH, RACE_EPOCHS, RACE_SUBSET) if race else (JOB_DEPTH, JOB_EPOCHS, JOB_SUBSET)
    return tuple(gr.update(value=value) for value in values)


@user_errors
def start_from_page(depth, version, plain, epochs, subset, race, request: gr.Request):
    """Start button: one job, or a race (the plain net and its residual twin on the same data,
    same seed, same order)."""
    if race:
        ids, notice = start(depth, version, [True, False], epochs, subset, request, f"race-{depth}-{version}")
    else:
        ids, notice = start(depth, version, [plain], epochs, subset, request)
    if notice:
        gr.Warning(notice)
    return ", ".join(ids), gr.Timer(active=True)


@user_errors
def degradation(job_text=""):
    """Training and test error against epoch of the shipped v1 runs (the paper's Figures 1
    and 6 on our runs), with jobs of this app overlaid; returns the chart and a note on what
    the shipped runs show.

    Args:
        job_text: job ids to overlay, separated by commas; empty for none.
    """
    runs = pretrained.shipped_histories(version=1)  # the paper's Figures 1 and 6 are v1 nets
    note = histories.degradation_reading(runs)
    for job_id in job_ids(job_text, required=False):
        status = session.jobs().status(job_id)
        runs.append({"label": f"{status['label']} (job {job_id}, tested on {JOB_TEST_IMAGES:,} images)",
                     "residual": status["residual"],
                     "epochs": histories.error_history(status["history"]["epochs"])})
    return charts.degradation_figure(runs), note


def _degradation_view(job_text):
    with gr.Accordion("Degradation: plain against residual over training", open=False) as shown:
        gr.Markdown("Training and test error of the shipped runs (He et al., Figures 1 and 6, redone "
                    "on our own runs); the jobs above are overlaid. A longer run of a net shipped "
                    "twice starts hidden: click its name in the legend to draw it.")
        overlay = gr.Button("Show / overlay my jobs", size="sm", elem_id="train-degradation")
        plot = export_plot("Degradation", "train-degradation-plot")
        note = gr.Markdown(elem_id="train-degradation-note")
    overlay.click(degradation, job_text, [plot, note], api_name="degradation")
    shown.expand(degradation, job_text, [plot, note], api_name=False)
    return shown, plot, note


def _jobs_and_download(job_text, timer, start_button):
    with gr.Accordion("Your jobs", open=False, elem_id="train-jobs-accordion") as jobs_accordion:
        jobs_table = gr.Markdown(elem_id="train-jobs-table")
    jobs_accordion.expand(session_jobs, None, jobs_table, api_name=False)
    timer.tick(session_jobs, None, jobs_table, api_name=False, show_progress="hidden")
    start_button.click(session_jobs, None, jobs_table, api_name=False)
    with gr.Row():
        download = gr.Button("Download the last job's model", size="sm", elem_id="train-download")
        model_file = gr.File(label="model.keras", interactive=False, visible=False,  # until a download
                             elem_id="train-model-file")
    download.click(download_job_model, job_text, model_file, api_name=False)


def build():
    """Lays out and wires the tab and its API endpoints (train_start, train_status, train_stop);
    returns the degradation view's accordion, chart and note."""
    gr.Markdown("Train a network in the background (it keeps running if you close the page). "
                "**Race** trains the plain net and its residual twin on the same data, side by side.")
    gr.Markdown(hardware.train_tab_note(), elem_id="train-hardware")  # the device, a job's cost there
    with gr.Row():
        depth, version = depth_and_version(JOB_DEPTH, "train-depth")
        plain = gr.Checkbox(value=False, label="Plain (no shortcuts)",
                            min_width=170,  # whole words on a phone
                            elem_id="train-plain")
        race = gr.Checkbox(value=False, label="Race: plain vs residual", min_width=170, elem_id="train-race")
        epochs = gr.Number(value=JOB_EPOCHS, precision=0, label="Epochs", elem_id="train-epochs")
        subset = gr.Number(value=JOB_SUBSET, precision=0, label="Training images (0: all)",
                           elem_id="train-subset")
    with gr.Row():
        start_button = gr.Button("Start", variant="primary", elem_id="train-start")
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
        job_text = gr.Textbox(label="Job id(s)", elem_id="train-jobs",
                              info="filled by Start; paste an id to watch an earlier job")
    progress = gr.Markdown(elem_id="train-progress")
    curves = export_plot("Curves", "train-curves")
    heatmap = export_plot("Gradient norms", "train-heatmap")
    gr.DeepLinkButton("Share these curves", size="sm")  # the curves as they are, not the job itself
    timer = gr.Timer(1.0, active=False)
    charted = gr.State(None)  # what the page's charts show (see jobs_view.tick_jobs)
    race.input(race_defaults, race, [depth, epochs, subset], api_name=False)
    start_button.click(start_from_page, [depth, version, plain, epochs, subset, race], [job_text, timer],
                       api_name=False)
    views = [curves, heatmap, progress, timer, charted]
    timer.tick(tick_jobs, [job_text, charted], views, api_name=False, show_progress="hidden",
               concurrency_limit=8)
    job_text.submit(watch_jobs, job_text, views, api_name=False)
    stop.click(stop_from_page, job_text, views, api_name=False)
    degradation_view = _degradation_view(job_text)
    _jobs_and_download(job_text, timer, start_button)
    gr.api(train_start, api_name="train_start", concurrency_limit=4)
    gr.api(train_status, api_name="train_status", concurrency_limit=8)
    gr.api(train_stop, api_name="train_stop", concurrency_limit=4)
    return degradation_view  # (its accordion, chart, note): a link's `show=degradation` opens it
