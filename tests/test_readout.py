"""Linear read-outs per block: the ridge solve is least squares where it should be, a probe's
accuracy is what the pooled activations of the model's own forward pass give, the last block
reads what the checkpoint itself reads, and stored probes are served only for their file, data
and settings."""

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.limits import MAX_READOUT_TEST, MIN_READOUT_TRAIN
from explorer.core.specs import make_spec, result_net
from explorer.data.cifar import load_cifar10
from explorer.nets.checkpoints import load, predict
from explorer.nets.models import build_model
from explorer.shipped import pretrained, stored
from explorer.studies import overlays
from explorer.studies import readout as readout_module
from explorer.studies.readout import PENALTIES, readout, readout_study, readout_top, ridge
from explorer.views.overlay_figures import overlay_figure
from tests.test_cli import assert_clean_failure, json_lines, run_main


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(12, 40), columns=st.integers(1, 6), outputs=st.integers(1, 4),
       seed=st.integers(0, 1000))
def test_ridge_at_penalty_zero_is_least_squares_with_an_intercept(rows, columns, outputs, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns)) * rng.uniform(0.1, 10, columns) + rng.normal(size=columns)
    y = rng.normal(size=(rows, outputs))
    weights, bias = ridge(x, y, 0.0)
    solution = np.linalg.lstsq(np.hstack([x, np.ones((rows, 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(weights, solution[:-1], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(bias, solution[-1], rtol=1e-6, atol=1e-8)


def test_ridge_is_least_squares_on_standardised_features_with_the_penalty_rows_added():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 4)) * [1, 10, 100, 0.1]
    y = np.eye(3)[rng.integers(0, 3, 50)]
    penalty = 0.3
    scale = x.std(0)
    z = (x - x.mean(0)) / scale
    # ridge as least squares: the rows sqrt(penalty * n) * I, with targets 0, added below the data
    stacked = np.vstack([z, np.sqrt(penalty * len(x)) * np.eye(4)])
    targets = np.vstack([y - y.mean(0), np.zeros((4, 3))])
    expected = np.linalg.lstsq(stacked, targets, rcond=None)[0] / scale[:, None]
    weights, bias = ridge(x, y, penalty)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    np.testing.assert_allclose(bias, y.mean(0) - x.mean(0) @ expected, rtol=1e-6)
    huge, intercept = ridge(x, y, 1e12)  # in the limit only the intercept is left: the class shares
    assert np.abs(huge).max() < 1e-9 and intercept == pytest.approx(y.mean(0))
    dead = np.hstack([x, np.zeros((50, 1))])  # a channel zero on every image is no singular system
    assert np.isfinite(ridge(dead, y, 0.01)[0]).all()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("readout") / "resnet8.keras"
    build_model(make_spec(8, 1)).save(path)
    return path


def test_each_probe_scores_what_the_forward_pass_pooled_activations_give(checkpoint):
    result = readout(checkpoint, "synthetic", train=300, test=120)
    data = load_cifar10("synthetic")
    model = load(checkpoint)
    _, outputs = model.forward(data.x_train[:300].astype(np.float32), training=False, collect=True)
    _, tests = model.forward(data.x_test[:120].astype(np.float32), training=False, collect=True)
    assert result["blocks"] == ["stage1_block1", "stage2_block1", "stage3_block1"]
    assert result["train_images"] == 300 and result["test_images"] == 120
    for i, (train, test) in enumerate(zip(outputs, tests)):
        assert result["penalty"][i] in PENALTIES
        pooled, pooled_test = np.asarray(train).mean((1, 2)), np.asarray(test).mean((1, 2))
        weights, bias = ridge(pooled, np.eye(10)[data.y_train[:300]], result["penalty"][i])
        accuracy = np.mean(np.argmax(pooled_test @ weights + bias, -1) == data.y_test[:120])
        assert result["accuracy"][i] == pytest.approx(accuracy, abs=1 / 120)  # a float32 tie may flip one
        np.testing.assert_allclose(result["weights"][i], weights, rtol=1e-3, atol=1e-4)
    own = np.mean(predict(model, data.x_test[:120]).argmax(-1) == data.y_test[:120])
    assert result["model_accuracy"] == pytest.approx(own, abs=1e-4)
    top = readout_top(result, [np.asarray(test)[0].mean((0, 1)) for test in tests])
    scores = np.asarray(tests[-1])[0].mean((0, 1)) @ np.array(result["weights"][-1]) + result["bias"][-1]
    assert top[-1][0]["class"] == result["classes"][int(np.argmax(scores))] and len(top[-1]) == 3


def test_fewer_images_than_asked_are_said(checkpoint, tiny_archive):
    result = readout(checkpoint, str(tiny_archive), train=1000, test=1000)
    assert (result["train_images"], result["test_images"]) == (60, 20)


@pytest.mark.slow
def test_the_last_block_reads_what_the_checkpoint_reads(shared_archive):
    """Alain and Bengio's sanity check on a shipped checkpoint and the real test images: a v1
    net's head is a linear map of its last block's pooled output, so its probe comes close."""
    result = readout(pretrained.pretrained_path("resnet20_v1"), str(shared_archive), train=2000, test=1000)
    assert abs(result["accuracy"][-1] - result["model_accuracy"]) <= 0.03
    assert result["model_accuracy"] > 0.8 and result["accuracy"][0] < result["accuracy"][-1] - 0.3


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A pretrained folder with one shipped file (a copy of resnet20_v1) and its manifest."""
    entry = next(e for e in pretrained.manifest() if e["name"] == "resnet20_v1")
    shutil.copyfile(pretrained.PRETRAINED / entry["file"], tmp_path / entry["file"])
    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [entry]}))
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    archive.write_bytes(b"x" * 100)
    monkeypatch.setattr(pretrained, "PRETRAINED", tmp_path)
    return tmp_path, tmp_path / entry["file"], archive


def test_stored_probes_serve_only_their_file_data_and_settings(shipped, monkeypatch):
    root, path, archive = shipped
    kept = {"model": "ResNet-20 v1", "accuracy": [0.5], "model_accuracy": 0.9}
    stored.store("readout", "resnet20_v1", {"test": 5000, "train": 5000}, str(archive), kept,
                 "python -m explorer readout", root)
    fitted = []
    monkeypatch.setattr(readout_module, "readout",
                        lambda *args, **kwargs: fitted.append(args) or {"fitted": 1})
    (served,) = readout_study([path], 5000, 5000, str(archive))
    assert served["accuracy"] == [0.5] and served["stored"]["command"] == "python -m explorer readout"
    assert not fitted
    assert readout_study([path], 4000, 5000, str(archive), budget=False) == [{"fitted": 1}]  # other settings
    other = root / "other.tar.gz"
    other.write_bytes(b"x" * 101)
    assert readout_study([path], 5000, 5000, str(other), budget=False) == [{"fitted": 1}]  # other data
    copy = root / "elsewhere" / "copy.keras"  # the same bytes elsewhere (a worker's copy): the same file
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    assert readout_study([copy], 5000, 5000, str(archive), budget=False)[0]["accuracy"] == [0.5]
    with open(copy, "ab") as handle:  # a copy with other bytes is another file
        handle.write(b"\0")
    assert readout_study([copy], 5000, 5000, str(archive), budget=False) == [{"fitted": 1}]
    with open(path, "ab") as handle:  # changed under its name: its sha256 is not the manifest's
        handle.write(b"\0")
    assert readout_study([path], 5000, 5000, str(archive), budget=False) == [{"fitted": 1}]
    assert readout_study([path], 5000, 5000, str(archive), use_stored=False, budget=False) == [{"fitted": 1}]
    assert len(fitted) == 5


def test_the_stored_probes_of_shipped_checkpoints_are_their_own():
    for path in stored.studies_dir().glob("*.readout.*.json"):
        record = json.loads(path.read_text())
        result = record["result"]
        net = result_net(result)
        assert record["command"].startswith("python -m explorer readout ")
        assert len(result["accuracy"]) == len(result["weights"]) == 3 * net.num_blocks
        assert abs(result["accuracy"][-1] - result["model_accuracy"]) <= 0.03, path.name


def test_a_live_request_over_the_budget_is_refused(checkpoint):
    with pytest.raises(ValueError, match="times what this host allows"):
        readout_study([checkpoint], 50_000, 10_000, "synthetic")


def test_the_readout_command(checkpoint):
    result = run_main("readout", checkpoint, "--compare", checkpoint, "--data", "synthetic", "--train", 200,
                      "--test", 100, "--json")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert len(lines) == 2 and lines[0]["accuracy"] == lines[1]["accuracy"]
    assert {"blocks", "accuracy", "model_accuracy", "train_images", "test_images"} <= set(lines[0])
    assert (lines[0]["train_images"], lines[0]["test_images"]) == (200, 100)
    text = run_main("readout", checkpoint, "--data", "synthetic", "--train", 50, "--test", 20).stdout
    assert "stage3_block1" in text and "read-out" in text


@pytest.mark.parametrize(("args", "needle"), [
    (("--train", 0), f"training images must be between {MIN_READOUT_TRAIN} and"),
    (("--test", MAX_READOUT_TEST + 1), f"test images must be between 1 and {MAX_READOUT_TEST}"),
    (("--train", "many"), "invalid int value"),
])
def test_the_readout_command_refuses_bad_input_with_exit_status_2(checkpoint, args, needle):
    result = run_main("readout", checkpoint, "--data", "synthetic", *args, "--json")
    assert result.returncode == 2
    assert_clean_failure(result, needle)


def test_the_readout_command_refuses_a_missing_checkpoint(tmp_path):
    result = run_main("readout", tmp_path / "none.keras", "--data", "synthetic", "--train", 20, "--test", 5)
    assert result.returncode == 2
    assert_clean_failure(result, "no checkpoint at none.keras")


def test_the_readout_overlay_colours_each_block_by_its_probe_accuracy(checkpoint):
    result = overlays.overlay(0, 0, "readout", checkpoint, source="synthetic", budget=False)
    measured = readout(checkpoint, "synthetic")
    assert result["values"] == measured["accuracy"] and result["blocks"] == measured["blocks"]
    assert result["model_accuracy"] == measured["model_accuracy"]
    assert overlay_figure(result).data
    with pytest.raises(ValueError, match="needs a checkpoint"):
        overlays.overlay(8, 1, "readout", source="synthetic")
