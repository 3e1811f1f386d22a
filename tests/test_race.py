"""A race's verdict (explorer/studies/race.py) from hand-made histories, as a page's job logs
them: per-step running means of the epoch so far, then per-epoch test figures."""

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.studies import race
from explorer.views import tour


def history(batches, log_every=1, val=None, first_loss=2.9):
    """A history.json from per-batch training accuracies (a list per epoch), logged as
    `callbacks.RunLog` does: the first step, every `log_every` steps and each epoch's last."""
    per_epoch = len(batches[0])
    steps = {key: [] for key in ("step", "epoch", "loss", "accuracy", "learning_rate")}
    epochs, last = [], None
    for index, accuracies in enumerate(batches):
        for position, _ in enumerate(accuracies, start=1):
            step = index * per_epoch + position
            if last is None or step - last >= log_every or position == per_epoch:
                last = step
                mean = sum(accuracies[:position]) / position
                steps["step"].append(step)
                steps["epoch"].append(round(step / per_epoch, 4))
                steps["loss"].append(first_loss if step == 1 else 2.0)
                steps["accuracy"].append(round(mean, 5))
                steps["learning_rate"].append(0.1)
        if len(epochs) < len(val or []):
            epochs.append({"epoch": index + 1, "accuracy": sum(accuracies) / per_epoch,
                           "val_accuracy": val[index]})
    return {"steps": steps, "epochs": epochs, "grad_norms": {}}


def noisy(mean, count, seed, spread=0.035):
    rng = random.Random(seed)
    return [min(1.0, max(0.0, rng.gauss(mean, spread))) for _ in range(count)]


def race_runs(plain_mean, residual_mean, epochs=2, per_epoch=39, log_every=1, val=None):
    plain = [noisy(plain_mean, per_epoch, 2 * e) for e in range(epochs)]
    residual = [noisy(residual_mean, per_epoch, 2 * e + 1) for e in range(epochs)]
    return [("Plain-56 v1", False, history(plain, log_every, val and val[0])),
            ("ResNet-56 v1", True, history(residual, log_every, val and val[1], first_loss=7.3))]


def test_a_plain_net_well_behind_is_said_to_be_behind():
    runs = race_runs(0.11, 0.24, val=([0.11, 0.113], [0.19, 0.258]))
    verdict = race.race_verdict(runs)
    assert verdict.behind == "plain" and verdict.epoch == 2 and verdict.steps == 39
    assert abs(verdict.gap - 0.13) < 0.03 and verdict.error < 0.02
    assert verdict.test == (0.113, 0.258, 2)
    text = race.race_reading(verdict, images=5000, test_images=2000)
    assert "after 2 epochs on 5,000 images: Plain-56 v1 is behind ResNet-56 v1" in text
    assert "11.3% against 25.8%" in text and "first 2,000 test images" in text


def test_a_gap_within_the_noise_is_too_short_to_tell_and_says_after_what():
    verdict = race.race_verdict(race_runs(0.11, 0.115))
    assert verdict.behind == ""
    text = race.race_reading(verdict, images=5000)
    assert "too short to tell" in text and "after 2 epochs on 5,000 images" in text
    assert "near chance" in text


def test_the_gap_is_the_difference_of_the_running_means_however_often_logged():
    """Logged every 4th step: the stretches between points are unequal, the gap is still the
    difference of the epoch's running means at its last common step."""
    runs = race_runs(0.11, 0.24, log_every=4)
    verdict = race.race_verdict(runs)
    plain, residual = (h["steps"]["accuracy"][-1] for _, _, h in runs)
    assert verdict.behind == "plain" and math.isclose(verdict.gap, residual - plain, abs_tol=1e-9)
    assert verdict.steps == 39


def test_a_whole_epoch_of_391_steps_logged_every_10th():
    """All 50,000 images: the first points' epoch fractions (4 decimals) are too coarse to give
    the steps per epoch; the latest point's is not."""
    verdict = race.race_verdict(race_runs(0.11, 0.24, per_epoch=391, log_every=10))
    assert verdict.behind == "plain" and verdict.epoch == 2 and verdict.steps == 391


