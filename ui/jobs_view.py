"""The job views the Train and Gradient flow tabs share: starting jobs (one, or a race of
twins), the progress lines, the curves and heatmaps, and the timer that refreshes them."""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
from pathlib import Path

import gradio as gr

from explorer.data.cifar import resolve_source
from explorer.studies import race
from explorer.train.config import PAGE_TEST_IMAGES, page_request
from explorer.views import charts

from . import session
from .common import scratch_path, user_errors

# Jobs from the page test on the first 2,000 test images each epoch: a quick, stable curve
# (`python -m explorer evaluate` gives the figure on all 10,000).
JOB_TEST_IMAGES = PAGE_TEST_IMAGES


def start(depth, version, plains, epochs, subset, request, group=""):
    """Queues one job per entry of `plains` (True: the plain twin), all or none; returns
    (job ids, a notice about the data source or "")."""
    # checked before the source is resolved: that may ask the network (up to 3 s)
    configs = [page_request(depth, version, plain, epochs, subset) for plain in plains]
    source, notice = resolve_source()
    configs = [dataclasses.replace(config, data=source) for config in configs]
    return session.jobs().start_group(configs, owner=session.owner(request), group=group), notice


def job_ids(text, required=True) -> list[str]:
    """The job ids in a comma-separated text box."""
    ids = [part.strip() for part in str(text or "").split(",") if part.strip()]
    if not ids and required:
        raise ValueError("no job yet: press Start")
    return ids


def eta_text(seconds) -> str:
    if seconds is None:
        return "estimating"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _charted(statuses) -> list:
    """What the charts show of each job: its id, finished epochs, logged steps and gradient
    samples."""
    return [[status["id"], len(status["history"].get("epochs", [])),
             len(status["history"].get("steps", {}).get("step", [])),
             len(status["history"].get("grad_norms", {}).get("steps", []))] for status in statuses]


def _before_first_step(status: dict) -> bool:
    """Whether a running job has not trained a step yet: its phase says so, or it has written
    no status at all (its process is starting)."""
    phase = status.get("phase")
    if phase is None:  # no status.json yet, or one from before phases were written
        return not (status.get("step") or status.get("epoch"))
    return phase not in ("training", "testing")


def progress_line(status: dict) -> str:
    """One job's line: state, epoch and step, ETA, its test accuracy once ended, the machine
    and device it trains on, data, error."""
    line = f"**{status['label']}** `{status['id']}`: {status['state']}"
    if status["state"] == "queued":
        line += f", position {status['queue_position']} in the queue"
    elif status["state"] == "running" and _before_first_step(status):
        # before the first step: the process starting, the data, the model, the first trace
        line += f", {status.get('phase') or 'starting Python and TensorFlow'}"
    elif status["state"] == "running":
        current = status.get("current_epoch") or min(status["epoch"] + 1, status["epochs"])
        line += (f", epoch {current}/{status['epochs']}, "
                 f"step {status['step']}/{status['steps_per_epoch'] or '?'}, "
                 f"ETA {eta_text(status['eta_seconds'])}"
                 + (", testing" if status.get("phase") == "testing" else ""))
    tested = [epoch.get("val_accuracy") for epoch in status.get("history", {}).get("epochs", [])]
    if status["state"] in ("done", "stopped") and tested and math.isfinite(tested[-1] or math.nan):
        line += f", test accuracy {tested[-1]:.1%} after epoch {len(tested)}"
    if status["device"]:
        line += f" · {status['device']}" + (f" on {status['machine']}" if status.get("machine") else "")
    if status["data"]:
        data = status["data"]
        line += f" · data: {Path(data).name if '/' in data else data}"
    if status["error"]:
        line += f" · {status['error']}"
    return line


def job_views(job_text, charted=None):
    """Curves, gradient heatmap, progress text and timer state for the job(s) on the page,
    and what the charts show; the charts are `gr.skip()` when that equals `charted` (a
    timer tick between epochs: only the progress line changes, so the page is not sent two
    figures of megabytes every second)."""
    statuses = [session.jobs().status(job_id) for job_id in job_ids(job_text)]
    now = _charted(statuses)
    if now == charted:
        curves = heatmap = gr.skip()
    else:
        curves = charts.training_curves([(status["label"], status["history"]) for status in statuses],
                                        title=f"Training curves (dashed: test, first {JOB_TEST_IMAGES:,} "
                                              "test images)",
                                        residual=[status["residual"] for status in statuses])
        heatmap = charts.gradient_heatmaps(
            [(status["label"], status["history"].get("grad_norms", {})) for status in statuses[-2:]])
    active = any(status["state"] in ("queued", "running") for status in statuses)
    text = "\n\n".join(progress_line(status) for status in statuses)
    reading = charts.training_gradient_reading(  # a race: plain against residual, during training
        [(status["label"], status["residual"], status["history"].get("grad_norms", {}))
         for status in statuses])
    if reading:
        text += "\n\n" + reading
    said = race_reading(statuses)
    if said:
        text += "\n\n" + said
    return curves, heatmap, text, gr.Timer(active=active), now


