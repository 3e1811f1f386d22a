"""The tour's answers come from measurements: the shipped files or a net measured now."""

import json

import pytest

from explorer.shipped import pretrained
from explorer.views import tour


def test_every_step_names_a_measurement_in_the_module_and_a_link():
    assert len(tour.STEPS) == 8
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


def test_the_loss_surface_step_asks_what_the_measurement_can_answer(monkeypatch):
    """The question is about our coarse plane, not the textbook's wider basin; the paper's
    disagreement is in the reveal. Hand-made planes: 1 point of ResNet-56's within 1 nat, 3 of
    plain-56's."""
    from explorer.core.specs import make_spec
    from explorer.studies import landscape

    step = tour.STEPS[3]
    assert "1 nat" in step.question and "wider basin" not in step.question

    def plane(name, residual, inside):
        loss_2d = [[5.0] * 5 for _ in range(5)]
        for i in range(inside):
            loss_2d[2][1 + i] = 0.5
        spec = make_spec(56, 1)
        net = dict(spec.to_config(), residual=residual)
        return {"model": name, "net": net, "n": 64, "grid": [-1.0, -0.5, 0.0, 0.5, 1.0], "loss_2d": loss_2d,
                "alphas": [-1.0, 0.0, 1.0], "loss_1d": [3.0, 0.5, 3.0]}

    results = [plane("resnet56_v1", True, 1), plane("plain56_v1", False, 3)]
    monkeypatch.setattr(tour, "_shipped_pair", lambda: (["resnet56_v1", "plain56_v1"], ["a", "b"]))
    monkeypatch.setattr(tour, "resolve_source", lambda: ("synthetic", ""))
    monkeypatch.setattr(landscape, "landscape_study", lambda *args, **kwargs: results)
    answer, text = tour.landscape()
    assert answer == "the plain net"
    assert "Of the plane's 25 points, 1 of resnet56_v1's and 3 of plain56_v1's" in text
    assert "Li et al. (2018)" in text
