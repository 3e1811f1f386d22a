"""The tour's answers come from measurements: the shipped files or a net measured now."""

import json

import pytest

from explorer.shipped import pretrained
from explorer.views import tour


def test_every_step_names_a_measurement_in_the_module_and_a_link():
    assert len(tour.STEPS) == 6
    for step in tour.STEPS:
        assert callable(step.measure) and step.link.startswith("tab=")
        assert len(step.choices) >= 2


def test_the_degradation_step_reads_the_shipped_histories(tmp_path, monkeypatch):
    """Made-up histories: plain-56 ends with 20% training error, plain-20 with 10%."""
    (tmp_path / "histories").mkdir()
    entries = []
    for name, depth, accuracy in (("plain20_v1", 20, 0.9), ("plain56_v1", 56, 0.8)):
        entries.append({"name": name, "file": f"{name}.keras", "depth": depth, "version": 1,
                        "residual": False, "shortcut": "projection"})
        epochs = [{"epoch": 1, "train_error": round(1 - accuracy, 4), "test_error": round(1 - accuracy, 4)}]
        (tmp_path / "histories" / f"{name}.json").write_text(json.dumps({"epochs": epochs}))
    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": entries}))
    monkeypatch.setattr(pretrained, "PRETRAINED", tmp_path)
    answer, text = tour.degradation()
    assert answer == "plain-56" and "plain-56 20.0%, plain-20 10.0%" in text


def test_the_depth_step_counts_the_parameters_from_the_plan():
    answer, text = tour.depth_limit()
    assert answer == "no, higher test error" and "19,558,378 parameters" in text and "1,742,762" in text


def test_the_pair_steps_say_why_without_a_shipped_pair(tmp_path, monkeypatch):
    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": []}))
    monkeypatch.setattr(pretrained, "PRETRAINED", tmp_path)
    with pytest.raises(ValueError, match="plain twin"):
        tour.lesion()


def test_reveal_asks_for_a_prediction_first():
    from ui.tour import reveal

    with pytest.raises(ValueError, match="pick your answer first"):
        reveal(0, None)
