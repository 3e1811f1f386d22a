"""Path lengths (Veit et al. 2016, section 6) on small nets: the binomial path counts, the
effective range, what a set of kept branches runs, the budgets, and the command line."""

import itertools
import json
import math

import numpy as np
import pytest
import tensorflow as tf

from explorer.core import limits
from explorer.core.specs import make_spec, result_net
from explorer.nets.models import build_model
from explorer.studies import paths, subjects
from tests.test_cli import assert_clean_failure, run_main

X = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("uint8")
Y = np.arange(6) % 10


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("paths") / "resnet8.keras"
    build_model(make_spec(8, 1)).save(path)
    return path


@pytest.mark.parametrize("blocks", [0, 1, 3, 27, 54])
def test_path_counts_are_the_binomial_coefficients(blocks):
    assert paths.path_counts(blocks) == [math.comb(blocks, k) for k in range(blocks + 1)]
    assert sum(paths.path_counts(blocks)) == 2 ** blocks


@pytest.mark.parametrize("total, expected", [
    ([0, 1, 8, 2, 0], [2, 3]),  # 10 of 11 in two lengths: 1 + 8 + 2 would be wider
    ([5, 0, 0, 0, 5], [0, 4]),  # the mass at both ends: only the whole range holds 90%
    ([0, 0, 9, 0, 1], [2, 2]),  # one length holds 90% on its own
    ([1, 9, 9, 1], [1, 2]),
    ([0, 0, 0], [0, 2]),  # nothing measured: the whole range
])
def test_effective_range_is_the_shortest_range_holding_90_percent(total, expected):
    assert paths.effective_range(total) == expected


def test_effective_range_survives_huge_path_counts():
    total = [float(math.comb(600, k)) * 0.5 ** k for k in range(601)]
    lo, hi = paths.effective_range(total)
    assert 0 <= lo <= 200 <= hi <= 600  # the peak of C(600, k) / 2^k is at k = 200


def test_the_line_through_the_gradient_per_path_ignores_one_noisy_length():
    """#36 item 12: one length's spike (a few random paths at a small sample) moves the
    measured total's range, not the line's; the line is NumPy's least squares on log g."""
    n = 20
    counts = paths.path_counts(n)
    clean = [0.3 * 0.8 ** k for k in range(n + 1)]
    noisy = list(clean)
    noisy[3] *= 12  # the spike
    result = {"lengths": list(range(n + 1)), "path_counts": counts, "gradient_per_path": noisy,
              "total": [c * g for c, g in zip(counts, noisy)]}
    result["effective_range"] = paths.effective_range(result["total"])
    fit = paths.path_fit(result)
    design = np.stack([np.ones(n + 1), np.arange(n + 1)], axis=1)
    (_, slope), *_ = np.linalg.lstsq(design, np.log(noisy), rcond=None)
    assert fit["decay"] == pytest.approx(math.exp(slope))
    assert fit["effective_range"] == paths.effective_range([c * g for c, g in zip(counts, clean)])
    assert result["effective_range"] != fit["effective_range"]  # the spike moved the measured range
    assert paths.held_share(result, fitted=True) >= paths.SHARE
    assert f"By that line, paths through **{fit['effective_range'][0]} to" in paths.paths_reading(
        {**result, "blocks": n, "at_init": True, "method": "single", "model": "ResNet-44 v1", "samples": 8,
         "subsets": 1})
    assert paths.path_fit({**result, "gradient_per_path": [0.0] * n + [1.0]}) is None


@pytest.mark.parametrize("at_init", [True, False], ids=["init", "checkpoint"])
def test_kept_branches_run_the_full_net_or_the_skip_only_net(checkpoint, at_init):
    subject = subjects.fresh(8, 1) if at_init else subjects.trained(checkpoint)
    model = subject.model()
    n = len(model.blocks)
    full = subjects.run(subject, model, X).numpy()
    skip_only = subjects.run(subject, model, X, drop_blocks=tuple(range(n))).numpy()  # the lesion mechanism
    assert not np.allclose(full, skip_only, atol=1e-4)
    probs, _ = paths.measure_set(subject, model, X, Y, np.ones(n), "subnet")
    np.testing.assert_allclose(probs, full, atol=1e-5)  # k = n: every branch kept
    probs, _ = paths.measure_set(subject, model, X, Y, np.zeros(n), "subnet")
    np.testing.assert_allclose(probs, skip_only, atol=1e-5)  # k = 0: every branch deleted
    for gates in (np.zeros(n), np.ones(n), np.eye(n)[1], np.eye(n)[[0, 2, 1, 0, 2, 1]]):
        probs, norm = paths.measure_set(subject, model, X, Y, gates, "single")
        np.testing.assert_allclose(probs, full, atol=1e-5)  # one path: the forward pass stays whole
        assert norm > 0


