"""Training-recipe checks that need no training: a full disk, config validation, schedules."""

import errno
import pathlib

import pytest

from explorer.training import TrainConfig, train


def test_full_output_folder_gives_a_clear_error(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(ValueError, match="cannot write to output folder .*No space left on device"):
        train(TrainConfig(depth=8, epochs=1, data="synthetic"), tmp_path / "run")


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be between"),
    ("epochs", True, "epochs must be between"),
    ("test_subset", -5, "test subset"),
    ("max_seconds", -1.0, "max seconds"),
    ("cutout", 40, "cutout"),
    ("steps_per_execution", 0, "steps_per_execution"),
    ("optimizer", "rmsprop", "optimizer must be sgd or adam"),
    ("depth", 21, "nearest valid depths are 20 and 26"),
    # a config file's text or null where a number belongs: refused, not a TypeError
    ("learning_rate", "0.1", "learning rate out of range"),
    ("momentum", None, "momentum"),
    ("weight_decay", True, "weight decay"),
    ("label_smoothing", float("nan"), "label smoothing"),
])
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value}).validate()


def test_cosine_schedule_warms_up_then_decays():
    from explorer.training import make_optimizer

    optimizer = make_optimizer(TrainConfig(epochs=10, warmup_epochs=2), steps_per_epoch=100)
    schedule = optimizer._learning_rate
    values = [float(schedule(step)) for step in (0, 100, 200, 600, 999)]
    assert values[0] < values[1] < values[2] == pytest.approx(0.1, rel=1e-3)
    assert values[2] > values[3] > values[4] >= 0


def test_cutout_greys_one_square_of_the_given_side():
    import numpy as np
    import tensorflow as tf

    from explorer.training import augment

    tf.random.set_seed(1)
    images = tf.fill([64, 32, 32, 3], tf.constant(7, tf.uint8))  # flips and crops keep 7 inside
    out = augment(images, crop_padding=0, cutout=16).numpy()
    grey = (out == 128).all(-1)
    areas = grey.sum(axis=(1, 2))
    assert areas.max() == 16 * 16 and areas.min() >= 8 * 8  # whole, or clipped at a corner
    for mask in grey:
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        assert mask.sum() == len(rows) * len(cols)  # one rectangle
    assert set(np.unique(out)) == {7, 128}
