"""The playground's page side (issue #34): the engine task (what it sends, pause, kept and warm
trainers) on a stand-in Dask worker, the page's session object on a stand-in engine, the
figures against the snapshot they draw, the link and the tour step."""

import itertools
import json
import math
import threading
import time
import typing
from concurrent.futures import Future
from types import SimpleNamespace

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest

from explorer.compute import playground_task
from explorer.compute.playground_sessions import Playgrounds
from explorer.core.playground_settings import MAX_SWEEP_BLOCK_STEPS, PlaygroundSettings, check_sweep_budget
from explorer.data.points import GRID_SIZE, features, grid_points
from explorer.views import links, playground_charts
from explorer.views.charts import PLAIN_COLOR, RESIDUAL_COLOR

TINY = PlaygroundSettings(blocks=2, width=8, points=100, batch_size=16, seed=5)


def fake_snapshot(step: int, blocks: int = 3, seed: int = 0) -> dict:
    """A snapshot as `PairTrainer.snapshot` makes one, from made-up numbers."""
    rng = np.random.default_rng([seed, step])
    out = {"step": step, "seconds": 0.1 * step, "steps_per_s": 10.0 if step else 0.0, "extent": 1.25,
           "grid_size": GRID_SIZE}
    for k, net in enumerate(("residual", "plain")):
        norms = None if step == 0 else (10.0 ** rng.uniform(-4, 0, blocks)).astype(np.float32)
        out[net] = {"train_loss": 0.7 - 0.01 * step - 0.1 * k, "test_loss": 0.75 - 0.01 * step,
                    "train_accuracy": 0.5 + 0.01 * step, "test_accuracy": 0.5,
                    "batch_loss": None if step == 0 else 0.6,
                    "boundary": rng.random((GRID_SIZE, GRID_SIZE)).astype(np.float32),
                    "gradient_norms": norms}
    return out


# ----------------------------------------------------------------------------- what crosses to the page


def test_compact_is_small_plain_data_and_expands_back():
    snap = fake_snapshot(7)
    message = playground_task.compact(snap)
    for values in message["nets"].values():  # msgpack-safe: bytes, numbers, None
        assert isinstance(values["boundary"], bytes) and len(values["boundary"]) == GRID_SIZE ** 2
        assert isinstance(values["gradient_norms"], bytes)
    back = playground_task.expand(message)
    for net in ("residual", "plain"):
        assert np.abs(back[net]["boundary"] - snap[net]["boundary"]).max() <= 0.5 / 255 + 1e-7
        np.testing.assert_array_equal(back[net]["gradient_norms"], snap[net]["gradient_norms"])
        assert back[net]["train_loss"] == snap[net]["train_loss"]
    first = playground_task.expand(playground_task.compact(fake_snapshot(0)))
    assert first["residual"]["gradient_norms"] is None and first["step"] == 0


# ----------------------------------------------------------------------------- the task, on a stand-in worker


class FakeWorker:
    address = "tcp://fake-worker:1"

    def __init__(self):
        self.events = []

    def log_event(self, topic, message):
        self.events.append((topic, message))


class FakeEvent:
    flags: typing.ClassVar[dict] = {}

    def __init__(self, name, client=None):
        self.name = name

    def is_set(self):
        return self.flags.get(self.name, False)


@pytest.fixture
def worker(monkeypatch):
    import distributed

    fake = FakeWorker()
    monkeypatch.setattr(distributed, "get_worker", lambda: fake)
    monkeypatch.setattr(distributed, "Event", FakeEvent)
    FakeEvent.flags = {}
    playground_task._OWNED.clear()
    playground_task._WARM.clear()
    return fake


def _snapshots(worker, run_id):
    return [message for _, message in worker.events
            if message["run"] == run_id and message["kind"] == "snapshot"]


