"""ResNet Explorer: the Gradio page. Layout and event wiring only; the work is in `explorer/`.

Run `python app.py` (http://127.0.0.1:7860). Set EXPLORER_HOST=0.0.0.0 to serve beyond this
machine (Docker, Hugging Face Spaces do this for you).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gradio as gr

from explorer import charts, graph, inference, insight, probes
from explorer.data import resolve_source
from explorer.jobs import JobManager
from explorer.models import checkpoint_spec
from explorer.specs import MAX_DEPTH, as_bool, make_spec, whole_number
from explorer.training import MAX_EPOCHS, TrainConfig

# The one piece of shared state: background jobs outlive requests and sessions by design.
JOBS = JobManager(
    Path(os.environ.get("EXPLORER_RUNS", "runs/app")),
    max_running=int(os.environ.get("EXPLORER_MAX_JOBS", "2")),  # a race needs two
    max_epochs=int(os.environ.get("EXPLORER_MAX_EPOCHS", "50")),
    max_seconds=float(os.environ.get("EXPLORER_JOB_SECONDS", "3600")),
    max_per_owner=int(os.environ.get("EXPLORER_JOBS_PER_USER", "4")),  # two races
    max_kept=int(os.environ.get("EXPLORER_KEEP_JOBS", "200")),
)

# Jobs from the page test on the first 2,000 test images each epoch: a quick, stable curve
# (`python -m explorer evaluate` gives the figure on all 10,000).
JOB_TEST_IMAGES = 2000

EXPAND_CHOICES = [("blocks (collapsed)", "none"), ("stage 1 layers", "stage1"),
                  ("stage 2 layers", "stage2"), ("stage 3 layers", "stage3"),
                  ("stage 4 layers (ImageNet)", "stage4"), ("every layer", "all")]


@functools.lru_cache(maxsize=1)
def _scratch_folder() -> Path:
    """This process's own folder for downloads (mode 0700, a fresh name: never a folder or
    link another user of a shared /tmp planted)."""
    return Path(tempfile.mkdtemp(prefix="resnet-explorer-downloads-"))


def _clean_scratch() -> Path:
    """The scratch folder, its files older than an hour removed (Gradio has copied them into
    its own cache by then)."""
    folder = _scratch_folder()
    for old in folder.iterdir():
        try:
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink()
        except OSError:
            pass
    return folder


def _scratch_path(name: str) -> str:
    """A new file path in the app's scratch folder for a download."""
    return str(_clean_scratch() / f"{uuid.uuid4().hex[:8]}_{name}")


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
    rows = [[stage["stage"], stage["blocks"], stage["output_shape"], stage["params"], stage["flops"]]
            for stage in summary["stages"]]
    totals = summary["totals"]
    rows.append(["total", totals["blocks"], "", totals["params"], totals["flops"]])
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
    from explorer.models import build_model

    spec = make_spec(depth, version, family=family, residual=residual, shortcut=shortcut)
    path = _clean_scratch() / f"{spec.slug}.keras"  # one file per architecture (up to 243 MB)
    if not path.exists():
        partial = _scratch_path(f"{spec.slug}.partial.keras")
        build_model(spec).save(partial)
        os.replace(partial, path)  # whole or absent: a concurrent request never sees half
    return str(path)


# Page sessions -> their browser's owner token. Gradio gives a page a new session_hash on
# every load, so a reload (or closing the page, which the Train tab invites) would lose its
# jobs: the page keeps a random token in localStorage (gr.BrowserState) and `claim_owner`
# maps each new session to it. Bounded, oldest first out; API clients keep their session.
_OWNERS: collections.OrderedDict[str, str] = collections.OrderedDict()
_OWNERS_LOCK = threading.Lock()
MAX_OWNER_SESSIONS = 10_000


def _session(request) -> str:
    """Who owns jobs for this request: the browser's token for a page, else the session."""
    session = getattr(request, "session_hash", None) or "anonymous"
    with _OWNERS_LOCK:
        return _OWNERS.get(session, session)


def claim_owner(token, request: gr.Request):
    """Page load: this session acts for the browser's owner token (made here the first time)."""
    if not (isinstance(token, str) and re.fullmatch(r"[0-9a-f]{32}", token)):
        token = uuid.uuid4().hex
    session = getattr(request, "session_hash", None)
    if session:
        with _OWNERS_LOCK:
            _OWNERS[session] = token
            _OWNERS.move_to_end(session)
            while len(_OWNERS) > MAX_OWNER_SESSIONS:
                _OWNERS.popitem(last=False)
    return token


