"""Training-recipe checks that need no training: a full disk, config validation, schedules."""

import errno
import json
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
    ("seed", -5, "seed must be a whole number"),
    ("seed", 2**40, "seed must be a whole number"),
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
    _assert_one_grey_square_each(out, 16)
    assert set(np.unique(out)) == {7, 128}


def _assert_one_grey_square_each(out, side):
    import numpy as np

    grey = (out == 128).all(-1)
    areas = grey.sum(axis=(1, 2))
    assert areas.max() == side * side and areas.min() >= (side // 2) ** 2  # whole, or clipped at a corner
    for mask in grey:
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        assert mask.sum() == len(rows) * len(cols)  # one rectangle


def _batches(dataset, count):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(count)]


def test_a_resumed_stream_continues_where_the_uninterrupted_one_was():
    """The batches of epoch 3 are the same whether the stream starts at epoch 1 or 3: a
    resumed run must not replay its first epochs' shuffle and augmentation (the resumed
    ResNet-56 did, in session 5: epochs 46-47 repeated 44-45's images, and its training
    accuracy jumped 3 points for two epochs)."""
    import numpy as np

    from explorer.data import synthetic
    from explorer.training import make_datasets

    data = synthetic(256, 32)
    config = TrainConfig(depth=8, batch_size=64, cutout=8, epochs=4, data="synthetic")
    steps = 256 // 64
    whole, _, _ = make_datasets(data, config)
    resumed, _, _ = make_datasets(data, config, initial_epoch=2)
    from_start = _batches(whole, 4 * steps)
    from_epoch_3 = _batches(resumed, 2 * steps)
    assert len(from_epoch_3) == 2 * steps  # the stream ends with the last epoch
    for (x, y), (x2, y2) in zip(from_start[2 * steps:], from_epoch_3):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    # and the epochs differ from one another: each is its own shuffle and augmentation
    first, second = from_start[0][0], from_start[steps][0]
    assert not np.array_equal(first, second)
    # every image once per epoch (labels of an epoch are a permutation of all labels)
    epoch_labels = np.concatenate([y.argmax(-1) for _, y in from_start[:steps]])
    assert sorted(epoch_labels) == sorted(data.y_train)


def test_numpy_augment_crops_a_window_of_the_padded_image_flips_and_cuts_out():
    """`augment_numpy` (the stream under JAX, where TensorFlow is absent) does what `augment`
    does: each output is a 32x32 window of the zero-padded image, mirrored or not, with one
    grey square when cutout is on; offsets and flips cover their whole range."""
    import numpy as np

    from explorer.training import augment_numpy

    rng = np.random.default_rng(0)
    images = rng.integers(0, 128, (200, 32, 32, 3), dtype=np.uint8)  # below the grey 128
    out = augment_numpy(images, 4, 0, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, [(0, 0), (4, 4), (4, 4), (0, 0)])
    offsets, flips = set(), 0
    for image, source in zip(out, padded):
        found = [(r, c, f) for r in range(9) for c in range(9) for f in (0, 1)
                 if np.array_equal(image, source[r:r + 32, c:c + 32][:, ::-1] if f else source[r:r + 32, c:c + 32])]
        assert found, "not a window of the padded image"
        offsets.add(found[0][:2])
        flips += found[0][2]
    assert len(offsets) > 60 and 60 < flips < 140  # 81 offsets, half flipped
    _assert_one_grey_square_each(augment_numpy(images, 0, 16, np.random.default_rng(2)), 16)
    # the same generator state gives the same batch
    np.testing.assert_array_equal(augment_numpy(images, 4, 8, np.random.default_rng(3)),
                                  augment_numpy(images, 4, 8, np.random.default_rng(3)))


def test_the_numpy_stream_resumes_where_the_uninterrupted_one_was():
    """The stream used under Keras backends without tf.data (JAX on a GPU machine) keeps the
    resume property of the tf.data one: epoch 3 is the same from the start or from a resume."""
    import numpy as np

    from explorer.data import synthetic
    from explorer.training import _numpy_datasets

    data = synthetic(256, 32)
    config = TrainConfig(depth=8, batch_size=64, cutout=8, epochs=4, data="synthetic")
    args = (data.x_train, data.y_train, data.x_test, data.y_test, 10, config)
    whole, (x_test, y_test), count = _numpy_datasets(*args, initial_epoch=0)
    resumed, _, _ = _numpy_datasets(*args, initial_epoch=2)
    from_start, from_epoch_3 = list(whole), list(resumed)
    assert count == 256 and len(from_start) == 16 and len(from_epoch_3) == 8
    for (x, y), (x2, y2) in zip(from_start[8:], from_epoch_3):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(from_start[0][0], from_start[4][0])
    epoch_labels = np.concatenate([y.argmax(-1) for _, y in from_start[:4]])
    assert sorted(epoch_labels) == sorted(data.y_train)
    assert from_start[0][0].dtype == np.uint8 and from_start[0][1].shape == (64, 10)
    np.testing.assert_array_equal(x_test, data.x_test)
    np.testing.assert_array_equal(y_test.argmax(-1), data.y_test)