def test_a_gap_without_any_spread_is_said():
    runs = [("Plain-20 v1", False, history([[0.25] * 10])), ("ResNet-20 v1", True, history([[0.5] * 10]))]
    verdict = race.race_verdict(runs)
    assert verdict.behind == "plain" and verdict.error == 0
    assert "far over the run's own noise" in race.race_reading(verdict)


def test_a_running_race_compares_its_last_epoch_with_enough_points():
    """Three points into epoch 2: too few for a spread, so epoch 1 is compared."""
    runs = race_runs(0.11, 0.24)
    for _, _, h in runs:
        keep = 39 + 3
        h["steps"] = {key: values[:keep] for key, values in h["steps"].items()}
    verdict = race.race_verdict(runs)
    assert verdict.epoch == 1 and verdict.behind == "plain"
    assert "so far" in race.race_reading(verdict, finished=False)


def test_too_few_points_and_no_pair():
    runs = race_runs(0.11, 0.24, epochs=1, per_epoch=3)
    verdict = race.race_verdict(runs)
    assert verdict.behind == "" and verdict.steps == 0
    assert "too few points" in race.race_reading(verdict)
    assert race.race_verdict(runs[:1]) is None and race.race_reading(None) == ""


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 0.6), st.floats(0.05, 0.6), st.integers(6, 40), st.integers(1, 3), st.integers(1, 5))
def test_swapping_the_twins_swaps_the_verdict(plain_mean, residual_mean, per_epoch, epochs, log_every):
    runs = race_runs(plain_mean, residual_mean, epochs, per_epoch, log_every)
    swapped = [(runs[0][0], False, runs[1][2]), (runs[1][0], True, runs[0][2])]
    verdict, mirrored = race.race_verdict(runs), race.race_verdict(swapped)
    assert {"plain": "residual", "residual": "plain", "": ""}[verdict.behind] == mirrored.behind
    if verdict.steps:
        assert math.isclose(verdict.gap, -mirrored.gap, abs_tol=1e-9)
        assert math.isclose(verdict.error, mirrored.error, rel_tol=1e-9)


def test_the_residual_nets_high_first_loss_is_explained_only_when_high():
    runs = race_runs(0.11, 0.24)
    note = race.starting_loss_note(runs)
    assert "ResNet-56 v1's loss starts at 7.3" in note and "ln 10 = 2.3" in note and "2.9" in note
    runs[1][2]["steps"]["loss"][0] = 2.4
    assert race.starting_loss_note(runs) == ""


def test_the_tours_last_step_answers_from_the_race():
    answer, text = tour.race(runs=race_runs(0.11, 0.24), images=5000, test_images=2000)
    assert answer == "the plain net" and "Plain-56 v1 is behind ResNet-56 v1" in text
    answer, text = tour.race(runs=race_runs(0.11, 0.115), images=5000)
    assert answer == "" and "too short to tell" in text
    answer, text = tour.race(runs=race_runs(0.24, 0.11), finished=False)
    assert answer == "the residual net" and "still running" in text


def test_without_a_race_the_tour_answers_from_the_shipped_runs():
    answer, text = tour.race(runs=[])
    assert answer == "the plain net" and "not raced yet" in text and "plain-56" in text


def test_the_reveal_reads_this_browsers_race(monkeypatch):
    import ui.tour

    statuses = [{"label": label, "residual": residual, "history": h, "state": "done", "data": "/x.tar.gz"}
                for label, residual, h in race_runs(0.11, 0.24)]
    monkeypatch.setattr(ui.tour, "latest_race", lambda owner: statuses)
    request = type("Request", (), {"session_hash": "abc"})()
    text = ui.tour.reveal(5, "the plain net", progress=None, request=request)
    assert text.startswith("**Right: the plain net.**") and "Plain-56 v1 is behind ResNet-56 v1" in text