def _start(depth, version, plains, epochs, subset, request, group=""):
    """Queues one job per entry of `plains` (True: the plain twin), all or none; returns
    (job ids, a notice about the data source or "")."""
    configs = [TrainConfig(
        depth=whole_number(depth, "depth", 1, MAX_DEPTH), version=whole_number(version, "version", 1, 2),
        residual=not as_bool(plain, "plain"), epochs=whole_number(epochs, "epochs", 1, MAX_EPOCHS),
        subset=whole_number(subset, "subset", 0, 50_000), test_subset=JOB_TEST_IMAGES,
        grad_every=10, seed=0).validate() for plain in plains]
    source, notice = resolve_source()  # after the checks: it may ask the network (up to 3 s)
    configs = [dataclasses.replace(config, data=source) for config in configs]
    return JOBS.start_group(configs, owner=_session(request), group=group), notice


@user_errors
def train_start(depth: int, version: int, plain: bool = False, epochs: int = 3, subset: int = 5000,
                request: gr.Request = None) -> str:
    """Starts a background training job with the project's recipe; returns its id.

    Args:
        depth: 6n+2 (v1) or 9n+2 (v2).
        version: 1 or 2.
        plain: train the plain twin (no shortcuts).
        epochs: epochs to train (more than EXPLORER_MAX_EPOCHS is refused).
        subset: the first N training images (0: all 50,000).
    """
    return _start(depth, version, [plain], epochs, subset, request)[0][0]


@user_errors
def train_status(job_id: str) -> dict:
    """A job's state (queued, running, done, stopped, failed), epoch, step, history, device, error.

    Args:
        job_id: the id train_start returned.
    """
    return JOBS.status(job_id)


@user_errors
def train_stop(job_id: str, request: gr.Request = None) -> dict:
    """Stops a job of this session; its last finished epoch stays on disk.

    Args:
        job_id: the id train_start returned (in this session).
    """
    return JOBS.stop(job_id, owner=_session(request))


@user_errors
def start_from_page(depth, version, plain, epochs, subset, race, request: gr.Request):
    """Start button: one job, or a race (the plain net and its residual twin on the same data,
    same seed, same order)."""
    if race:
        ids, notice = _start(depth, version, [True, False], epochs, subset, request, f"race-{depth}-{version}")
    else:
        ids, notice = _start(depth, version, [plain], epochs, subset, request)
    if notice:
        gr.Warning(notice)
    return ", ".join(ids), gr.Timer(active=True)


def _job_ids(text, required=True):
    ids = [part.strip() for part in str(text or "").split(",") if part.strip()]
    if not ids and required:
        raise ValueError("no job yet: press Start")
    return ids


def _eta_text(seconds):
    if seconds is None:
        return "estimating"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _charted(statuses) -> list:
    """What the charts show of each job: its id, finished epochs and gradient samples."""
    return [[status["id"], len(status["history"].get("epochs", [])),
             len(status["history"].get("grad_norms", {}).get("steps", []))] for status in statuses]


def _job_views(job_text, charted=None):
    """Curves, gradient heatmap, progress text and timer state for the job(s) on the page,
    and what the charts show; the charts are `gr.skip()` when that equals `charted` (a
    timer tick between epochs: only the progress line changes, so the page is not sent two
    figures of megabytes every second)."""
    statuses = [JOBS.status(job_id) for job_id in _job_ids(job_text)]
    now = _charted(statuses)
    if now == charted:
        curves = heatmap = gr.skip()
    else:
        curves = charts.training_curves([(status["label"], status["history"]) for status in statuses],
                                        title=f"Training curves (dashed: test, first {JOB_TEST_IMAGES:,} test images)")
        heatmap = charts.gradient_heatmaps(
            [(status["label"], status["history"].get("grad_norms", {})) for status in statuses[-2:]])
    lines = []
    for status in statuses:
        line = f"**{status['label']}** `{status['id']}`: {status['state']}"
        if status["state"] == "queued":
            line += f", position {status['queue_position']} in the queue"
        elif status["state"] == "running":
            line += (f", epoch {min(status['epoch'] + 1, status['epochs'])}/{status['epochs']}, "
                     f"step {status['step']}/{status['steps_per_epoch'] or '?'}, "
                     f"ETA {_eta_text(status['eta_seconds'])}")
        if status["device"]:
            line += f" · {status['device']}"
        if status["data"]:
            data = status["data"]
            line += f" · data: {Path(data).name if '/' in data else data}"
        if status["error"]:
            line += f" · {status['error']}"
        lines.append(line)
    active = any(status["state"] in ("queued", "running") for status in statuses)
    return curves, heatmap, "\n\n".join(lines), gr.Timer(active=active), now


