"""The app's handlers called directly, for behavior a browser test cannot pin down cheaply."""

import os

import pytest


@pytest.fixture(scope="module")
def app_module(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_RUNS", str(tmp_path_factory.mktemp("runs")))  # read at import
        import app

    return app


@pytest.mark.parametrize("job_text", ["ab", "", "  ,  "])
def test_a_bad_job_id_on_a_timer_tick_stops_the_timer_with_a_line(app_module, job_text):
    # a partial id typed while the timer runs: one line on the page and the timer off, not a
    # gr.Error raised again on every tick
    _, _, text, timer, _ = app_module.tick_jobs(job_text)
    assert text.startswith("*") and ("unknown job id" in text or "no job yet" in text)
    assert timer.active is False
    _, text, timer, _ = app_module.tick_heatmaps(job_text)
    assert "job" in text and timer.active is False


def test_a_tick_between_epochs_sends_the_progress_line_but_not_the_charts(app_module, monkeypatch):
    """Charts are rebuilt and sent only when a job has a new epoch or gradient sample."""
    import gradio as gr

    history = {"epochs": [{"epoch": 1, "loss": 2.0, "accuracy": 0.2, "val_loss": 2.1, "val_accuracy": 0.2,
                           "learning_rate": 0.1}],
               "grad_norms": {"layers": ["stem_conv"], "steps": [10], "norms": [[0.5]]}}
    status = {"id": "abc123abc123", "state": "running", "label": "ResNet-20 v1", "epoch": 1, "epochs": 3,
              "step": 5, "steps_per_epoch": 39, "eta_seconds": 30.0, "queue_position": None,
              "device": "CPU", "data": "synthetic", "history": history, "error": None, "residual": True}

    class Jobs:
        def status(self, job_id):
            return status

    monkeypatch.setattr(app_module, "JOBS", Jobs())
    curves, heatmap, text, timer, charted = app_module.tick_jobs("abc123abc123")
    assert curves != gr.skip() and heatmap != gr.skip() and "step 5/39" in text and timer.active
    status["step"] = 6
    again = app_module.tick_jobs("abc123abc123", charted)
    assert again[0] == gr.skip() and again[1] == gr.skip() and "step 6/39" in again[2]
    history["epochs"].append({**history["epochs"][0], "epoch": 2})
    after_epoch = app_module.tick_jobs("abc123abc123", again[4])
    assert after_epoch[0] != gr.skip() and after_epoch[4] != charted


def test_watch_jobs_still_reports_a_bad_id_as_an_error(app_module):
    import gradio as gr

    with pytest.raises(gr.Error, match="unknown job id"):
        app_module.watch_jobs("ab")


def test_the_insight_lab_opens_on_the_deepest_shipped_pair(app_module, tmp_path, monkeypatch):
    import json

    from explorer import inference

    def entry(name, depth, residual):
        return {"name": name, "file": f"{name}.keras", "depth": depth, "version": 1,
                "residual": residual, "shortcut": "projection"}

    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [
        entry("resnet20_v1", 20, True), entry("plain20_v1", 20, False),
        entry("resnet56_v1", 56, True), entry("plain56_v1", 56, False), entry("resnet110_v1", 110, True)]}))
    monkeypatch.setattr(inference, "PRETRAINED", tmp_path)
    assert app_module._default_pair([("x", "resnet20_v1")]) == ("resnet56_v1", "plain56_v1")
    assert app_module.follow_twin("plain20_v1")["value"] == "resnet20_v1"
    assert app_module.follow_twin("resnet110_v1") == app_module.gr.skip()  # no twin: left alone


def test_an_architecture_download_is_built_once_per_architecture(app_module):
    from explorer.models import checkpoint_spec
    from explorer.specs import make_spec

    first = app_module.download_architecture(20, 1, residual=False)
    mtime = os.stat(first).st_mtime_ns
    again = app_module.download_architecture(20, 1, residual=False)
    assert again == first and os.stat(again).st_mtime_ns == mtime  # not rebuilt
    assert checkpoint_spec(first) == make_spec(20, 1, residual=False)