def test_a_step_run_sends_the_nets_own_predictions_then_goes_on_pauses_and_resets(worker):
    result = playground_task.live_run("page", TINY.to_dict(), "step", "one", "topic", steps=30, seconds=0.05)
    assert result["ended"] == "steps done" and result["step"] == 30 and result["address"] == worker.address
    kinds = [message["kind"] for _, message in worker.events]
    assert kinds[:2] == ["status", "started"] and worker.events[1][1]["how"] == "built"
    snaps = [playground_task.expand(message) for message in _snapshots(worker, "one")]
    assert snaps[0]["step"] == 0 and snaps[-1]["step"] == 30
    assert all(a["step"] <= b["step"] for a, b in itertools.pairwise(snaps))
    # the last boundary is the plain net's own prediction on the grid (to the uint8 step)
    trainer = playground_task._OWNED.get("page").trainer
    logits = trainer.nets["plain"](features(grid_points(), TINY.features), training=False).numpy()[:, 0]
    expected = (1 / (1 + np.exp(-logits))).reshape(GRID_SIZE, GRID_SIZE)
    assert np.abs(snaps[-1]["plain"]["boundary"] - expected).max() <= 0.5 / 255 + 1e-5
    assert snaps[-1]["plain"]["gradient_norms"].shape == (TINY.blocks,)
    _goes_on_pauses_and_resets(worker, first=_snapshots(worker, "one")[0], step=30)


def _goes_on_pauses_and_resets(worker, first, step):
    """The same session again (its trainer kept, at `step`): Start goes on from there until
    paused, Reset goes back to the `first` snapshot, a run ends at its time limit."""

    def pause_after_two():
        while len(_snapshots(worker, "two")) < 3:
            time.sleep(0.01)
        FakeEvent.flags[playground_task.stop_event_name("two")] = True

    threading.Thread(target=pause_after_two, daemon=True).start()
    result = playground_task.live_run("page", TINY.to_dict(), "run", "two", "topic", seconds=0.05)
    assert result["ended"] == "paused" and result["step"] > step
    started = [m for _, m in worker.events if m["run"] == "two" and m["kind"] == "started"]
    assert started[0]["how"] == "kept" and _snapshots(worker, "two")[0]["step"] == step  # from where it was
    playground_task.live_run("page", TINY.to_dict(), "reset", "three", "topic")
    (reset,) = _snapshots(worker, "three")
    assert reset["step"] == 0 and reset["nets"]["plain"]["boundary"] == first["nets"]["plain"]["boundary"]
    timed = playground_task.live_run("page", TINY.to_dict(), "run", "four", "topic", seconds=0.01,
                                     most_seconds=0.0)
    assert timed["ended"] == "time limit"


def test_a_warm_pair_is_taken_by_the_first_session_and_refusals_are_clear(worker):
    built = playground_task.warm_pair(TINY.to_dict(), False)  # the warm-up's first step: the build only
    assert built["compile_seconds"] == 0
    warm = playground_task.warm_pair(TINY.to_dict())  # its second: the same pair, compiled
    assert warm["address"] == worker.address and warm["compile_seconds"] > 0
    playground_task.live_run("visitor", TINY.to_dict(), "step", "a", "topic", steps=1)
    started = [m for _, m in worker.events if m["kind"] == "started"]
    assert started[0]["how"] == "warm" and not [m for _, m in worker.events if m["kind"] == "status"
                                                and "compiling" in m["text"]]
    with pytest.raises(ValueError, match="action must be one of run, step, reset, look"):
        playground_task.live_run("visitor", TINY.to_dict(), "jump", "b", "topic")
    with pytest.raises(ValueError, match="steps must be a whole number from 1 to 1000"):
        playground_task.live_run("visitor", TINY.to_dict(), "step", "c", "topic", steps=5000)


# ----------------------------------------------------------------------------- the session object