@user_errors
def watch_jobs(job_text):
    """Curves, gradient heatmap and progress text for the job(s) on the page."""
    return _job_views(job_text)


def tick_jobs(job_text, charted=None):
    """The Train tab's timer: as `watch_jobs`, but the charts are sent only when a job has
    a new epoch or gradient sample since `charted` (what the page shows), and a bad job id
    (a partial one typed while the timer runs) becomes a line on the page and stops the
    timer, not a pop-up on every tick."""
    try:
        return _job_views(job_text, charted)
    except ValueError as err:
        return gr.skip(), gr.skip(), f"*{err}*", gr.Timer(active=False), None


@user_errors
def session_jobs(request: gr.Request):
    """This session's jobs, newest first, as a small Markdown table."""
    jobs = JOBS.list(_session(request))
    if not jobs:
        return "*No jobs in this session yet.*"
    rows = [f"| `{job['id']}` | {job['label']} | {job['epochs']} | {job['state']} |" for job in jobs[:10]]
    return "\n".join(["| job | model | epochs | state |", "| --- | --- | --- | --- |", *rows])


@user_errors
def degradation(job_text=""):
    """Training and test error against epoch of the shipped v1 runs (the paper's Figures 1
    and 6 on our runs), with jobs of this app overlaid; returns the chart and a note on what
    the shipped runs show.

    Args:
        job_text: job ids to overlay, separated by commas; empty for none.
    """
    runs = inference.shipped_histories(version=1)  # the paper's Figures 1 and 6 are v1 nets
    note = inference.degradation_reading(runs)
    for job_id in _job_ids(job_text, required=False):
        status = JOBS.status(job_id)
        runs.append({"label": f"{status['label']} (job {job_id}, tested on {JOB_TEST_IMAGES:,} images)",
                     "residual": status["residual"],
                     "epochs": inference.error_history(status["history"]["epochs"])})
    return charts.degradation_figure(runs), note


@user_errors
def download_job_model(job_text, request: gr.Request):
    """The last finished epoch of a job of this session, looked up by id."""
    job_id = _job_ids(job_text)[-1]
    source = JOBS.checkpoint(job_id, owner=_session(request))
    # a copy in the scratch folder: Gradio serves it from there, the run folders stay private
    path = _scratch_path(f"{job_id}.keras")
    shutil.copyfile(source, path)
    return gr.File(value=path, visible=True)


@user_errors
def stop_from_page(job_text, request: gr.Request):
    for job_id in _job_ids(job_text):
        if JOBS.status(job_id)["state"] in ("queued", "running"):
            JOBS.stop(job_id, owner=_session(request))
    return watch_jobs(job_text)


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
    depth = whole_number(depth, "depth", 1, MAX_DEPTH)
    version = whole_number(version, "version", 1, 2)
    make_spec(depth, version)  # refuse bad depths and views before any work
    charts.check_flow_view(view)
    source, notice = resolve_source()  # offline: generated data at once, not a stalled download
    flow = probes.gradient_flow(depth, version, whole_number(batch_size, "batch size", 1, 512),
                                whole_number(seed, "seed", 0, 2**31 - 1), source,
                                progress=lambda fraction, text: progress(fraction, desc=text))
    path = _scratch_path(f"gradients_{depth}_v{version}.json")
    with open(path, "w") as f:
        json.dump(flow.to_dict(), f)
    reading = probes.reading(flow)
    if notice or flow.notice:
        reading = f"*{notice or flow.notice}*\n\n" + reading
    return charts.flow_figure(flow, view), reading, path


@user_errors
def depth_sweep(version: int = 1, depths: str = "20, 56, 110, 218", progress=gr.Progress()):
    """First-layer and median gradient norm against depth, plain and residual (at
    initialization, the same weights and batch for each pair); returns the chart.

    Args:
        version: 1 or 2.
        depths: 1 to 8 depths valid for `version`, separated by commas.
    """
    version = whole_number(version, "version", 1, 2)
    values = [whole_number(part, "depth", 1, MAX_DEPTH) for part in str(depths).replace(";", ",").split(",")
              if part.strip()]
    if not 1 <= len(values) <= 8:
        raise ValueError("give between 1 and 8 depths, separated by commas")
    for depth in values:
        make_spec(depth, version)
    sweep = probes.depth_sweep(version, values, source=resolve_source()[0],
                               progress=lambda fraction, text: progress(fraction, desc=text))
    return charts.sweep_figure(sweep)


def tick_heatmaps(job_text, charted=None):
    """The Gradient tab's view of jobs: the same heatmaps and progress as the Train tab (the
    heatmaps sent only when they change, see `tick_jobs`); a bad job id becomes a line on
    the page and stops the timer."""
    try:
        _, heatmap, text, timer, charted = _job_views(job_text, charted)
    except ValueError as err:
        return gr.skip(), f"*{err}*", gr.Timer(active=False), None
    return heatmap, text, timer, charted


