"""The degradation reading states what the runs' numbers show, and nothing they do not."""

import pytest

from explorer.histories import degradation_reading


def _run(label, depth, residual, train_errors):
    return {"label": label, "depth": depth, "version": int(label[-1]), "residual": residual,
            "planned_epochs": len(train_errors),
            "epochs": [{"epoch": i + 1, "train_error": t, "test_error": t + 0.05}
                       for i, t in enumerate(train_errors)]}


def test_degradation_reading_states_what_the_numbers_show():
    runs = [_run("Plain-20 v1", 20, False, [0.5, 0.3, 0.2]),
            _run("Plain-56 v1", 56, False, [0.6, 0.4]),  # still training: compared at epoch 2
            _run("ResNet-20 v1", 20, True, [0.4, 0.2, 0.1]),
            _run("ResNet-56 v1", 56, True, [0.3, 0.15, 0.05])]
    text = degradation_reading(runs)
    assert "at epoch 2, **Plain-56 v1** has higher training error than **Plain-20 v1** (40.0% against 30.0%" in text
    assert "degradation problem" in text
    assert "at epoch 3, **ResNet-56 v1** has lower training error than **ResNet-20 v1** (5.0% against 10.0%" in text
    assert "Shortcuts at depth 20: at epoch 3, **ResNet-20 v1** has lower" in text
    assert "Not shipped yet" not in text


def test_degradation_reading_compares_v1_nets_only():
    runs = [_run("ResNet-20 v1", 20, True, [0.4, 0.2]), _run("ResNet-29 v2", 29, True, [0.5, 0.3])]
    assert "What these runs show" not in degradation_reading(runs)
    broken = _run("ResNet-56 v1", 56, True, [0.3, 0.1])
    broken["epochs"][1]["epoch"] = 7  # a gap: epoch 2, where the two are compared, is missing
    with pytest.raises(ValueError, match="no epoch 2"):
        degradation_reading([runs[0], broken])


def test_degradation_reading_names_missing_runs_and_does_not_invent_comparisons():
    text = degradation_reading([_run("ResNet-20 v1", 20, True, [0.4, 0.2])])
    assert "Not shipped yet: Plain-20 v1, Plain-56 v1, ResNet-56 v1" in text
    assert "What these runs show" not in text
    assert "training error 20.0%" in text