class FakeEngine:
    """Runs a made-up live run in a thread: started, then a snapshot every 20 ms until its
    stop is signalled (or its steps are done); records where each run was sent."""

    def __init__(self, fail=False, hang=False, late=False):
        self.sent, self.stops, self.fail, self.hang, self.late = [], set(), fail, hang, late

    def workers(self):
        return {"tcp://kept:1": {}, "tcp://warm:2": {}}

    def warm_up(self, steps, home=None, resources=None):
        """The warm pair: built, then compiled, as two steps."""
        assert [step.fn for step in steps] == [playground_task.warm_pair] * 2
        assert steps[0].args[1:] == (False,)  # the build, then the compile
        future = Future()
        future.set_result({"address": "tcp://warm:2", "compile_seconds": 1.0})
        return future

    def submit(self, fn, *args, events=None, workers=None, priority=None, steps=None, **kwargs):
        future = Future()
        _key, _settings, action, run_id = args
        self.sent.append({"action": action, "workers": workers, "run": run_id})

        def run():
            if self.hang:  # sent to a worker that is gone: nothing ever starts
                return
            if self.fail:
                future.set_exception(ValueError("the worker says no"))
                return
            if self.late:  # the result (with its last snapshot) before the events, then an old one
                future.set_result({"run": run_id, "address": "tcp://kept:1", "step": 7, "ended": "steps done",
                                   "last": playground_task.compact(fake_snapshot(7))})
                time.sleep(0.3)
                events({"run": run_id, "kind": "started", "how": "kept", "address": "tcp://kept:1"})
                events({"run": run_id, "kind": "snapshot", **playground_task.compact(fake_snapshot(5))})
                return
            events({"run": run_id, "kind": "started", "how": "built", "address": "tcp://kept:1"})
            step = 0 if action == "reset" else len(self.sent) * 100
            while True:
                events({"run": run_id, "kind": "snapshot", **playground_task.compact(fake_snapshot(step))})
                if action in ("reset", "look") or run_id in self.stops or (action == "step" and step >= 5):
                    break
                step += 1
                time.sleep(0.02)
            future.set_result({"run": run_id, "address": "tcp://kept:1", "step": step, "ended": "paused"})

        threading.Thread(target=run, daemon=True).start()
        return future

    def result(self, future, timeout=None):
        return future.result(timeout)

    def stop(self, run_id, clear=False):
        if not clear:
            self.stops.add(run_id)


@pytest.fixture
def fake_engine():
    return FakeEngine()


def _playgrounds(fake, **kwargs):
    return Playgrounds(lambda: fake, stop_signal=fake.stop, **kwargs)


def _until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_sessions_keep_the_newest_snapshot_pause_and_go_on_where_their_trainer_is(fake_engine):
    grounds = _playgrounds(fake_engine)
    grounds.warm(TINY)
    _until(lambda: grounds.is_warm(TINY))
    grounds.start("a", TINY)
    assert fake_engine.sent[0]["workers"] == ["tcp://warm:2"]  # the first run goes where the pair is warm
    view = grounds.wait_for("a", 3, 5.0, "snapshots")
    assert view["state"] == "training" and view["snapshot"]["step"] > 100
    assert view["history"]["step"] == sorted(set(view["history"]["step"]))  # one point a step, in order
    assert grounds.start("a", TINY)["state"] == "training" and len(fake_engine.sent) == 1  # already training
    paused = grounds.pause("a")
    from ui.playground_handlers import summary

    assert paused["state"] == "paused" and summary(paused)["step"] == paused["snapshot"]["step"]
    norms = paused["snapshot"]["plain"]["gradient_norms"]
    assert summary(paused)["plain"]["gradient_norms"] == [float(v) for v in norms]  # JSON: a list
    grounds.start("a", TINY)
    assert fake_engine.sent[1]["workers"] == ["tcp://kept:1"]  # Start again: where its trainer is
    grounds.pause("a")
    other = TINY.replace(blocks=3)
    grounds.step("a", other, 5)
    assert fake_engine.sent[2]["action"] == "step" and fake_engine.sent[2]["workers"] is None
    grounds.reset("a", other)
    view = grounds.wait_for("a", 0, 5.0)
    _until(lambda: grounds.view("a")["state"] == "paused")
    view = grounds.view("a")
    assert view["snapshot"]["step"] == 0 and view["history"]["step"] == [0] and view["settings"] == other
    with pytest.raises(ValueError, match="steps must be a whole number from 1 to 1000"):
        grounds.step("a", other, 0)