@user_errors
def start_race_for_heatmaps(depth, version, request: gr.Request):
    """Gradient tab: a short race whose per-layer gradient heatmaps fill in as it trains."""
    ids, _ = _start(depth, version, [True, False], 2, 2048, request, group="gradients")
    return ", ".join(ids), gr.Timer(active=True)


def _checkpoint_choices(request=None):
    """Shipped checkpoints by manifest name, then this session's finished jobs by id (a
    damaged manifest lists none; using a checkpoint then says why)."""
    try:
        shipped = inference.manifest()
    except ValueError:
        shipped = []
    choices = [(f"{entry['name']} ({_accuracy_text(entry.get('test_accuracy'))}, shipped)", entry["name"])
               for entry in shipped]
    jobs = JOBS.list(_session(request)) if request is not None else []  # never other sessions
    for job in jobs:
        if job["state"] in ("done", "stopped"):
            try:
                JOBS.checkpoint(job["id"])
            except ValueError:
                continue
            choices.append((f"{job['label']}, job {job['id']} ({job['state']})", f"job:{job['id']}"))
    return choices


def _default_pair(choices):
    """The Insight lab's opening pair: the deepest shipped residual net whose plain twin is
    shipped too, and that twin (the paper's comparison); else the first checkpoint alone."""
    try:
        shipped = inference.manifest()
        pairs = [(entry.get("depth", 0), entry["name"], inference.shipped_twin(entry["name"]))
                 for entry in shipped if entry.get("residual")]
    except ValueError:  # a damaged manifest: using a checkpoint says why
        pairs = []
    pairs = sorted((pair for pair in pairs if pair[2]), reverse=True)
    if pairs:
        return pairs[0][1], pairs[0][2]
    return (choices[0][1] if choices else None), None


def follow_twin(first):
    """A new first checkpoint in the Insight lab: compare it with its shipped twin, if any."""
    try:
        twin = inference.shipped_twin(first) if first and not str(first).startswith("job:") else None
    except ValueError:
        twin = None
    return gr.update(value=twin) if twin else gr.skip()


def _accuracy_text(accuracy):
    return "not evaluated" if accuracy is None else f"{accuracy:.1%} test accuracy"


def _checkpoint_path(checkpoint, request):
    """Looks a checkpoint up by name (manifest) or job id (this session): never a path."""
    if not checkpoint:
        shipped = inference.manifest()
        if shipped:
            return inference.pretrained_path(shipped[0]["name"])
        own = [value for _, value in _checkpoint_choices(request) if value.startswith("job:")]
        if not own:
            raise ValueError("no checkpoint available yet: train one on the Train tab")
        checkpoint = own[0]
    checkpoint = str(checkpoint)
    if checkpoint.startswith("job:"):
        return JOBS.checkpoint(checkpoint[4:], owner=_session(request))
    return inference.pretrained_path(checkpoint)


@user_errors
def classify(image: gr.FileData | str | None, checkpoint: str | None = None, request: gr.Request = None):
    """Top-5 CIFAR-10 classes of an image file, as a gr.Label value.

    Args:
        image: an image file (PNG, JPEG, WebP, GIF, ...; at most 10 MB).
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
    """
    model = inference.load(_checkpoint_path(checkpoint, request))
    label, _ = inference.classify(model, _image_path(image))
    return label


@user_errors
def seen_upload(image: gr.FileData | str | None):
    """The 32x32 image the model saw, enlarged for display. A separate UI step (not part of the
    `classify` API) so scripted calls do not pay for encoding a picture they do not want."""
    return inference.enlarge(inference.prepare(_image_path(image)))


@user_errors
def classify_sketch(sketch, checkpoint: str | None = None, request: gr.Request = None):
    """Top-5 CIFAR-10 classes of a drawing (the sketchpad's composite image), as a gr.Label value.

    Args:
        sketch: a gr.Sketchpad value (its "composite" image is classified).
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
    """
    model = inference.load(_checkpoint_path(checkpoint, request))
    label, _ = inference.classify(model, inference.sketch_image(sketch))
    return label


@user_errors
def seen_sketch(sketch):
    """The 32x32 image the model saw of a drawing, enlarged for display (UI only)."""
    return inference.enlarge(inference.prepare(inference.sketch_image(sketch)))


