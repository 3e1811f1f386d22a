"""The Playground tab's handlers (issue #34) and its API endpoints: playground_start,
playground_status, playground_stop, playground_step, playground_reset and playground_sweep.

The twins train on the engine (`compute.playground_task`); this page only draws: a 0.4 s timer
reads the session's newest snapshot (`compute.playground_sessions`) and redraws when it
changed. The layout, the wiring and the link are in `ui.playground`.
"""

from __future__ import annotations

import json
import os
import threading
import time

import gradio as gr

from explorer.compute import playground_task
from explorer.compute.engine import engine
from explorer.compute.playground_sessions import LIVE_STATES, Playgrounds, max_live
from explorer.core.playground_settings import (
    MAX_SWEEP_STEPS,
    PlaygroundSettings,
    check_sweep_budget,
    read_depths,
    read_settings,
    read_steps,
)
from explorer.studies.playground_sweep import DEFAULT_SWEEP_STEPS, depth_sweep, sweep_reading
from explorer.views import playground_charts

from .common import progress_callback, user_errors

FIRST_LOOK_SECONDS = 1.5  # Start waits this long for the first snapshot, then the timer takes over
STEP_WAIT_SECONDS = 5.0  # Step and Reset wait this long for their run to end before drawing
API_WAIT_SECONDS = 60.0  # /playground_step and /playground_reset wait this long (no timer draws after)
# while training, the loss chart and the gradient strip are redrawn at most this often: each
# cost the browser 180 ms a redraw against 320 for the boundaries' chart (a busy Chromium here),
# most of it Plotly's work on any figure whatever its data; the boundaries come first
CURVES_SECONDS = 1.0
_PLAYGROUNDS: Playgrounds | None = None
_LOCK = threading.Lock()


def playgrounds() -> Playgrounds:
    """The app's playgrounds (made on first use): `EXPLORER_PLAYGROUNDS` sessions train at once
    (default 2; each holds an engine worker while it trains)."""
    global _PLAYGROUNDS
    with _LOCK:
        if _PLAYGROUNDS is None:
            _PLAYGROUNDS = Playgrounds(engine, max_live=max_live(os.environ.get("EXPLORER_PLAYGROUNDS")))
        return _PLAYGROUNDS


def warm_default() -> None:
    """Compiles the default pair ahead on a worker (a warm-up task; the app's start-up calls
    it after its other warm-ups, and opening the tab when the pair was taken)."""
    playgrounds().warm()


def summary(view: dict) -> dict:
    """A session's view (`Playgrounds.view`) as plain JSON for the API: the state, the step,
    the speed and each net's losses, accuracies and per-block gradient norms (no boundary)."""
    snapshot = view["snapshot"]
    out = {"state": view["state"], "note": view["note"], "error": view["error"], "ended": view["ended"],
           "settings": view["settings"].to_dict() if view["settings"] else None,
           "step": snapshot["step"] if snapshot else None,
           "steps_per_s": round(snapshot["steps_per_s"], 1) if snapshot else None}
    for net in ("residual", "plain"):
        values = snapshot.get(net) if snapshot else None
        if values is not None:
            out[net] = {key: values[key] for key in playground_task.NET_KEYS}
            norms = values["gradient_norms"]
            out[net]["gradient_norms"] = None if norms is None else [float(v) for v in norms]
    return out


def _key(request) -> str:
    return getattr(request, "session_hash", None) or "anonymous"


def page_settings(data, noise, train_fraction, blocks, width, extra_features, norm, init, optimizer,
                  learning_rate, batch_size, seed, points) -> PlaygroundSettings:
    """The settings of the page's controls (x and y always seen; `extra_features` of x2, y2, xy)."""
    extras = list(extra_features or []) if not isinstance(extra_features, str) else [extra_features]
    return read_settings(data=data, noise=noise, train_fraction=train_fraction, blocks=blocks, width=width,
                         features=["x", "y", *extras], norm=norm, init=init, optimizer=optimizer,
                         learning_rate=learning_rate, batch_size=batch_size, seed=seed, points=points)