def test_at_most_max_live_sessions_train_and_an_abandoned_run_is_paused(fake_engine):
    grounds = _playgrounds(fake_engine, max_live=1, abandoned_seconds=0.3)
    grounds.start("a", TINY)
    with pytest.raises(ValueError, match="1 playgrounds are training on this server now"):
        grounds.start("b", TINY)
    _until(lambda: grounds._sessions["a"].state == "paused", seconds=5.0)  # nobody looked: paused
    assert fake_engine.sent[0]["run"] in fake_engine.stops
    grounds.start("b", TINY)  # a place again


def test_a_failed_run_says_why_and_a_run_no_worker_takes_is_cancelled(monkeypatch):
    from explorer.compute import playground_sessions

    grounds = _playgrounds(FakeEngine(fail=True))
    grounds.start("a", TINY)
    _until(lambda: grounds.view("a")["state"] == "failed")
    assert grounds.view("a")["error"] == "the worker says no"
    late = _playgrounds(FakeEngine(late=True))  # events and results travel apart
    late.step("a", TINY, 7)
    _until(lambda: late.view("a")["state"] == "paused")
    time.sleep(0.5)  # the late events have come and gone
    assert late.view("a")["state"] == "paused" and late.view("a")["snapshot"]["step"] == 7
    assert late.view("a")["history"]["step"] == [7]
    monkeypatch.setattr(playground_sessions, "START_LIMIT_SECONDS", 0.3)
    stuck = _playgrounds(FakeEngine(hang=True))
    stuck.start("a", TINY)
    _until(lambda: stuck.view("a")["state"] == "failed")
    assert "no engine worker took this run within 0 s" in stuck.view("a")["error"]
    with pytest.raises(ValueError, match="nothing to pause"):
        grounds.pause("nobody")


# ----------------------------------------------------------------------------- the figures


def test_the_boundary_figure_draws_the_snapshot_and_the_points():
    snap = fake_snapshot(3)
    fig = playground_charts.boundary_figure(TINY, snap)
    heatmaps = [trace for trace in fig.data if trace.type == "heatmap"]
    for heatmap, net in zip(heatmaps, ("residual", "plain")):  # in whole percent
        np.testing.assert_array_equal(np.asarray(heatmap.z), np.rint(100 * snap[net]["boundary"]))
    points = playground_charts.points_of(TINY)
    drawn = sum(len(trace.x) for trace in fig.data if trace.type == "scatter")
    assert drawn == 2 * (len(points.x_train) + len(points.x_test))  # every point, in both panels
    class_one_train = next(t for t in fig.data if t.type == "scatter" and t.name == "class 1, train")
    assert len(class_one_train.x) == int((points.y_train == 1).sum())
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:2] == ["Residual net", "Plain net"] and "(step 3)" in fig.layout.title.text
    assert fig.layout.annotations[0].font.color == RESIDUAL_COLOR
    assert fig.layout.annotations[1].font.color == PLAIN_COLOR
    assert "press Start" in playground_charts.boundary_figure(TINY, None).layout.title.text
    # a live tick's update holds what the whole figure of the next snapshot would change
    later = fake_snapshot(4)
    update = playground_charts.boundary_update(TINY, later)
    whole = playground_charts.boundary_figure(TINY, later)
    assert update["title"] == whole.layout.title.text
    assert update["z"] == [np.asarray(t.z).tolist() for t in whole.data if t.type == "heatmap"]


