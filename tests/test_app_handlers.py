"""The page's handlers called directly (`ui/`), for behavior a browser test cannot pin down cheaply."""

import os

import pytest


@pytest.fixture(scope="module")
def ui_session(tmp_path_factory):
    """The job manager of `ui.session`, made on first use, over private runs."""
    from ui import session

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPLORER_RUNS", str(tmp_path_factory.mktemp("runs")))  # read on first use
        patch.setattr(session, "_manager", None)
        session.jobs()
        yield session


@pytest.mark.parametrize("job_text", ["ab", "", "  ,  "])
def test_a_bad_job_id_on_a_timer_tick_stops_the_timer_with_a_line(ui_session, job_text):
    # a partial id typed while the timer runs: one line on the page and the timer off, not a
    # gr.Error raised again on every tick
    from ui import jobs_view

    _, _, text, timer, _ = jobs_view.tick_jobs(job_text)
    assert text.startswith("*") and ("unknown job id" in text or "no job yet" in text)
    assert timer.active is False
    _, text, timer, _ = jobs_view.tick_heatmaps(job_text)
    assert "job" in text and timer.active is False


def test_a_tick_between_epochs_sends_the_progress_line_but_not_the_charts(ui_session, monkeypatch):
    """Charts are rebuilt and sent only when a job has a new epoch or gradient sample."""
    import gradio as gr

    from ui import jobs_view

    history = {"epochs": [{"epoch": 1, "loss": 2.0, "accuracy": 0.2, "val_loss": 2.1, "val_accuracy": 0.2,
                           "learning_rate": 0.1}],
               "grad_norms": {"layers": ["stem_conv"], "steps": [10], "norms": [[0.5]]}}
    status = {"id": "abc123abc123", "state": "running", "label": "ResNet-20 v1", "epoch": 1, "epochs": 3,
              "step": 5, "steps_per_epoch": 39, "eta_seconds": 30.0, "queue_position": None,
              "device": "CPU", "data": "synthetic", "history": history, "error": None, "residual": True}

    class Jobs:
        def status(self, job_id):
            return status

    monkeypatch.setattr(ui_session, "_manager", Jobs())
    curves, heatmap, text, timer, charted = jobs_view.tick_jobs("abc123abc123")
    assert curves != gr.skip() and heatmap != gr.skip() and "step 5/39" in text and timer.active
    status["step"] = 6
    again = jobs_view.tick_jobs("abc123abc123", charted)
    assert again[0] == gr.skip() and again[1] == gr.skip() and "step 6/39" in again[2]
    history["epochs"].append({**history["epochs"][0], "epoch": 2})
    after_epoch = jobs_view.tick_jobs("abc123abc123", again[4])
    assert after_epoch[0] != gr.skip() and after_epoch[4] != charted


def test_watch_jobs_still_reports_a_bad_id_as_an_error(ui_session):
    import gradio as gr

    from ui import jobs_view

    with pytest.raises(gr.Error, match="unknown job id"):
        jobs_view.watch_jobs("ab")


def test_the_insight_lab_opens_on_the_deepest_shipped_pair(tmp_path, monkeypatch):
    import json

    import gradio as gr

    from explorer.shipped import pretrained
    from ui import insight

    def entry(name, depth, residual):
        return {"name": name, "file": f"{name}.keras", "depth": depth, "version": 1,
                "residual": residual, "shortcut": "projection"}

    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [
        entry("resnet20_v1", 20, True), entry("plain20_v1", 20, False),
        entry("resnet56_v1", 56, True), entry("plain56_v1", 56, False), entry("resnet110_v1", 110, True)]}))
    monkeypatch.setattr(pretrained, "PRETRAINED", tmp_path)
    assert pretrained.default_pair([("x", "resnet20_v1")]) == ("resnet56_v1", "plain56_v1")
    assert insight.follow_twin("plain20_v1")["value"] == "resnet20_v1"
    assert insight.follow_twin("resnet110_v1") == gr.skip()  # no twin: left alone


def test_an_architecture_download_is_built_once_per_architecture():
    from explorer.core.specs import make_spec
    from explorer.nets.models import checkpoint_spec
    from ui import architecture

    first = architecture.download_architecture(20, 1, residual=False)
    mtime = os.stat(first).st_mtime_ns
    again = architecture.download_architecture(20, 1, residual=False)
    assert again == first and os.stat(again).st_mtime_ns == mtime  # not rebuilt
    assert checkpoint_spec(first) == make_spec(20, 1, residual=False)


