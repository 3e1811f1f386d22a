"""The degradation reading states what the runs' numbers show, and nothing they do not."""

import pytest

from explorer.shipped.histories import degradation_reading


def _run(label, depth, residual, train_errors, planned=3):
    return {"label": label, "depth": depth, "version": int(label.split(" v")[1][0]), "residual": residual,
            "planned_epochs": planned,
            "epochs": [{"epoch": i + 1, "train_error": t, "test_error": t + 0.05}
                       for i, t in enumerate(train_errors)]}


def test_degradation_reading_states_what_the_numbers_show():
    runs = [_run("Plain-20 v1", 20, False, [0.5, 0.3, 0.2]),
            _run("Plain-56 v1", 56, False, [0.6, 0.4]),  # still training: compared at epoch 2
            _run("ResNet-20 v1", 20, True, [0.4, 0.2, 0.1]),
            _run("ResNet-56 v1", 56, True, [0.3, 0.15, 0.05])]
    text = degradation_reading(runs)
    assert ("at epoch 2, **Plain-56 v1** has higher training error than **Plain-20 v1** "
            "(40.0% against 30.0%" in text)
    assert "degradation problem" in text
    assert ("at epoch 3, **ResNet-56 v1** has lower training error than **ResNet-20 v1** "
            "(5.0% against 10.0%" in text)
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


def test_a_longer_run_of_a_net_is_listed_but_compared_only_within_its_schedule():
    runs = [_run("Plain-20 v1", 20, False, [0.5, 0.3, 0.2]),
            _run("ResNet-20 v1", 20, True, [0.4, 0.25, 0.15]),
            _run("ResNet-20 v1, 6 epochs", 20, True, [0.6, 0.5, 0.4, 0.3, 0.2, 0.05], planned=6)]
    text = degradation_reading(runs)
    assert "**ResNet-20 v1, 6 epochs** after 6 epochs: training error 5.0%" in text
    # its twin had 3 epochs of a 3-epoch schedule; the longer run at epoch 3 (40%, still at a
    # high rate) would read as "shortcuts hurt": it is never compared
    assert ("at epoch 3, **ResNet-20 v1** has lower training error than **Plain-20 v1** "
            "(15.0% against 20.0%" in text)
    assert text.count("Shortcuts at depth 20") == 1 and "6 epochs** has" not in text