def test_a_live_tick_sends_an_update_when_the_same_boundaries_are_on_screen(monkeypatch):
    from ui import playground_handlers as handlers

    view = {"state": "training", "note": "", "error": "", "ended": "", "version": 5, "snapshots": 5,
            "settings": TINY, "snapshot": fake_snapshot(6), "history": {"step": []}}
    monkeypatch.setattr(handlers, "playgrounds", lambda: SimpleNamespace(view=lambda key: view))
    key = handlers.boundary_key(view)
    *_, update, _timer, drawn = handlers.tick([4, time.monotonic(), key])
    assert json.loads(update) == playground_charts.boundary_update(TINY, view["snapshot"])
    assert drawn[0] == 5 and drawn[2] == key
    outputs = handlers.tick([4, time.monotonic(), None])  # nothing of these settings drawn: all of it
    assert isinstance(outputs[1], go.Figure) and outputs[4] == gr.skip()
    view["state"] = "paused"  # a run that ended is drawn whole
    outputs = handlers.tick([4, time.monotonic(), key])
    assert isinstance(outputs[1], go.Figure) and outputs[4] == gr.skip()


def test_the_loss_curves_and_the_gradient_strip():
    history = {"step": [0, 10, 20],
               "residual": {"train_loss": [0.7, 0.5, 0.3], "test_loss": [0.7, 0.6, float("nan")]},
               "plain": {"train_loss": [0.7, 0.69, 0.69], "test_loss": [0.7, 0.7, 0.7]}}
    fig = playground_charts.loss_figure(history)
    by_name = {trace.name: trace for trace in fig.data}
    assert list(by_name["residual, train"].y) == [0.7, 0.5, 0.3] and by_name["residual, test"].y[2] is None
    assert by_name["plain, train"].line.color == PLAIN_COLOR and by_name["residual, test"].line.dash == "dash"
    snap = fake_snapshot(4, blocks=5)
    strip = playground_charts.gradient_strip(snap)
    (heatmap,) = strip.data
    assert list(heatmap.y) == ["Plain net", "Residual net"] and list(heatmap.x) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(heatmap.z[1], np.log10(snap["residual"]["gradient_norms"]), rtol=1e-6)
    assert heatmap.zmin <= np.min(heatmap.z) and heatmap.zmax >= np.max(heatmap.z)
    empty = playground_charts.gradient_strip(fake_snapshot(0))
    assert "no step trained yet" in empty.layout.annotations[0].text


def test_the_sweep_figure_and_the_status_line():
    rows = [{"blocks": b, "net": net, "train_loss": loss, "test_loss": 0.8, "train_accuracy": 0.6}
            for b, plain, residual in ((2, 0.4, 0.41), (8, 0.6, 0.45), (32, float("nan"), 0.5))
            for net, loss in (("plain", plain), ("residual", residual))]
    result = {"rows": rows, "depths": [2, 8, 32], "steps": 100, "settings": TINY.to_dict()}
    fig = playground_charts.sweep_figure(result)
    plain = next(t for t in fig.data if t.name == "Plain net")
    assert list(plain.x) == [2, 8, 32] and list(plain.y) == [0.4, 0.6, None]
    assert plain.line.color == PLAIN_COLOR
    assert next(t for t in fig.data if t.name == "Residual net").line.color == RESIDUAL_COLOR
    view = {"state": "training", "note": "", "error": "", "ended": "", "snapshot": fake_snapshot(12)}
    text = playground_charts.status_text(view)
    assert text.startswith("**Step 12** · training · 10 pair steps/s")
    assert "Plain net: training loss 0.480" in text
    limited = playground_charts.status_text({**view, "state": "paused", "ended": "time limit"})
    assert "two minutes at most" in limited
    assert math.isclose(playground_charts.CHANCE_LOSS, 0.6931, abs_tol=1e-4)


# ----------------------------------------------------------------------------- the link, the budget, the tour