def test_the_app_module_builds_the_page_without_making_the_job_manager(monkeypatch):
    """Importing app.py (Spaces, `gradio app.py`) lays out the page; the job manager and its
    runs folder are made on the first request that needs them."""
    import importlib
    import sys

    from ui import session

    monkeypatch.setattr(session, "_manager", None)
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    assert app.demo is not None and session._manager is None
    assert {"train_start", "classify", "lesion"} <= {
        dependency.api_name for dependency in app.demo.fns.values()}


def test_the_progress_line_counts_steps_in_the_epoch_they_belong_to():
    """An epoch end reads "epoch 1/2, step 7/7", then the next epoch "epoch 2/2, step 0/7";
    never "epoch 2/2, step 7/7" before "step 0/7"."""
    from ui.jobs_view import progress_line

    base = {"id": "abc", "label": "ResNet-20 v1", "state": "running", "epochs": 2, "steps_per_epoch": 7,
            "eta_seconds": 10, "queue_position": None, "device": "", "data": "", "error": None}
    end_of_first = progress_line({**base, "epoch": 1, "current_epoch": 1, "step": 7})
    start_of_second = progress_line({**base, "epoch": 1, "current_epoch": 2, "step": 0})
    assert "epoch 1/2, step 7/7" in end_of_first and "epoch 2/2, step 0/7" in start_of_second


def test_a_downloaded_model_is_named_after_the_net_and_the_job():
    from ui.jobs_view import model_file_name

    assert model_file_name("ResNet-20 v1", "0569b1c04573") == "resnet20_v1_job-0569b1c04573.keras"
    assert model_file_name("Plain-56 v1", "ab") == "plain56_v1_job-ab.keras"


def test_the_architecture_tab_resets_what_the_imagenet_family_cannot_use():
    """ImageNet has no version choice (it is hidden and reset to 1) and no 56-layer net."""
    from ui.architecture import follow_family

    version, depth = follow_family("imagenet", 29)
    assert version.visible is False and version.value == 1 and depth.value == 50
    version, depth = follow_family("cifar", 50)
    assert version.visible is True and depth.value == 56
    assert follow_family("imagenet", 101)[1].value == 101


def test_classify_opens_on_the_most_accurate_shipped_checkpoint(tmp_path, monkeypatch):
    import json

    from explorer.shipped import pretrained

    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [
        {"name": "resnet20_v1", "file": "a.keras", "test_accuracy": 0.8896},
        {"name": "resnet56_v1", "file": "b.keras", "test_accuracy": 0.9072},
        {"name": "plain56_v1", "file": "c.keras", "test_accuracy": 0.8447}]}))
    monkeypatch.setattr(pretrained, "PRETRAINED", tmp_path)
    assert pretrained.most_accurate([("x", "resnet20_v1")]) == "resnet56_v1"


def test_a_block_clicked_on_the_graph_is_chosen_and_one_block_expands():
    """The block panel: a click hands a block's name to the selector (checked against the net
    on screen); its button expands that block; a new net drops a block it does not have."""
    import gradio as gr

    from ui.architecture import _expand_block, _fit_expand, expand_view
    from ui.block_panel import choose_block

    assert choose_block("stage3_block9", 56, 1, "cifar", True, "projection").value == "stage3_block9"
    with pytest.raises(gr.Error, match="ResNet-20 v1 has no block 'stage3_block9'"):
        choose_block("stage3_block9", 20, 1, "cifar", True, "projection")
    drawn = {"drawn": {"depth": 20, "version": 1, "family": "cifar", "residual": True,
                       "shortcut": "projection"}}
    with pytest.raises(gr.Error, match="has no block"):  # an overlay drew ResNet-20: its blocks count
        choose_block("stage3_block9", 56, 1, "cifar", True, "projection", drawn)
    choice = _expand_block("stage2_block4")
    assert choice.value == "stage2_block4" and ("stage2_block4's layers", "stage2_block4") in choice.choices
    assert _fit_expand(56, 1, "cifar", True, "projection", "stage3_block9") == gr.skip()  # kept
    assert _fit_expand(20, 1, "cifar", True, "projection", "stage2") == gr.skip()
    assert _fit_expand(20, 1, "cifar", True, "projection", "stage3_block9") == "none"
    figure, twin = expand_view(56, 1, "cifar", True, "projection", "stage2_block4", False)
    names = {n for t in figure.data if t.mode == "markers+text" for n in t.customdata}
    assert "stage2_block4" in names and any(t.name == "add" for t in figure.data)
    assert twin["visible"] is False