@pytest.mark.parametrize("at_init", [True, False], ids=["init", "checkpoint"])
def test_the_gradients_of_all_single_paths_add_up_to_the_whole_gradient(checkpoint, at_init):
    subject = subjects.fresh(8, 1) if at_init else subjects.trained(checkpoint)
    model = subject.model()
    n = len(model.blocks)
    pixels, labels = tf.constant(X, tf.float32), tf.constant(Y)
    _, whole = paths.input_gradients(subject, model, pixels, labels)
    total = sum(paths.input_gradients(subject, model, pixels, labels, path=np.asarray(gates, np.float32))[1]
                for gates in itertools.product([0.0, 1.0], repeat=n))
    np.testing.assert_allclose(total.numpy(), whole.numpy(), rtol=1e-3,
                               atol=1e-3 * float(np.abs(whole).max()))


@pytest.mark.parametrize("method", paths.METHODS)
def test_path_lengths_result(checkpoint, method):
    result = paths.path_lengths(subjects.trained(checkpoint), samples=8, subsets=2, method=method,
                                source="synthetic")
    assert result["blocks"] == 3 and result["lengths"] == [0, 1, 2, 3]
    assert result["path_counts"] == [1, 3, 3, 1]
    assert result["total"] == pytest.approx([c * g for c, g in zip(result["path_counts"],
                                                                    result["gradient_per_path"])], rel=1e-4)
    assert result["effective_range"] == paths.effective_range(result["total"])
    assert result["at_init"] is False and result["method"] == method and result["samples"] == 8
    assert result_net(result) == subjects.trained(checkpoint).spec  # the net, not a name to parse
    assert "Veit et al." in paths.paths_reading(result)


def test_a_plain_net_has_one_path(tmp_path):
    with pytest.raises(ValueError, match="needs a residual net"):
        paths.path_lengths(subjects.fresh(8, 1, plain=True), samples=4, source="synthetic")


def test_bad_values_are_refused():
    spec = make_spec(8, 1)
    for samples, subsets, match in ((0, 1, "samples"), (513, 1, "samples"), (8, 0, "subsets"),
                                    ("many", 1, "samples"), (8, 21, "subsets")):
        with pytest.raises(ValueError, match=match):
            limits.check_paths_request(samples, subsets, spec)
    with pytest.raises(ValueError, match="method must be one of single, subnet"):
        paths.path_lengths(subjects.fresh(8, 1), method="both")


def test_resnet_1202_is_refused_with_its_reason():
    spec = make_spec(1202, 1)
    with pytest.raises(ValueError, match="times what this host allows per request"):
        limits.check_paths_request(16, 1, spec)
    with pytest.raises(ValueError, match="would not fit in memory"):
        limits.check_paths_request(64, 1, spec, budget=False)  # the bounds hold on the command line too
    with pytest.raises(ValueError, match="ResNet-1202 v1"):  # refused before anything is built
        paths.path_lengths(subjects.fresh(1202, 1), samples=16, budget=True)
    limits.check_paths_request(64, 1, make_spec(56, 1))  # the default request fits


def test_cli_paths_json(checkpoint):
    result = run_main("paths", checkpoint, "--samples", 4, "--data", "synthetic", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert {"blocks", "lengths", "path_counts", "gradient_per_path", "total", "effective_range"} <= set(out)
    assert out["blocks"] == 3 and out["path_counts"] == [1, 3, 3, 1] and out["at_init"] is False
    result = run_main("paths", "--depth", 8, "--samples", 4, "--data", "synthetic")
    assert result.returncode == 0, result.stderr
    assert "at initialization" in result.stdout and "length    3" in result.stdout


@pytest.mark.parametrize("args, needle", [
    ([], "give a checkpoint, or --depth"),
    (["--depth", 21], "not 6n+2"),
    (["--depth", 8, "--samples", 0], "samples must be between 1 and 512"),
    (["--depth", 8, "--method", "all"], "method must be one of"),
    (["no_such.keras"], "no checkpoint at no_such.keras"),
])
def test_cli_paths_bad_input_exits_2(args, needle):
    result = run_main("paths", *args, "--data", "synthetic")
    assert result.returncode == 2
    assert_clean_failure(result, needle)


def _no_progress(*args, **kwargs):
    return None


def test_the_tab_handlers_answer_with_a_chart_and_a_reading_or_a_message():
    import gradio as gr

    from ui import paths as tab

    figure, reading = tab.signal_plot("init", None, 8, 1, 0, 8, progress=_no_progress)
    assert {trace.name for trace in figure.data} == {"ResNet-8 v1 at initialization",
                                                     "Plain-8 v1 at initialization"}
    assert "Brock" in reading
    figure, reading = tab.path_lengths("init", None, 8, 1, 0, 4, 1, "single", progress=_no_progress)
    assert "ResNet-8 v1 at initialization" in reading and figure.data
    with pytest.raises(gr.Error, match="net must be one of checkpoint, init"):
        tab.path_lengths("both", None, 8, 1, 0, 4, progress=_no_progress)
    with pytest.raises(gr.Error, match="ResNet-1202 v1"):  # over budget: refused with its reason
        tab.path_lengths("init", None, 1202, 1, 0, 16, progress=_no_progress)
    with pytest.raises(gr.Error, match="points must be between"):
        tab.shattered_gradients("20", 1, 4, progress=_no_progress)
