"""The app's handlers called directly, for behavior a browser test cannot pin down cheaply."""

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
    _, _, text, timer = app_module.tick_jobs(job_text)
    assert text.startswith("*") and ("unknown job id" in text or "no job yet" in text)
    assert timer.active is False
    _, text, timer = app_module.tick_heatmaps(job_text)
    assert "job" in text and timer.active is False


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
