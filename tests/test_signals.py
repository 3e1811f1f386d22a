"""Signal propagation (Brock et al. 2021) against a hand computation, and shattered gradients
(Balduzzi et al. 2017): the autocorrelation, the measurement, the budgets, the command line."""

import json

import keras
import numpy as np
import pytest
from keras import layers

from explorer.core import limits
from explorer.core.specs import make_spec, result_net
from explorer.nets.models import build_model
from explorer.studies import shattered, signals, subjects
from explorer.views import path_charts
from tests.test_cli import assert_clean_failure, run_main


def _chain(chain, x, training):
    for layer in chain:
        x = layer(x, training=training) if isinstance(layer, layers.BatchNormalization) else layer(x)
    return x


def _by_hand(subject, samples):
    """The three statistics per block, from the model's own sublayers, computed in NumPy."""
    model = subject.model()
    x, *_ = subjects.test_images(samples, "synthetic")
    stats = {"mean_sq": [], "variance": [], "branch_variance": []}
    with keras.StatelessScope():
        h = _chain(model.stem, model.normalize(x.astype("float32")), subject.at_init)
        for block in model.blocks:
            branch = np.asarray(_chain(block.branch, h, subject.at_init))
            total = branch + np.asarray(_chain(block.shortcut, h, subject.at_init)) if block.add else branch
            h = block.out(total) if block.out is not None else total
            stats["mean_sq"].append(float(np.mean(total.mean(axis=(0, 1, 2)) ** 2)))
            stats["variance"].append(float(np.mean(total.var(axis=(0, 1, 2)))))
            stats["branch_variance"].append(float(np.mean(branch.var(axis=(0, 1, 2)))))
    return stats


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("signals") / "resnet20.keras"
    build_model(make_spec(20, 1)).save(path)
    return path


@pytest.mark.parametrize("kind", ["init", "init-plain", "init-v2", "checkpoint"])
def test_signal_statistics_equal_a_hand_computation(checkpoint, kind):
    subject = {"init": subjects.fresh(20, 1), "init-plain": subjects.fresh(20, 1, plain=True),
               "init-v2": subjects.fresh(29, 2), "checkpoint": subjects.trained(checkpoint)}[kind]
    result = signals.signal_propagation(subject, samples=16, source="synthetic")
    expected = _by_hand(subject, 16)
    for key in ("mean_sq", "variance", "branch_variance"):
        # a batch-normalized branch in training mode has channel means of float rounding (1e-13)
        np.testing.assert_allclose(result[key], expected[key], rtol=2e-4, atol=1e-9, err_msg=key)
    assert len(result["blocks"]) == 9 and result["stages"] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert result["at_init"] == (kind != "checkpoint") and result["residual"] == (kind != "init-plain")
    if kind == "init-plain":
        assert result["branch_variance"] == result["variance"]  # measured where the add would be


def test_stage_fits_on_made_up_numbers():
    result = {"stages": [1, 1, 1, 2, 2, 2, 3], "variance": [1.0, 2.0, 3.0, 10.0, 12.0, 14.0, 7.0]}
    fits = signals.stage_fits(result)
    assert [(f["stage"], f["blocks"], f["r2"]) for f in fits] == [(1, 3, 1.0), (2, 3, 1.0), (3, 1, None)]
    assert [v for f in fits for v in (f["slope"], f["intercept"])] == pytest.approx([1, 1, 2, 10, 0, 7])
    noisy = signals.stage_fits({"stages": [1] * 4, "variance": [1.0, 3.0, 2.0, 4.0]})[0]
    assert noisy["slope"] == pytest.approx(0.8) and noisy["r2"] == pytest.approx(0.64)


def test_signals_reading_and_chart():
    results = [signals.signal_propagation(subjects.fresh(29, 2, plain=plain), samples=8, source="synthetic")
               for plain in (False, True)]
    reading = signals.signals_reading(results)
    assert "ResNet-29 v2 at initialization" in reading and "Plain-29 v2" in reading and "Brock" in reading
    figure = path_charts.signals_figure(results)
    assert {trace.name for trace in figure.data} == {"ResNet-29 v2 at initialization",
                                                     "Plain-29 v2 at initialization"}


def test_autocorrelation():
    noise = np.random.default_rng(0).standard_normal(4096)
    c = shattered.autocorrelation(noise)
    assert c[0] == pytest.approx(1.0) and len(c) == 2049 and max(abs(v) for v in c[1:20]) < 0.1
    smooth = np.sin(np.linspace(0, 3, 256))
    assert shattered.autocorrelation(smooth)[0] == pytest.approx(1.0)
    assert shattered.autocorrelation(smooth)[1] > 0.95
    assert shattered.autocorrelation(np.ones(10)) == [1.0] * 6


def test_shattered_gradients_of_plain_and_residual_twins():
    result = shattered.shattered("8, 14", 1, points=32, source="synthetic")
    assert [net["model"] for net in result["nets"]] == ["ResNet-8 v1", "Plain-8 v1", "ResNet-14 v1",
                                                        "Plain-14 v1"]
    assert result["lags"] == list(range(17))
    assert [(spec.depth, spec.residual) for spec in map(result_net, result["nets"])] == [
        (8, True), (8, False), (14, True), (14, False)]  # the net each carries, not a name to parse
    for net in result["nets"]:
        assert net["autocorrelation"][0] == pytest.approx(1.0) and len(net["gradient"]) == 32
        assert len(net["autocorrelation"]) == 17
    assert "Balduzzi" in shattered.shattered_reading(result)
    assert len(path_charts.shattered_figure(result).data) == 2 + 4  # the deepest pair's gradients, 4 curves


def test_shattered_bounds():
    for points, match in ((8, "points must be between 16 and 1024"), (2000, "points"),
                          (1024, "would not fit in memory")):
        with pytest.raises(ValueError, match=match):
            shattered.shattered("56", 1, points=points)
    with pytest.raises(ValueError, match="times what this host allows"):
        limits.check_shattered_request(256, [make_spec(110, 1)] * 20)
    limits.check_shattered_request(256, [make_spec(d, 1, residual=r)
                                         for d in (20, 56, 110) for r in (True, False)])


def test_cli_signals_and_shattered_json(checkpoint):
    out = json.loads(run_main("signals", checkpoint, "--samples", 8, "--data", "synthetic", "--json").stdout)
    assert ({"blocks", "mean_sq", "variance", "branch_variance", "fits"} <= set(out)
            and len(out["blocks"]) == 9)
    out = json.loads(run_main("signals", "--depth", 8, "--plain", "--samples", 8, "--data", "synthetic",
                              "--json").stdout)
    assert out["model"] == "Plain-8 v1 at initialization" and out["branch_variance"] == out["variance"]
    assert result_net(out) == make_spec(8, 1, residual=False)
    out = json.loads(run_main("shattered", "--depth", 8, "--points", 16, "--data", "synthetic",
                              "--json").stdout)
    assert [net["residual"] for net in out["nets"]] == [True, False]
    assert all(net["autocorrelation"][0] == 1.0 for net in out["nets"])


@pytest.mark.parametrize("args, needle", [
    (["signals"], "give a checkpoint, or --depth"),
    (["signals", "--depth", 10, "--version", 2], "not 9n+2"),
    (["signals", "x.keras", "--depth", 8], "not both"),
    (["shattered", "--depth", "8,abc"], "depth must be a whole number"),
    (["shattered", "--points", 3], "points must be between 16 and 1024"),
])
def test_cli_bad_input_exits_2(args, needle):
    result = run_main(*args, "--data", "synthetic")
    assert result.returncode == 2
    assert_clean_failure(result, needle)