@user_errors
def gradcam(image: gr.FileData | str | None, checkpoint: str | None = None, class_name: str = "predicted",
            request: gr.Request = None):
    """Grad-CAM heatmap over the input for the predicted class, or any chosen class; returns
    the heat over the enlarged 32x32 input and a caption.

    Args:
        image: an image file.
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        class_name: "predicted" or a CIFAR-10 class (airplane, automobile, ...).
    """
    model = inference.load(_checkpoint_path(checkpoint, request))
    return inference.gradcam(model, _image_path(image), class_name)


@user_errors
def gradcam_sketch(sketch, checkpoint: str | None = None, class_name: str = "predicted",
                   request: gr.Request = None):
    """Grad-CAM heatmap over a drawing (the sketchpad's composite image).

    Args:
        sketch: a gr.Sketchpad value.
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        class_name: "predicted" or a CIFAR-10 class.
    """
    model = inference.load(_checkpoint_path(checkpoint, request))
    return inference.gradcam(model, inference.sketch_image(sketch), class_name)


def _image_path(image):
    if image is None:
        raise ValueError("upload an image first")
    return image.get("path") if isinstance(image, dict) else getattr(image, "path", image)


@user_errors
def lesion(checkpoint: str, samples: int = 1000, compare: str | None = None, request: gr.Request = None,
           progress=gr.Progress()):
    """Test accuracy with each block deleted in turn (Veit et al. 2016), for one checkpoint or
    two side by side; returns the bar chart and a reading.

    Args:
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        samples: test images to measure on.
        compare: an optional second checkpoint (say the plain twin), named the same way.
    """
    samples = whole_number(samples, "samples", 1, 100_000)
    source, notice = resolve_source()
    names = [checkpoint] + ([compare] if compare else [])
    paths = [_checkpoint_path(name, request) for name in names]  # both looked up before any work
    insight.check_lesion_budget(samples, [checkpoint_spec(path) for path in paths])
    results = insight.name_apart([insight.lesion(path, source, samples,
                                                 progress=lambda fraction, text: progress(fraction, desc=text))
                                  for path in paths], names)
    note = f"*{notice}*\n\n" if notice else ""
    return charts.lesion_figure(results), note + insight.lesion_reading(results)


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
    """
    steps = whole_number(steps, "steps", 3, 51)
    samples = whole_number(samples, "samples", 1, 10_000)
    insight.check_landscape_budget(steps, samples, 2 if compare else 1)  # before any lookup
    names = [checkpoint] + ([compare] if compare else [])
    paths = [_checkpoint_path(name, request) for name in names]  # both looked up before any work
    insight.check_landscape_budget(steps, samples, len(paths), [checkpoint_spec(path) for path in paths])
    source, notice = resolve_source()
    if notice:
        gr.Warning(notice)
    results = insight.name_apart([insight.loss_landscape(
        path, source, samples, steps,
        progress=lambda fraction, text: progress(fraction, desc=text)) for path in paths], names)
    return charts.landscape_figure(results), insight.landscape_reading(results)


@user_errors
def classify_imagenet(image: gr.FileData | str | None):
    """Top-5 ImageNet classes of a photo with keras.applications ResNet-50 weights (they are
    downloaded once: needs internet, else a clear message).

    Args:
        image: an image file.
    """
    return inference.classify_imagenet(_image_path(image))


@user_errors
def refresh_checkpoints(current=None, request: gr.Request = None):
    """The checkpoint list with this session's new models; keeps the current choice."""
    choices = _checkpoint_choices(request)
    values = [value for _, value in choices]
    return gr.Dropdown(choices=choices, value=current if current in values else (values[0] if values else None))


@user_errors
def refresh_compare(current=None, request: gr.Request = None):
    """The optional second checkpoint's list; keeps the current choice (or none)."""
    choices = _checkpoint_choices(request)
    return gr.Dropdown(choices=choices, value=current if current in [value for _, value in choices] else None)


@user_errors
def fill_background(color):
    """A fresh sketchpad value on a background of the chosen color."""
    background = inference.sketch_background(color)
    return {"background": background, "layers": [], "composite": background}


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


def depth_and_version(depth: int, elem_id: str):
    """The depth box and version radio of the Train and Gradient flow tabs."""
    return (gr.Number(value=depth, precision=0, label="Depth", elem_id=elem_id),
            gr.Radio([1, 2], value=1, label="Version"))


