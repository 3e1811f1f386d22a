"""Weight averaging and the held-out split that decides whether a run keeps it."""

import json

import numpy as np
import pytest

from explorer.data.cifar import synthetic
from explorer.train.averaging import keep_better_weights
from explorer.train.config import TrainConfig
from explorer.train.pipeline import make_datasets, split_training


def test_the_holdout_is_the_end_of_the_subset_and_is_never_trained_on():
    data = synthetic(300, 40)
    config = TrainConfig(subset=200, holdout=50, batch_size=10, epochs=1, data="synthetic")
    x_train, _, x_held, y_held = split_training(data, config)
    assert len(x_train) == 150 and len(x_held) == 50
    assert np.array_equal(x_held, data.x_train[150:200]) and np.array_equal(y_held, data.y_train[150:200])
    _, _, trained = make_datasets(data, config)
    assert trained == 150


def test_a_holdout_that_leaves_nothing_to_train_on_is_refused():
    data = synthetic(100, 10)
    with pytest.raises(ValueError, match="leaves none of the 100 training images"):
        split_training(data, TrainConfig(holdout=100, data="synthetic"))


@pytest.mark.parametrize("fields, message", [
    ({"ema_momentum": 1.0}, "EMA momentum"), ({"ema_momentum": -0.1}, "EMA momentum"),
    ({"holdout": -1}, "holdout"), ({"ema_momentum": "0.9"}, "EMA momentum")])
def test_averaging_options_out_of_range_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields).validate()


def test_the_optimizer_averages_only_when_asked():
    from explorer.train.training import make_optimizer

    assert not make_optimizer(TrainConfig(), 10).use_ema
    averaged = make_optimizer(TrainConfig(ema_momentum=0.99), 10)
    assert averaged.use_ema and averaged.ema_momentum == pytest.approx(0.99)


class _Model:
    """What keep_better_weights reads of a model: its optimizer's flag, and save."""

    def __init__(self, use_ema=True):
        self.optimizer = type("Optimizer", (), {"use_ema": use_ema})()
        self.saved = []

    def save(self, path):
        path.write_text("averaged")
        self.saved.append(path)


@pytest.mark.parametrize("raw, averaged, kept", [(0.80, 0.82, "ema"), (0.82, 0.80, "raw"), (0.8, 0.8, "raw")])
def test_the_average_is_kept_only_where_it_is_better_on_the_held_out_images(tmp_path, raw, averaged, kept):
    (tmp_path / "model.keras").write_text("raw")
    history = {"epochs": [{"epoch": 3, "holdout_accuracy": raw, "holdout_accuracy_ema": averaged}]}
    choice = keep_better_weights(_Model(), tmp_path, history, finished=True)
    assert choice["weights"] == kept
    assert (tmp_path / "model.keras").read_text() == ("averaged" if kept == "ema" else "raw")
    assert json.loads((tmp_path / "weights.json").read_text()) == choice


def test_a_stopped_run_or_one_without_averaging_keeps_its_weights(tmp_path):
    history = {"epochs": [{"epoch": 1, "holdout_accuracy": 0.1, "holdout_accuracy_ema": 0.9}]}
    assert keep_better_weights(_Model(), tmp_path, history, finished=False) is None
    assert keep_better_weights(_Model(use_ema=False), tmp_path, history, finished=True) is None
    assert not (tmp_path / "weights.json").exists()