def draw(view: dict, curves: bool = True, update_only: bool = False):
    """The status line, the three live figures of a session's view (the loss curves and the
    gradient strip left as they are unless `curves`) and the boundaries' update: with
    `update_only` the boundaries' figure is left on screen and only what changed in it
    (`playground_charts.boundary_update`, JSON) goes to the page, which applies it
    (`ui.playground.UPDATE_JS`)."""
    settings = view["settings"] or PlaygroundSettings()
    snapshot = view["snapshot"]
    if update_only:
        boundary = gr.skip()
        update = json.dumps(playground_charts.boundary_update(settings, snapshot), separators=(",", ":"))
    else:
        boundary, update = playground_charts.boundary_figure(settings, snapshot), gr.skip()
    return (playground_charts.status_text(view), boundary,
            playground_charts.loss_figure(view["history"]) if curves else gr.skip(),
            playground_charts.gradient_strip(snapshot) if curves else gr.skip(), update)


def boundary_key(view: dict) -> str | None:
    """Which boundaries a full figure of this view draws (its settings), None when it draws
    none (no snapshot yet): a later snapshot of the same key needs only an update."""
    if view["snapshot"] is None:
        return None
    return json.dumps((view["settings"] or PlaygroundSettings()).to_dict(), sort_keys=True)


def _drawn(view: dict, timer_on: bool | None = None):
    """`draw`'s outputs, the timer (on while a run is live) and what was drawn: [the view's
    version, when the curves were, `boundary_key`]."""
    live = view["state"] in LIVE_STATES if timer_on is None else timer_on
    return (*draw(view), gr.Timer(active=live), [view["version"], time.monotonic(), boundary_key(view)])


# ----------------------------------------------------------------------------- the page's handlers
# The handlers take the controls' values as `*values`; Gradio gives a handler its request (and
# progress) only in a parameter before those, so that is where they are.


@user_errors
def start_from_page(request: gr.Request, *values):
    """Start: trains the twins of the controls' settings until Pause (from where they are, if
    the settings did not change); draws the first snapshot when it comes within a second and
    a half, then the timer redraws."""
    settings = page_settings(*values)
    key = _key(request)
    before = playgrounds().view(key)
    playgrounds().start(key, settings)
    view = playgrounds().wait_for(key, before["snapshots"], FIRST_LOOK_SECONDS, "snapshots")
    return _drawn(view, timer_on=True)


@user_errors
def pause_from_page(request: gr.Request = None):
    """Pause: the run ends at its next snapshot; draws where it stopped."""
    key = _key(request)
    if playgrounds().view(key)["state"] == "idle":
        return _drawn(playgrounds().view(key))
    return _drawn(playgrounds().pause(key))


@user_errors
def step_from_page(request: gr.Request, steps, *values):
    """Step: trains `steps` steps (pausing a run first) and draws where they end."""
    key = _key(request)
    view = playgrounds().step(key, page_settings(*values), steps)
    view = _wait_run(key, view)
    return _drawn(view)


@user_errors
def reset_from_page(request: gr.Request, *values):
    """Reset: back to step 0 (the same initial weights and batches) with the controls' settings."""
    key = _key(request)
    view = _wait_run(key, playgrounds().reset(key, page_settings(*values)))
    return _drawn(view)


def _wait_run(key: str, view: dict, seconds: float = STEP_WAIT_SECONDS) -> dict:
    """The view once the session's short run (a step, a reset) has ended, or after `seconds`
    (on the page, the timer draws the rest)."""
    deadline = time.monotonic() + seconds
    while view["state"] in LIVE_STATES and time.monotonic() < deadline:
        view = playgrounds().wait_for(key, view["version"], deadline - time.monotonic())
    return view