def test_a_link_holds_every_setting_and_drops_bad_ones_with_the_reason():
    settings = PlaygroundSettings(data="xor", noise=0.2, blocks=32, width=24, features=("x", "y", "xy"),
                                  norm="layer", init="zero", optimizer="sgd", learning_rate=0.05,
                                  batch_size=64, seed=9, points=800, train_fraction=0.6)
    text = links.playground_query(settings.to_dict())
    assert text.startswith("tab=playground&data=xor") and "features=x%2Cy%2Cxy" in text
    from urllib.parse import parse_qsl

    assert links.parse(dict(parse_qsl(text)), []).playground == settings.to_dict()
    assert links.playground_query(PlaygroundSettings().to_dict()) == "tab=playground"
    view = links.parse({"tab": "playground", "blocks": "500", "batch_size": "300", "data": "spiral"}, [])
    assert view.playground == PlaygroundSettings().to_dict()
    assert "blocks=500 (blocks must be a whole number from 1 to 128" in view.notice()
    assert "batch_size=300 (batch size must be at most the 250 training points" in view.notice()
    small = links.parse({"tab": "playground", "points": "50", "train_fraction": "0.1"}, [])
    assert small.playground["batch_size"] == 5 and not small.ignored  # the default batch, cut to the points


def test_page_controls_and_the_link_agree():
    from ui.playground import link_values
    from ui.playground_handlers import page_settings

    settings = PlaygroundSettings(features=("x", "y", "x2", "xy"), blocks=64)
    assert page_settings(*link_values(settings.to_dict())) == settings
    with pytest.raises(ValueError, match="blocks must be a whole number from 1 to 128"):
        page_settings(*link_values({**settings.to_dict(), "blocks": 0}))


def test_a_page_sweep_has_a_budget_and_the_live_runs_a_cap():
    from explorer.compute.playground_sessions import max_live

    check_sweep_budget([2, 4, 8, 16, 32, 64], 300)  # the default
    with pytest.raises(ValueError, match=f"more than the {MAX_SWEEP_BLOCK_STEPS:,} a sweep may here"):
        check_sweep_budget([128, 128], 1000)
    assert max_live(None) == max_live("") == 2 and max_live("5") == 5
    for bad in ("0", "17", "two"):
        with pytest.raises(ValueError, match="EXPLORER_PLAYGROUNDS must be a whole number from 1 to 16"):
            max_live(bad)


def test_the_tour_step_answers_from_the_measured_rows(monkeypatch):
    from explorer.studies import playground_sweep
    from explorer.views import tour

    step = tour.STEPS[-1]
    assert "32-block plain net" in step.question and step.link == "tab=playground&data=spiral&blocks=32"
    assert links.parse(dict(part.split("=") for part in step.link.split("&")), []).playground["blocks"] == 32

    def row(net, loss, accuracy):
        return {"blocks": 32, "net": net, "train_loss": loss, "train_accuracy": accuracy}

    for plain, answer in ((row("plain", 0.73, 0.54), "no: it stays near chance"),
                          (row("plain", 0.45, 0.78), "partly: it trails its residual twin"),
                          (row("plain", 0.31, 0.86), "yes, as well as its residual twin")):
        residual = row("residual", 0.30, 0.87)
        asked = {}

        def sweep(settings, depths, steps, progress=None, rows=(plain, residual), asked=asked):
            asked.update(settings=settings, depths=depths, steps=steps)
            return {"rows": list(rows), "steps": steps}

        monkeypatch.setattr(playground_sweep, "depth_sweep", sweep)
        said, text = tour.playground_fit()
        assert said == answer and said in step.choices
        assert asked["depths"] == [32] and asked["settings"].data == "spiral"
        assert asked["settings"].blocks == 32
        assert f"ends at training loss {plain['train_loss']:.3f}" in text
        assert "residual twin at 0.300 (87%)" in text
