"""Training that is visibly alive: running means logged within epochs, page jobs sized so a
brief one has dozens of points and heatmap columns, and what a run is doing before its first
step."""

import json

import pytest

from explorer.train.config import (
    PAGE_DEFAULTS,
    PAGE_GRADIENT_COLUMNS,
    PAGE_JOB_POINTS,
    PAGE_POINTS_PER_EPOCH,
    TrainConfig,
    page_job,
)


def logged_steps(steps_per_epoch: int, epochs: int, log_points: int) -> list[int]:
    """The steps `RunLog` logs, written out independently: the first, then every
    steps_per_epoch // log_points after the last one logged, and every epoch's last."""
    every, logged = max(1, steps_per_epoch // log_points), []
    for step in range(1, steps_per_epoch * epochs + 1):
        if not logged or step - logged[-1] >= every or step % steps_per_epoch == 0:
            logged.append(step)
    return logged


@pytest.mark.parametrize("subset, epochs", [(5000, 3), (1000, 2), (512, 2), (0, 1), (50000, 2)])
def test_a_page_job_logs_at_least_24_points_where_its_images_allow(subset, epochs):
    config = page_job(TrainConfig(subset=subset, epochs=epochs, data="synthetic"))
    steps_per_epoch = (subset or 50_000) // config.batch_size
    assert config.steps_per_execution == 1  # the first point after the first step
    points = logged_steps(steps_per_epoch, epochs, config.log_points)
    assert len(points) >= PAGE_JOB_POINTS
    assert len(points) <= epochs * (2 * PAGE_POINTS_PER_EPOCH + 1)  # a long epoch's history stays small
    # gradients at the first step, then every grad_every steps
    columns = 1 + (steps_per_epoch * epochs - 1) // config.grad_every
    assert columns >= PAGE_GRADIENT_COLUMNS


def test_the_default_page_job_keeps_the_papers_batch():
    config = page_job(TrainConfig(subset=PAGE_DEFAULTS["subset"], epochs=PAGE_DEFAULTS["epochs"],
                                  data="synthetic"))
    assert PAGE_DEFAULTS["subset"] == 4000 and config.batch_size == 128 and config.steps_per_execution == 1
    assert config.grad_every == 3  # 62 steps: gradients at steps 1, 4, ..., 61: 21 columns
    assert logged_steps(31, 2, config.log_points) == list(range(1, 63))


def test_running_means_are_logged_within_epochs_and_end_on_the_epochs_figures(tmp_path):
    from explorer.train.training import train

    config = page_job(TrainConfig(depth=8, subset=768, epochs=2, data="synthetic", test_subset=64,
                                  precision="float32"))
    train(config, tmp_path / "run", verbose=0)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    points, epochs = history["steps"], history["epochs"]
    steps_per_epoch = 768 // config.batch_size
    assert points["step"] == logged_steps(steps_per_epoch, 2, config.log_points)
    assert len(points["step"]) >= PAGE_JOB_POINTS
    assert points["epoch"] == [round(step / steps_per_epoch, 4) for step in points["step"]]
    assert points["epoch"][0] < 1 and points["epoch"][-1] == 2
    # Keras' batch logs are the epoch's running mean: at an epoch's last step, the epoch's figure
    for epoch in epochs:
        at_end = points["step"].index(epoch["epoch"] * steps_per_epoch)
        assert points["loss"][at_end] == pytest.approx(epoch["loss"], abs=1e-4)
        assert points["accuracy"][at_end] == pytest.approx(epoch["accuracy"], abs=1e-4)
    total = 2 * steps_per_epoch
    assert history["grad_norms"]["steps"] == list(range(1, total + 1, config.grad_every))
    assert len(history["grad_norms"]["steps"]) >= PAGE_GRADIENT_COLUMNS
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "done" and status["phase"] == "training"


def test_the_curves_draw_the_steps_in_fractions_of_an_epoch():
    from explorer.views.charts import training_curves

    history = {"epochs": [{"epoch": 1, "loss": 2.0, "val_loss": 2.1, "accuracy": 0.3, "val_accuracy": 0.28,
                           "learning_rate": 0.1}],
               "steps": {"step": [2, 4], "epoch": [0.5, 1.0], "loss": [2.2, 2.0], "accuracy": [0.2, 0.3],
                         "learning_rate": [0.05, 0.1]}}
    traces = {trace.name: trace for trace in training_curves([("ResNet-8 v1", history)]).data}
    assert list(traces["ResNet-8 v1 train loss"].x) == [0.5, 1.0]
    assert traces["ResNet-8 v1 train loss"].mode == "lines"
    assert list(traces["ResNet-8 v1 test loss"].x) == [1]


@pytest.mark.parametrize("phase, shown", [
    (None, "starting Python and TensorFlow"), ("loading data", "loading data"),
    ("compiling: the first steps trace the training graph", "compiling")])
def test_the_progress_line_says_what_a_job_does_before_its_first_step(phase, shown):
    from ui.jobs_view import progress_line

    status = {"label": "ResNet-20 v1", "id": "abc", "state": "running", "phase": phase, "epoch": 0,
              "epochs": 2, "step": 0, "steps_per_epoch": None, "eta_seconds": None, "device": "",
              "data": "", "error": ""}
    assert shown in progress_line(status)
    assert "step 0" not in progress_line(status)


def test_the_gradient_tab_opens_on_its_default_view_once_measured(monkeypatch):
    import gradio as gr

    from ui import gradients

    calls = []
    monkeypatch.setattr(gradients, "gradient_flow",
                        lambda *args: calls.append(args) or ("figure", "reading", "file"))
    monkeypatch.setattr(gradients, "_default_ready", __import__("threading").Event())
    defaults = gradients.DEFAULT_VIEW
    asked = (defaults["depth"], defaults["version"], defaults["batch_size"], defaults["seed"], "kernels")
    skipped = gradients.default_view_if_ready(*asked)
    assert all(isinstance(value, type(gr.skip())) for value in skipped) and not calls  # not measured yet
    gradients._default_ready.set()
    assert gradients.default_view_if_ready(*asked) == ("figure", "reading", "file")
    other = (56, *asked[1:])
    assert all(isinstance(value, type(gr.skip())) for value in gradients.default_view_if_ready(*other))
    assert calls == [asked]