def train_tab():
    gr.Markdown("Train a network in the background (it keeps running if you close the page). "
                "**Race** trains the plain net and its residual twin on the same data, side by side.")
    with gr.Row():
        depth, version = depth_and_version(20, "train-depth")
        plain = gr.Checkbox(value=False, label="Plain (no shortcuts)")
        race = gr.Checkbox(value=False, label="Race: plain vs residual")
        epochs = gr.Number(value=3, precision=0, label="Epochs", elem_id="train-epochs")
        subset = gr.Number(value=5000, precision=0, label="Training images (0: all)",
                           elem_id="train-subset")
    with gr.Row():
        start = gr.Button("Start", variant="primary", elem_id="train-start")
        stop = gr.Button("Stop", variant="stop", elem_id="train-stop")
        job_text = gr.Textbox(label="Job id(s)", elem_id="train-jobs",
                              info="filled by Start; paste an id to watch an earlier job")
    progress = gr.Markdown(elem_id="train-progress")
    curves = gr.Plot(label="Curves", elem_id="train-curves")
    heatmap = gr.Plot(label="Gradient norms", elem_id="train-heatmap")
    timer = gr.Timer(1.0, active=False)
    charted = gr.State(None)  # what the page's charts show (see tick_jobs)
    start.click(start_from_page, [depth, version, plain, epochs, subset, race], [job_text, timer],
                api_name=False)
    views = [curves, heatmap, progress, timer, charted]
    timer.tick(tick_jobs, [job_text, charted], views, api_name=False,
               show_progress="hidden", concurrency_limit=8)
    job_text.submit(watch_jobs, job_text, views, api_name=False)
    stop.click(stop_from_page, job_text, views, api_name=False)
    with gr.Accordion("Degradation: plain against residual over training", open=False) as shown:
        gr.Markdown("Training and test error of the shipped runs (He et al., Figures 1 and 6, redone "
                    "on our own runs); the jobs above are overlaid.")
        overlay = gr.Button("Show / overlay my jobs", size="sm", elem_id="train-degradation")
        degradation_plot = gr.Plot(label="Degradation", elem_id="train-degradation-plot")
        degradation_note = gr.Markdown(elem_id="train-degradation-note")
    overlay.click(degradation, job_text, [degradation_plot, degradation_note], api_name="degradation")
    shown.expand(degradation, job_text, [degradation_plot, degradation_note], api_name=False)
    with gr.Accordion("Your jobs", open=False, elem_id="train-jobs-accordion") as jobs_accordion:
        jobs_table = gr.Markdown(elem_id="train-jobs-table")
    jobs_accordion.expand(session_jobs, None, jobs_table, api_name=False)
    timer.tick(session_jobs, None, jobs_table, api_name=False, show_progress="hidden")
    start.click(session_jobs, None, jobs_table, api_name=False)
    with gr.Row():
        download = gr.Button("Download the last job's model", size="sm", elem_id="train-download")
        model_file = gr.File(label="model.keras", interactive=False, visible=False,  # until a download
                             elem_id="train-model-file")
    download.click(download_job_model, job_text, model_file, api_name=False)


def gradients_tab():
    gr.Markdown("The same initial weights and the same batch of images through a plain net and its "
                "residual twin: how large is the gradient that reaches each layer?")
    with gr.Row():
        depth, version = depth_and_version(110, "grad-depth")
        batch = gr.Number(value=64, precision=0, label="Batch size")
        seed = gr.Number(value=0, precision=0, label="Seed")
        view = gr.Radio([("per weight layer", "kernels"), ("per block output", "blocks")],
                        value="kernels", label="View")
    run = gr.Button("Measure", variant="primary", elem_id="grad-run")
    plot = gr.Plot(label="Gradient norm per layer", elem_id="grad-plot")
    reading = gr.Markdown(elem_id="grad-reading")
    numbers = gr.File(label="The numbers (JSON)", interactive=False)
    run.click(gradient_flow, [depth, version, batch, seed, view], [plot, reading, numbers],
              api_name="gradient_flow", concurrency_limit=1, concurrency_id="probes")
    with gr.Accordion("Depth sweep", open=False):
        with gr.Row():
            sweep_version = gr.Radio([1, 2], value=1, label="Version")
            depths = gr.Textbox(value="20, 56, 110, 218", label="Depths")
            sweep_run = gr.Button("Sweep", elem_id="grad-sweep")
        sweep_plot = gr.Plot(label="Gradient norm against depth", elem_id="grad-sweep-plot")
        sweep_run.click(depth_sweep, [sweep_version, depths], sweep_plot, api_name="depth_sweep",
                        concurrency_limit=1, concurrency_id="probes")
    with gr.Accordion("Over training", open=False):
        gr.Markdown("Paste job ids from the Train tab, or start a short plain-vs-residual race here.")
        with gr.Row():
            jobs = gr.Textbox(label="Job id(s)", elem_id="grad-jobs")
            race = gr.Button("Start a short race (2 epochs)", elem_id="grad-race")
        status = gr.Markdown()
        heat = gr.Plot(label="Gradient norms over training", elem_id="grad-heat")
        timer = gr.Timer(1.5, active=False)
        race.click(start_race_for_heatmaps, [depth, version], [jobs, timer], api_name=False)
        charted = gr.State(None)  # what the heatmaps show (see tick_jobs)
        jobs.submit(tick_heatmaps, jobs, [heat, status, timer, charted], api_name=False)
        timer.tick(tick_heatmaps, [jobs, charted], [heat, status, timer, charted], api_name=False,
                   show_progress="hidden")


