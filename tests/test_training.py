"""The training run: a full disk, schedules, steps per call, stop and resume, damaged run folders."""

import errno
import json
import pathlib

import pytest

from explorer.train.config import TrainConfig
from explorer.train.training import train


def test_full_output_folder_gives_a_clear_error(tmp_path, monkeypatch):
    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(ValueError, match="cannot write to output folder .*No space left on device"):
        train(TrainConfig(depth=8, epochs=1, data="synthetic"), tmp_path / "run")


def test_cosine_schedule_warms_up_then_decays():
    from explorer.train.training import make_optimizer

    optimizer = make_optimizer(TrainConfig(epochs=10, warmup_epochs=2), steps_per_epoch=100)
    schedule = optimizer._learning_rate
    values = [float(schedule(step)) for step in (0, 100, 200, 600, 999)]
    assert values[0] < values[1] < values[2] == pytest.approx(0.1, rel=1e-3)
    assert values[2] > values[3] > values[4] >= 0


@pytest.mark.parametrize("averaging", [{}, {"ema_momentum": 0.9, "holdout": 64}], ids=["plain", "ema"])
def test_stop_and_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, averaging):
    """BackupAndRestore restores weights and optimizer (the weight average included); with
    the stream above, the run that was stopped after epoch 1 and resumed ends where the
    uninterrupted one does."""
    import numpy as np

    from explorer.data.cifar import synthetic
    from explorer.nets.models import load_model

    data = synthetic(256, 32)
    # 4 steps an epoch in calls of at most 3: calls of 2 (see steps_per_call)
    config = TrainConfig(depth=8, batch_size=64, cutout=8, epochs=2, data="synthetic",
                         precision="float32", steps_per_execution=3, **averaging)
    if averaging:  # 192 images train: 3 steps an epoch
        data = synthetic(256 + 64, 32)
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
    if averaging:  # the average was restored too: the same held-out accuracy at the end
        decisions = [json.loads((tmp_path / run / "weights.json").read_text())
                     for run in ("whole", "resumed")]
        assert decisions[0] == decisions[1]


@pytest.mark.parametrize("most, steps_per_epoch, expected", [
    (10, 390, 10), (10, 39, 3), (10, 7, 7), (10, 13, 1), (10, 1, 1), (1, 390, 1), (25, 100, 25)])
def test_steps_per_call_divides_the_epoch(most, steps_per_epoch, expected):
    from explorer.train.training import steps_per_call

    assert steps_per_call(most, steps_per_epoch) == expected


def test_every_epoch_takes_exactly_its_steps(tmp_path):
    """25 steps an epoch with steps_per_execution 10 (the default): Keras runs whole calls,
    so calls of 10 trained 30, 30, 15 steps from a stream of 75 (the optimizer's schedule
    then reads ahead of the epoch). After epoch k the optimizer has made 25 k steps."""
    from explorer.data.cifar import synthetic
    from explorer.train.training import make_optimizer

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
    from explorer.data.cifar import synthetic

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
    from explorer.data.cifar import synthetic

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

    from explorer.data.cifar import synthetic
    from explorer.nets.models import load_model

    config, run = one_epoch_run
    out = _copy(run, tmp_path)
    (out / "model.keras").unlink()
    (out / "status.json").unlink()
    result = train(config, out, data=synthetic(64, 16), verbose=0)
    assert (out / "model.keras").exists() and result["epochs_finished"] == 1
    for a, b in zip(load_model(run / "model.keras").get_weights(),
                    load_model(out / "model.keras").get_weights()):
        np.testing.assert_array_equal(a, b)