def tick(drawn, request: gr.Request = None):
    """The timer: redraws when the session's view changed since `drawn` ([version, when the
    curves were drawn, `boundary_key`]), else leaves the page as it is; stops itself once the
    run has ended and is drawn. While the twins train the loss curves and the gradient strip
    are redrawn at most once every `CURVES_SECONDS`, the boundaries at every tick: as an
    update of the figure on screen when it shows the same settings' boundaries (the browser
    drew a whole figure in 140-320 ms here, most of it Plotly's and Gradio's work on any
    figure; an update is a fraction of that), else as a whole figure."""
    fresh = isinstance(drawn, (list, tuple)) and len(drawn) == 3
    version, curves_at, drawn_key = drawn if fresh else (None, 0.0, None)
    view = playgrounds().view(_key(request))
    live = view["state"] in LIVE_STATES
    if view["version"] == version:
        return (gr.skip(),) * 5 + (gr.skip() if live else gr.Timer(active=False), drawn)
    now = time.monotonic()
    curves = not live or now - curves_at >= CURVES_SECONDS
    key = boundary_key(view)
    update_only = live and key is not None and key == drawn_key
    return (*draw(view, curves, update_only), gr.Timer(active=live),
            [view["version"], now if curves else curves_at, key])


def preview(request: gr.Request, *values):
    """The controls changed while nothing trains: the new points, no boundary yet (a bad value
    leaves the page as it is until Start says why)."""
    view = playgrounds().view(_key(request))
    if view["state"] in LIVE_STATES:
        return gr.skip(), gr.skip()
    try:
        settings = page_settings(*values)
    except ValueError:
        return gr.skip(), gr.skip()
    # what is drawn changes: the next tick draws a whole figure (its version unknown here)
    if view["settings"] == settings and view["snapshot"] is not None:
        return playground_charts.boundary_figure(settings, view["snapshot"]), [None, 0.0, boundary_key(view)]
    return playground_charts.boundary_figure(settings, None), [None, 0.0, None]


def open_tab():
    """The tab opened: the default pair compiled ahead again if a visitor took it."""
    warm_default()


# ----------------------------------------------------------------------------- the API


@user_errors
def playground_start(data: str = "spiral", noise: float = 0.1, train_fraction: float = 0.5,
                     blocks: int = 8, width: int = 16, features: str = "x,y", norm: str = "batch",
                     init: str = "default", optimizer: str = "adam", learning_rate: float = 0.01,
                     batch_size: int = 32, seed: int = 0, points: int = 500,
                     request: gr.Request = None) -> dict:
    """Trains this session's plain net and its residual twin on points in the plane until
    playground_stop (two minutes at most a run; a run whose session has not called
    playground_status for 15 s is paused); returns playground_status's dict.

    Args:
        data: spiral, circles, xor, moons or gaussian.
        noise: jitter of each point, 0 to 0.5.
        train_fraction: share of the points trained on, 0.1 to 0.9.
        blocks: blocks of each net, 1 to 128.
        width: units of each dense layer, 8 to 64.
        features: what the nets see of a point, out of x,y,x2,y2,xy (comma-separated).
        norm: none, batch or layer.
        init: default, or zero (each branch's last layer starts at zero).
        optimizer: adam or sgd (momentum 0.9).
        learning_rate: 1e-5 to 1.
        batch_size: points a step, at most the training points.
        seed: seed of the points, the weights and the batches.
        points: points in all, 50 to 2000.
    """
    settings = read_settings(data=data, noise=noise, train_fraction=train_fraction, blocks=blocks,
                             width=width, features=features, norm=norm, init=init, optimizer=optimizer,
                             learning_rate=learning_rate, batch_size=batch_size, seed=seed, points=points)
    key = _key(request)
    before = playgrounds().view(key)
    playgrounds().start(key, settings)
    return summary(playgrounds().wait_for(key, before["snapshots"], FIRST_LOOK_SECONDS, "snapshots"))


@user_errors
def playground_status(request: gr.Request = None) -> dict:
    """This session's playground: state (idle, starting, training, paused, failed), step, pair
    steps per second, each net's training and test loss and accuracy, its last batch loss and
    per-block gradient norms, the settings; and default_ready, whether the default pair is
    compiled ahead on a worker (a Start of the defaults then draws at once)."""
    return {**summary(playgrounds().view(_key(request))), "default_ready": playgrounds().is_warm()}