def classify_tab():
    gr.Markdown("Draw or upload an image; a CIFAR-10 ResNet says what it sees among airplane, "
                "automobile, bird, cat, deer, dog, frog, horse, ship and truck.")
    with gr.Row():
        # allow_custom_value: an API caller may name a job of its session or a checkpoint
        # shipped after start-up (Gradio refuses values outside the page's list otherwise);
        # the handlers look every name up themselves (_checkpoint_path)
        checkpoint = gr.Dropdown(_checkpoint_choices(), label="Checkpoint", elem_id="cls-checkpoint",
                                 allow_custom_value=True,
                                 info="shipped checkpoints and the models you trained in this session")
        refresh = gr.Button("Refresh list", size="sm")
    with gr.Row():
        with gr.Column():
            with gr.Tab("Draw"):
                background = gr.Dropdown(list(inference.BACKGROUNDS),
                                         value="white", label="Background fill")
                sketch = gr.Sketchpad(
                    value=fill_background("white"), canvas_size=(256, 256), type="numpy",
                    brush=gr.Brush(colors=["#d62728", "#1f77b4", "#2ca02c", "#000000", "#ffffff",
                                           "#8c564b", "#ff7f0e", "#7f7f7f"], default_size=12,
                                   color_mode="defaults"), label="Sketch", elem_id="cls-sketch")
                with gr.Row():
                    classify_drawing = gr.Button("Classify drawing", variant="primary", elem_id="cls-draw-run")
                    explain_drawing = gr.Button("Grad-CAM", elem_id="cls-draw-gradcam")
            with gr.Tab("Upload"):
                upload = gr.File(label="Image file", file_types=["image"], type="filepath",
                                 elem_id="cls-upload")
                with gr.Row():
                    classify_upload = gr.Button("Classify upload", variant="primary", elem_id="cls-upload-run")
                    explain = gr.Button("Grad-CAM", elem_id="cls-gradcam")
                examples = sorted(str(p) for p in (Path(__file__).parent / "examples").glob("*.png"))
                if examples:
                    gr.Examples(examples, inputs=upload, label="Examples")
            cam_class = gr.Dropdown(["predicted", *inference.CIFAR_CLASSES], value="predicted",
                                    label="Grad-CAM class", info="explain the predicted class, or any other")
        with gr.Column():
            label = gr.Label(num_top_classes=5, label="Top 5", elem_id="cls-label")
            seen = gr.Image(label="What the model sees (32x32, each pixel enlarged)", type="numpy",
                            interactive=False, height=220, elem_id="cls-seen")
            cam_text = gr.Markdown(elem_id="cls-gradcam-text")
            cam = gr.Image(label="Grad-CAM", type="numpy", interactive=False, height=220,
                           elem_id="cls-gradcam-image")
    refresh.click(refresh_checkpoints, checkpoint, checkpoint, api_name=False)
    background.change(fill_background, background, sketch, api_name=False)
    classify_upload.click(classify, [upload, checkpoint], label, api_name="classify",
                          concurrency_limit=4, concurrency_id="classify").success(
        seen_upload, upload, seen, api_name=False)
    explain.click(gradcam, [upload, checkpoint, cam_class], [cam, cam_text], api_name="gradcam",
                  concurrency_limit=2, concurrency_id="gradcam")
    explain_drawing.click(gradcam_sketch, [sketch, checkpoint, cam_class], [cam, cam_text],
                          api_name="gradcam_sketch", concurrency_limit=2, concurrency_id="gradcam")
    classify_drawing.click(classify_sketch, [sketch, checkpoint], label, api_name="classify_sketch",
                           concurrency_limit=4, concurrency_id="classify").success(
        seen_sketch, sketch, seen, api_name=False)
    return checkpoint