def test_stop_and_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path):
    """BackupAndRestore restores weights and optimizer; with the stream above, the run that
    was stopped after epoch 1 and resumed ends where the uninterrupted one does."""
    import numpy as np

    from explorer.data import synthetic
    from explorer.models import load_model

    data = synthetic(256, 32)
    # 4 steps an epoch in calls of at most 3: calls of 2 (see steps_per_call)
    config = TrainConfig(depth=8, batch_size=64, cutout=8, epochs=2, data="synthetic",
                         precision="float32", steps_per_execution=3)
    train(config, tmp_path / "whole", data=data, verbose=0)
    stopped = TrainConfig(**{**config.to_dict(), "max_seconds": 1e-6})  # stops at epoch 1's end
    first = train(stopped, tmp_path / "resumed", data=data, verbose=0)
    assert first["epochs_finished"] == 1
    train(config, tmp_path / "resumed", data=data, verbose=0)
    whole = load_model(tmp_path / "whole" / "model.keras").get_weights()
    resumed = load_model(tmp_path / "resumed" / "model.keras").get_weights()
    assert len(whole) == len(resumed)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(whole, resumed))
    # float sums in another order differ by ~1e-7; another batch order moves weights by ~1e-2
    assert worst < 1e-4, worst


@pytest.mark.parametrize("most, steps_per_epoch, expected", [
    (10, 390, 10), (10, 39, 3), (10, 7, 7), (10, 13, 1), (10, 1, 1), (1, 390, 1), (25, 100, 25)])
def test_steps_per_call_divides_the_epoch(most, steps_per_epoch, expected):
    from explorer.training import steps_per_call

    assert steps_per_call(most, steps_per_epoch) == expected


def test_every_epoch_takes_exactly_its_steps(tmp_path):
    """25 steps an epoch with steps_per_execution 10 (the default): Keras runs whole calls,
    so calls of 10 trained 30, 30, 15 steps from a stream of 75 (the optimizer's schedule
    then reads ahead of the epoch). After epoch k the optimizer has made 25 k steps."""
    from explorer.data import synthetic
    from explorer.training import make_optimizer

    config = TrainConfig(depth=8, batch_size=16, epochs=3, data="synthetic", precision="float32")
    train(config, tmp_path / "run", data=synthetic(400, 32), verbose=0)
    history = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    schedule = make_optimizer(config, steps_per_epoch=25)._learning_rate
    assert [e["epoch"] for e in history] == [1, 2, 3]
    for entry in history:
        assert entry["learning_rate"] == pytest.approx(float(schedule(25 * entry["epoch"])), rel=1e-5)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["step"] == status["steps_per_epoch"] == 25


def test_a_mistyped_data_path_does_not_bind_the_folder(tmp_path):
    """config.json is written once the data loads: the corrected command then runs."""
    from explorer.data import synthetic

    with pytest.raises(ValueError, match="neither 'keras', 'synthetic'"):
        train(TrainConfig(depth=8, epochs=1, data=str(tmp_path / "typo.tar.gz")), tmp_path / "run")
    assert not (tmp_path / "run" / "config.json").exists()
    result = train(TrainConfig(depth=8, epochs=1, data="synthetic", subset=64, batch_size=32),
                   tmp_path / "run", data=synthetic(64, 16), verbose=0)
    assert result["epochs_finished"] == 1


def test_a_second_trainer_in_the_same_folder_is_refused(tmp_path):
    import fcntl

    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running trainer holds it
        with pytest.raises(ValueError, match="another process is training in"):
            train(TrainConfig(depth=8, epochs=1, data="synthetic"), tmp_path / "run")


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    """A finished 1-epoch run (tiny), to be copied and damaged."""
    from explorer.data import synthetic

    out = tmp_path_factory.mktemp("finished") / "run"
    config = TrainConfig(depth=8, epochs=1, data="synthetic", subset=64, batch_size=32,
                         precision="float32")
    train(config, out, data=synthetic(64, 16), verbose=0)
    return config, out


def _copy(run, tmp_path):
    import shutil

    return pathlib.Path(shutil.copytree(run, tmp_path / "copy"))


def test_a_damaged_backup_gives_a_clear_error(one_epoch_run, tmp_path):
    config, run = one_epoch_run
    out = _copy(run, tmp_path)
    (out / "model.keras").unlink()  # not finished: it must resume from the backup
    (out / "backup" / "training_metadata.json").write_text('{"epo')  # cut short
    with pytest.raises(ValueError, match="training_metadata.json is damaged"):
        train(config, out, verbose=0)


def test_a_history_without_its_backup_is_not_thrown_away(one_epoch_run, tmp_path):
    import shutil

    config, run = one_epoch_run
    out = _copy(run, tmp_path)
    shutil.rmtree(out / "backup")
    (out / "model.keras").unlink()
    before = (out / "history.json").read_text()
    with pytest.raises(ValueError, match="history of 1 epochs but no backup"):
        train(config, out, verbose=0)
    assert (out / "history.json").read_text() == before


def test_a_finished_run_carried_by_its_backup_alone_gets_its_model_back(one_epoch_run, tmp_path):
    """pretrained/keep_resume.sh carries backup/, config.json and history.json: a run that
    finished after the last copy must still give a model.keras to ship."""
    import numpy as np

    from explorer.data import synthetic
    from explorer.models import load_model

    config, run = one_epoch_run
    out = _copy(run, tmp_path)
    (out / "model.keras").unlink()
    (out / "status.json").unlink()
    result = train(config, out, data=synthetic(64, 16), verbose=0)
    assert (out / "model.keras").exists() and result["epochs_finished"] == 1
    for a, b in zip(load_model(run / "model.keras").get_weights(),
                    load_model(out / "model.keras").get_weights()):
        np.testing.assert_array_equal(a, b)