def race_inputs(statuses) -> dict:
    """What `studies.race` reads of a race's jobs: (label, residual, history) per job, whether
    all have ended, their training images when the status says, the test images and the data."""
    synthetic = any(status.get("data") == "synthetic" for status in statuses)
    return {"runs": [(status["label"], status["residual"], status["history"]) for status in statuses],
            "finished": not any(status["state"] in ("queued", "running") for status in statuses),
            "images": next((status["subset"] for status in statuses if status.get("subset")), None),
            # generated data has 500 test images, fewer than a page's job asks to test on
            "test_images": None if synthetic else JOB_TEST_IMAGES,
            "data": "synthetic" if synthetic else ""}


def race_reading(statuses) -> str:
    """A race's verdict (`studies.race`) and why the residual net's loss starts high, from
    the jobs' statuses; "" unless a plain and a residual job are on the page."""
    inputs = race_inputs(statuses)
    verdict = race.race_verdict(inputs["runs"])
    if verdict is None:
        return ""
    note = race.starting_loss_note(inputs["runs"])
    said = race.race_reading(verdict, images=inputs["images"], test_images=inputs["test_images"],
                             finished=inputs["finished"], data=inputs["data"])
    return said + ("\n\n" + note if note else "")


def latest_race(owner: str) -> list:
    """The statuses of `owner`'s newest race (a group of jobs holding a plain and a residual
    net, from the Train or the Gradient tab): its newest plain and residual job; [] when there
    is none."""
    jobs = session.jobs()
    listed = [job for job in jobs.list(owner) if job.get("group")]  # newest first
    for group in dict.fromkeys(job["group"] for job in listed):
        twins = {}
        for job in listed:
            if job["group"] == group:
                status = jobs.status(job["id"])
                twins.setdefault(status["residual"], status)
        if set(twins) == {True, False}:
            return [twins[False], twins[True]]
    return []


@user_errors
def watch_jobs(job_text):
    """Curves, gradient heatmap and progress text for the job(s) on the page."""
    return job_views(job_text)


def tick_jobs(job_text, charted=None):
    """The Train tab's timer: as `watch_jobs`, but the charts are sent only when a job has
    a new epoch or gradient sample since `charted` (what the page shows), and a bad job id
    (a partial one typed while the timer runs) becomes a line on the page and stops the
    timer, not a pop-up on every tick."""
    try:
        return job_views(job_text, charted)
    except ValueError as err:
        return gr.skip(), gr.skip(), f"*{err}*", gr.Timer(active=False), None


def tick_heatmaps(job_text, charted=None):
    """The Gradient tab's view of jobs: the same heatmaps and progress as the Train tab (the
    heatmaps sent only when they change, see `tick_jobs`); a bad job id becomes a line on
    the page and stops the timer."""
    try:
        _, heatmap, text, timer, charted = job_views(job_text, charted)
    except ValueError as err:
        return gr.skip(), f"*{err}*", gr.Timer(active=False), None
    return heatmap, text, timer, charted


@user_errors
def stop_from_page(job_text, request: gr.Request):
    """Stop button: stops the page's queued or running jobs (those of this browser)."""
    for job_id in job_ids(job_text):
        if session.jobs().status(job_id)["state"] in ("queued", "running"):
            session.jobs().stop(job_id, owner=session.owner(request))
    return watch_jobs(job_text)


@user_errors
def session_jobs(request: gr.Request):
    """This browser's jobs, newest first, as a small Markdown table."""
    jobs = session.jobs().list(session.owner(request))
    if not jobs:
        return "*No jobs in this session yet.*"
    rows = [f"| `{job['id']}` | {job['label']} | {job['epochs']} | {job['state']} |" for job in jobs[:10]]
    return "\n".join(["| job | model | epochs | state |", "| --- | --- | --- | --- |", *rows])


def model_file_name(label: str, job_id: str) -> str:
    """A download's file name from the job's label: "ResNet-20 v1" -> resnet20_v1_job-<id>.keras."""
    slug = re.sub(r"[^a-z0-9_]+", "", label.lower().replace(" ", "_")) or "model"
    return f"{slug}_job-{job_id}.keras"


@user_errors
def download_job_model(job_text, request: gr.Request):
    """The last finished epoch of a job of this browser, looked up by id."""
    job_id = job_ids(job_text)[-1]
    source = session.jobs().checkpoint(job_id, owner=session.owner(request))
    # a copy in the scratch folder: Gradio serves it from there, the run folders stay private;
    # named after the net and the job ("resnet20_v1_job-0569b1c04573.keras")
    path = scratch_path(f"{model_file_name(session.jobs().status(job_id)['label'], job_id)}")
    shutil.copyfile(source, path)
    return gr.File(value=path, visible=True)