def insight_tab():
    gr.Markdown("Views computed on trained checkpoints: pick a residual net and, to compare, its "
                "plain twin (shipped checkpoints or models you trained in this session).")
    choices = _checkpoint_choices()
    first_value, second_value = _default_pair(choices)
    with gr.Row():
        first = gr.Dropdown(choices, value=first_value, label="Checkpoint", elem_id="ins-first",
                            allow_custom_value=True)  # as on the Classify tab
        second = gr.Dropdown(choices, value=second_value, label="Compare with (optional)",
                             elem_id="ins-second", info="its plain (or residual) twin when shipped",
                             allow_custom_value=True)
        refresh = gr.Button("Refresh lists", size="sm")
    with gr.Accordion("Lesion study (Veit et al. 2016)", open=True):
        with gr.Row():
            samples = gr.Number(value=1000, precision=0, label="Test images")
            run_lesion = gr.Button("Delete each block in turn", variant="primary", elem_id="ins-lesion")
        lesion_plot = gr.Plot(label="Lesion study", elem_id="ins-lesion-plot")
        lesion_text = gr.Markdown(elem_id="ins-lesion-text")
    with gr.Accordion("Loss landscape (Li et al. 2018)", open=False):
        with gr.Row():
            steps = gr.Number(value=insight.default_landscape_steps(), precision=0, label="Grid steps per axis",
                              info="9: about a minute on 2 CPU cores for ResNet-56; a GPU starts finer")
            land_samples = gr.Number(value=128, precision=0, label="Test images")
            run_land = gr.Button("Compute", elem_id="ins-landscape")
        land_plot = gr.Plot(label="Loss landscape", elem_id="ins-landscape-plot")
        land_text = gr.Markdown(elem_id="ins-landscape-text")
    with gr.Accordion("ImageNet photo (keras.applications ResNet-50)", open=False):
        with gr.Row():
            photo = gr.File(label="Photo", file_types=["image"], type="filepath")
            photo_label = gr.Label(num_top_classes=5, label="ImageNet top 5")
        run_photo = gr.Button("Classify photo", elem_id="ins-imagenet")
    first.input(follow_twin, first, second, api_name=False)
    refresh.click(refresh_checkpoints, first, first, api_name=False)
    refresh.click(refresh_compare, second, second, api_name=False)
    run_lesion.click(lesion, [first, samples, second], [lesion_plot, lesion_text], api_name="lesion",
                     concurrency_limit=1, concurrency_id="probes")
    run_land.click(loss_landscape, [first, steps, land_samples, second], [land_plot, land_text],
                   api_name="loss_landscape", concurrency_limit=1, concurrency_id="landscape")
    run_photo.click(classify_imagenet, photo, photo_label, api_name="classify_imagenet",
                    concurrency_limit=1)
    return first, second


# Uploads and returned files older than a day leave Gradio's cache (checked hourly).
with gr.Blocks(title="ResNet Explorer", delete_cache=(3600, 86400)) as demo:
    gr.Markdown(INTRO)
    with gr.Tabs():
        with gr.Tab("Architecture", id="architecture"):
            arch_build, arch_inputs, arch_outputs = architecture_tab()
        with gr.Tab("Train", id="train"):
            train_tab()
        with gr.Tab("Gradient flow", id="gradients"):
            gradients_tab()
        with gr.Tab("Classify", id="classify") as classify_page:
            classify_checkpoint = classify_tab()
        with gr.Tab("Insight lab", id="insight") as insight_page:
            insight_first, insight_second = insight_tab()
    # opening a tab lists the models this session trained since the page loaded
    classify_page.select(refresh_checkpoints, classify_checkpoint, classify_checkpoint, api_name=False)
    insight_page.select(refresh_checkpoints, insight_first, insight_first, api_name=False)
    insight_page.select(refresh_compare, insight_second, insight_second, api_name=False)
    gr.api(train_start, api_name="train_start", concurrency_limit=4)
    gr.api(train_status, api_name="train_status", concurrency_limit=8)
    gr.api(train_stop, api_name="train_stop", concurrency_limit=4)
    demo.load(build_architecture, arch_inputs, arch_outputs, api_name=False)
    # a fixed key and secret: the stored token still reads after the app restarts (its jobs
    # survive restarts); the token is an identifier, not a credential worth encrypting
    owner = gr.BrowserState(None, storage_key="resnet-explorer-owner",
                            secret=os.environ.get("EXPLORER_OWNER_SECRET", "resnet-explorer-owner"))
    demo.load(claim_owner, owner, owner, api_name=False)


def main():
    host = os.environ.get("EXPLORER_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = int(os.environ.get("EXPLORER_PORT", os.environ.get("GRADIO_SERVER_PORT", "7860")))
    queue_size = int(os.environ.get("EXPLORER_QUEUE_SIZE", "64"))  # beyond it: "queue is full"
    demo.queue(default_concurrency_limit=2, max_size=queue_size).launch(
        server_name=host, server_port=port, max_file_size="10mb", show_error=True)


if __name__ == "__main__":
    main()