@user_errors
def playground_stop(request: gr.Request = None) -> dict:
    """Pauses this session's run (playground_start goes on from the same step); returns the
    status once it has stopped (or after 60 s)."""
    return summary(playgrounds().pause(_key(request), wait=API_WAIT_SECONDS))


@user_errors
def playground_step(steps: int = 10, request: gr.Request = None) -> dict:
    """Trains this session's twins `steps` more steps with their settings (the defaults before
    any start), pausing a run first; returns the status once they are done (or after 60 s).

    Args:
        steps: 1 to 1000.
    """
    key = _key(request)
    settings = playgrounds().view(key)["settings"] or PlaygroundSettings()
    return summary(_wait_run(key, playgrounds().step(key, settings, steps), API_WAIT_SECONDS))


@user_errors
def playground_reset(request: gr.Request = None) -> dict:
    """Puts this session's twins back to step 0 (the same initial weights and batches); returns
    the status at step 0 (or after 60 s)."""
    key = _key(request)
    settings = playgrounds().view(key)["settings"] or PlaygroundSettings()
    return summary(_wait_run(key, playgrounds().reset(key, settings), API_WAIT_SECONDS))


def sweep(settings: PlaygroundSettings, depths, steps, progress=None) -> dict:
    """The depth sweep of `settings` on the engine (checked first, its budget too); the result
    with its reading ("reading")."""
    depths = read_depths(depths)
    steps = read_steps(steps, MAX_SWEEP_STEPS)
    check_sweep_budget(depths, steps)
    result = engine().run(depth_sweep, settings, depths, steps, progress=progress)
    return {**result, "reading": sweep_reading(result)}


@user_errors
def playground_sweep(data: str = "spiral", noise: float = 0.1, train_fraction: float = 0.5,
                     width: int = 16, features: str = "x,y", norm: str = "batch", init: str = "default",
                     optimizer: str = "adam", learning_rate: float = 0.01, batch_size: int = 32,
                     seed: int = 0, points: int = 500,
                     depths: str = "2,4,8,16,32,64", steps: int = DEFAULT_SWEEP_STEPS) -> dict:
    """Trains both twins `steps` steps at each depth and returns {"rows" (one per depth and
    net: blocks, net, train_loss, test_loss, train_accuracy, test_accuracy, batch_loss,
    steps_per_s), "depths", "steps", "settings", "seconds", "reading"}.

    Args:
        data: spiral, circles, xor, moons or gaussian.
        noise: jitter of each point, 0 to 0.5.
        train_fraction: share of the points trained on, 0.1 to 0.9.
        width: units of each dense layer, 8 to 64.
        features: what the nets see of a point, out of x,y,x2,y2,xy (comma-separated).
        norm: none, batch or layer.
        init: default, or zero (each branch's last layer starts at zero).
        optimizer: adam or sgd (momentum 0.9).
        learning_rate: 1e-5 to 1.
        batch_size: points a step, at most the training points.
        seed: seed of the points, the weights and the batches.
        points: points in all, 50 to 2000.
        depths: 1 to 8 depths (blocks), comma-separated, each 1 to 128.
        steps: training steps at each depth, 1 to 5000.
    """
    settings = read_settings(data=data, noise=noise, train_fraction=train_fraction, width=width,
                             features=features, norm=norm, init=init, optimizer=optimizer,
                             learning_rate=learning_rate, batch_size=batch_size, seed=seed, points=points)
    return sweep(settings, depths, steps)


@user_errors
def sweep_from_page(depths, steps, progress=gr.Progress(), *values):
    """The sweep button: the chart and its reading."""
    settings = page_settings(*values)
    result = sweep(settings, depths, steps, progress_callback(progress))
    return playground_charts.sweep_figure(result), result["reading"]
