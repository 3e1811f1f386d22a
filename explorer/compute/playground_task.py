"""The playground's live training as an engine task: what runs on the worker (`live_run`,
`warm_pair`) and the shape of what it sends the page (`compact`, `expand`).

A run trains the twins (`studies.playground.PairTrainer`) in the worker's own process and sends
a snapshot a little more often than twice a second as an event on the run's topic; the page
keeps the newest (`compute.playground_sessions`) and draws it. The worker keeps each page session's trainer
between runs (`_OWNED`, least recently used out), so Pause then Start goes on from the same
step on the same compiled program; the page sends a session's runs to the worker that holds
its trainer. A warm-up (`warm_pair`) builds and compiles the page's default pair ahead, so the
first Start of a settled app draws its first boundary at once instead of after the compile
(about 5 s here).

Pause: the page sets the run's Dask `Event`; the run sees it at its next snapshot (within half
a second) and ends. A run also ends by itself after `MAX_LIVE_SECONDS`, so a page closed while
training frees its worker.

What crosses to the page is small: the boundary grid as uint8 (probability x 255, 4 KiB a
net) and the gradient norms as float32 bytes, beside plain numbers (msgpack-safe, no pickles).
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

from explorer.core.caches import BoundedCache
from explorer.core.playground_settings import MAX_PAGE_STEPS, PlaygroundSettings, read_steps

# training time between snapshots: with the snapshot's own time (the nets on the points and
# the grid), a little over two a second, so a page that redraws twice a second has a new one
SNAPSHOT_SECONDS = 0.4
MAX_LIVE_SECONDS = 120.0  # a run ends by itself after this long (Start again to go on)
MAX_TRAINERS = 6  # page sessions' trainers one worker keeps between runs (a 128-block pair: ~20 MB)
ACTIONS = ("run", "step", "reset", "look")  # train until paused; train N steps; back to step 0; one look
NET_KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "batch_loss")
BOUNDARY_LEVELS = 255  # the boundary's probabilities sent as uint8 steps of 1/255

_OWNED = BoundedCache(MAX_TRAINERS, lru=True)  # page session -> `_Held`, in this worker's process
_WARM = BoundedCache(2)  # settings key -> `_Held`, built and compiled ahead, no session's yet


@dataclasses.dataclass
class _Held:
    trainer: object  # a `PairTrainer`
    compiled: bool  # its training step compiled (`PairTrainer.prepare`)


def stop_event_name(run_id: str) -> str:
    """The Dask `Event` that pauses a run."""
    return f"explorer-playground-stop-{run_id}"


def settings_key(settings: PlaygroundSettings) -> str:
    """Settings as a fixed text: what a warm pair and a kept trainer are looked up by."""
    return json.dumps(settings.to_dict(), sort_keys=True)


def compact(snapshot: dict) -> dict:
    """A `PairTrainer.snapshot` as the event the page receives: plain numbers, the boundary
    as uint8 bytes, the gradient norms as float32 bytes."""
    out = {key: snapshot[key] for key in ("step", "seconds", "steps_per_s", "extent", "grid_size")}
    out["nets"] = {}
    for net in ("residual", "plain"):
        if net not in snapshot:
            continue
        values = snapshot[net]
        boundary = np.rint(np.clip(values["boundary"], 0.0, 1.0) * BOUNDARY_LEVELS).astype(np.uint8)
        norms = values["gradient_norms"]
        norms = None if norms is None else np.asarray(norms, np.float32).tobytes()
        out["nets"][net] = {**{key: values[key] for key in NET_KEYS}, "boundary": boundary.tobytes(),
                            "gradient_norms": norms}
    return out


def expand(message: dict) -> dict:
    """The page's side of `compact`: the snapshot again, the boundary as float32 (size, size)
    probabilities (to within 1/510) and the gradient norms as float32 (blocks,)."""
    size = int(message["grid_size"])
    out = {key: message[key] for key in ("step", "seconds", "steps_per_s", "extent", "grid_size")}
    for net, values in message["nets"].items():
        boundary = np.frombuffer(values["boundary"], np.uint8).reshape(size, size)
        norms = values["gradient_norms"]
        out[net] = {**{key: values[key] for key in NET_KEYS},
                    "boundary": boundary.astype(np.float32) / BOUNDARY_LEVELS,
                    "gradient_norms": None if norms is None else np.frombuffer(norms, np.float32).copy()}
    return out


def _build(settings: PlaygroundSettings) -> _Held:
    from explorer.studies.playground import PairTrainer  # deferred: loads TensorFlow, as only a worker does

    return _Held(PairTrainer(settings), compiled=False)


def _trainer(key: str, settings: PlaygroundSettings) -> tuple[_Held, str]:
    """The session's trainer for `settings`: the one it trained before ("kept"), the warm pair
    ("warm"), or a new one ("built")."""
    held = _OWNED.get(key)
    if held is not None and held.trainer.settings == settings:
        return held, "kept"
    held = _WARM.pop(settings_key(settings))
    how = "warm"
    if held is None:
        held, how = _build(settings), "built"
    _OWNED.put(key, held)
    return held, how


def live_run(key: str, settings: dict, action: str, run_id: str, topic: str, steps=None,
             seconds: float = SNAPSHOT_SECONDS, most_seconds: float = MAX_LIVE_SECONDS) -> dict:
    """One run of a page session's twins on this worker (see the module docstring).

    Args:
        key: the page session (names its kept trainer here).
        settings: the `PlaygroundSettings` as a dict.
        action: one of `ACTIONS`: "run" trains until paused (or `most_seconds`), "step" trains
            `steps` steps, "reset" goes back to step 0 and looks, "look" only looks.
        run_id: the page's id of this run (names its pause `Event`).
        topic: the events topic the page listens to: {"run", "kind": "started"} (with "how":
            kept, warm or built, and "address"), "status" (with "text"), "snapshot" (`compact`).
        steps: the steps of a "step" run, 1 to `MAX_PAGE_STEPS`.
        seconds: training time between snapshots.
        most_seconds: the longest a run trains.

    Returns:
        {"run", "address", "step", "ended": "paused" | "steps done" | "time limit" | "looked",
        "last": the last snapshot sent (`compact`)}.

    Raises:
        ValueError: bad settings, action or steps.
    """
    from distributed import Event, get_worker  # deferred: the page imports this module without Dask

    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {str(action)[:40]!r}")
    steps = read_steps(steps, MAX_PAGE_STEPS) if action == "step" else None
    settings = PlaygroundSettings.from_dict(settings)
    worker = get_worker()

    last = {}  # the last snapshot sent, returned too: an event may come after the result

    def send(kind: str, **message):
        if kind == "snapshot":
            last.update(message)
        worker.log_event(topic, {"run": run_id, "kind": kind, **message})

    if key not in _OWNED and settings_key(settings) not in _WARM:
        send("status", text=f"building the {settings.blocks}-block pair")
    held, how = _trainer(key, settings)
    send("started", how=how, address=worker.address)
    trainer = held.trainer
    if action == "reset":
        trainer.reset()
    if action in ("reset", "look") or not held.compiled:
        send("snapshot", **compact(trainer.snapshot()))  # the boundary now, before any compile of the step
    ended = "looked"
    if action not in ("reset", "look"):
        if not held.compiled:
            send("status", text="compiling the training step (XLA, a few seconds, once per settings)")
            _compile(trainer)
            held.compiled = True
        ended = _train(trainer, action, steps, seconds, most_seconds, Event(stop_event_name(run_id)), send)
    return {"run": run_id, "address": worker.address, "step": trainer.step, "ended": ended, "last": last}


def _compile(trainer) -> None:
    """Compiles the training step where the trainer is (its step, weights and batches kept)."""
    if trainer.step == 0:
        trainer.prepare()  # trains one step and resets: step 0 again
        return
    trainer.run(1)  # a trainer at step n compiles on its next step, which counts as a step


def _train(trainer, action, steps, seconds, most_seconds, stop, send) -> str:
    """Trains and sends snapshots until paused, the steps are done or the time is up; returns
    which ended it."""
    from explorer.studies.playground import live  # deferred: loads TensorFlow, as only a worker does

    deadline = time.monotonic() + most_seconds
    state = {"ended": "steps done" if action == "step" else "paused"}

    def should_stop() -> bool:
        if stop.is_set():
            state["ended"] = "paused"
            return True
        if time.monotonic() >= deadline:
            state["ended"] = "time limit"
            return True
        return False

    for snapshot in live(trainer, seconds, stop=should_stop, steps=steps):
        send("snapshot", **compact(snapshot))
    return state["ended"]


def warm_pair(settings: dict, compiled: bool = True) -> dict:
    """A warm-up's steps (`Engine.warm_up`): builds `settings`' pair in this worker and keeps it
    for the first page session that starts those settings here; with `compiled`, compiles its
    training step too (the second step: a request that came meanwhile has gone first).

    Returns:
        {"address", "compile_seconds"} (0 before the step is compiled).
    """
    from distributed import get_worker  # deferred: the page imports this module without Dask

    parsed = PlaygroundSettings.from_dict(settings)
    key = settings_key(parsed)
    held = _WARM.get(key)
    if held is None:
        held = _build(parsed)
        _WARM.put(key, held)
    if compiled and not held.compiled:
        held.trainer.prepare()  # the training step and the look (its snapshot) compiled
        held.compiled = True
    return {"address": get_worker().address, "compile_seconds": round(held.trainer.compile_seconds, 2)}
