"""The residual playground (issue #34): its points, its nets against Keras' own layers, the
twins (same weights, same batches), the boundary (the net's own predictions), a seeded run
repeated, the depth sweep's reading against its numbers, the bounds and the command line."""

import itertools
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import playground_settings as bounds
from explorer.core.playground_settings import PlaygroundSettings, read_depths, read_settings, read_steps
from explorer.data.points import GRID_EXTENT, GRID_SIZE, features, grid_axis, grid_points, make_points
from tests.test_cli import assert_clean_failure, json_lines, run_main

TINY = PlaygroundSettings(blocks=3, width=8, points=120, batch_size=16, seed=3)


# ----------------------------------------------------------------------------- bounds


@pytest.mark.parametrize("values, message", [
    ({"blocks": 0}, "blocks must be a whole number from 1 to 128"),
    ({"blocks": 129}, "blocks must be a whole number from 1 to 128"),
    ({"blocks": "3.5"}, "blocks must be a whole number"),
    ({"width": 7}, "width must be a whole number from 8 to 64"),
    ({"width": 65}, "width must be a whole number from 8 to 64"),
    ({"noise": -0.1}, "noise must be a number from 0 to 0.5"),
    ({"noise": "nan"}, "noise must be a number from 0 to 0.5"),
    ({"points": 49}, "points must be a whole number from 50 to 2000"),
    ({"train_fraction": 0.95}, "train fraction must be a number from 0.1 to 0.9"),
    ({"learning_rate": 0}, "learning rate must be a number from 1e-05 to 1"),
    ({"learning_rate": "fast"}, "learning rate must be a number, got 'fast'"),
    ({"batch_size": 0}, "batch size must be a whole number from 1 to 512"),
    ({"batch_size": 300}, "batch size must be at most the 250 training points"),
    ({"data": "swirl"}, "data must be one of spiral, circles, xor, moons, gaussian; got 'swirl'"),
    ({"norm": "group"}, "norm must be one of none, batch, layer"),
    ({"init": "he"}, "init must be one of default, zero"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of sgd, adam"),
    ({"features": "x,z"}, "a feature must be one of x, y, x2, y2, xy; got 'z'"),
    ({"features": ""}, "features must name at least one of"),
    ({"seed": -1}, "seed must be a whole number from 0 to"),
    ({"depth": 3}, "unknown playground setting 'depth'"),
])
def test_bounds_refused_with_a_message(values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_settings(**values)


def test_steps_and_depths_bounds():
    assert read_steps("20") == 20 and read_depths("2, 4;8,4") == [2, 4, 8]
    with pytest.raises(ValueError, match="steps must be a whole number from 1 to 100000"):
        read_steps(0)
    with pytest.raises(ValueError, match="blocks must be a whole number from 1 to 128"):
        read_depths("2,200")
    with pytest.raises(ValueError, match="give between 1 and 8 depths"):
        read_depths(",".join(map(str, range(1, 10))))
    with pytest.raises(ValueError, match="depths must be text"):
        read_depths(None)
    with pytest.raises(ValueError, match="features must be a tuple"):
        PlaygroundSettings(features=("y", "x"))  # constructed directly: the order is the one FEATURES has


WHOLE = [("blocks", bounds.MIN_BLOCKS, bounds.MAX_BLOCKS), ("width", bounds.MIN_WIDTH, bounds.MAX_WIDTH),
         ("points", bounds.MIN_POINTS, bounds.MAX_POINTS)]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(WHOLE), st.integers(-10**6, 10**6))
def test_whole_bounds_hold_exactly(field, value):
    name, low, high = field
    values = {name: value, **({"batch_size": 1} if name == "points" else {})}
    if low <= value <= high:
        assert getattr(read_settings(**values), name) == value
        as_text = {**values, name: str(value)}  # as a link sends it
        assert getattr(read_settings(**as_text), name) == value
    else:
        with pytest.raises(ValueError, match=f"{name} must be a whole number from {low} to {high}"):
            read_settings(**values)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([("noise", 0.0, bounds.MAX_NOISE), ("learning_rate", bounds.MIN_LEARNING_RATE,
                                                          bounds.MAX_LEARNING_RATE),
                        ("train_fraction", bounds.MIN_TRAIN_FRACTION, bounds.MAX_TRAIN_FRACTION)]),
       st.floats(allow_nan=True, allow_infinity=True))
def test_real_bounds_hold_exactly(field, value):
    name, low, high = field
    values = {name: value, "batch_size": 1}
    if low <= value <= high:
        assert getattr(read_settings(**values), name) == value
    else:
        with pytest.raises(ValueError, match=f"{name.replace('_', ' ')} must be a number from"):
            read_settings(**values)


def test_settings_round_trip_through_a_dict():
    s = read_settings(data="xor", features="xy,x", blocks="4", noise="0.2")
    assert s.features == ("x", "xy") and s.blocks == 4 and s.noise == 0.2
    assert PlaygroundSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


# ----------------------------------------------------------------------------- points


@pytest.mark.parametrize("name", bounds.DATA_SETS)
def test_points_are_seeded_balanced_and_split(name):
    a, b = make_points(name, 200, 0.1, 0.3, seed=5), make_points(name, 200, 0.1, 0.3, seed=5)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, make_points(name, 200, 0.1, 0.3, seed=6).x_train)
    assert a.x_train.shape == (60, 2) and a.x_test.shape == (140, 2) and a.x_train.dtype == np.float32
    labels = np.concatenate([a.y_train, a.y_test])
    assert labels.sum() == 100 and set(np.unique(labels)) == {0, 1}
    assert np.abs(make_points(name, 200, 0.0, 0.5, 0).x_train).max() <= GRID_EXTENT  # within the drawn plane


def test_noise_moves_the_points_and_features_are_what_they_say():
    clean, noisy = make_points("circles", 100, 0.0, 0.5, 1), make_points("circles", 100, 0.3, 0.5, 1)
    radius = np.hypot(*clean.x_train.T)
    assert np.all((radius <= 0.5 + 1e-6) == (clean.y_train == 1))  # circles: class 1 inside
    assert np.abs(noisy.x_train - clean.x_train).mean() > 0.1
    xy = np.array([[2.0, 3.0]], np.float32)
    assert features(xy, ("x", "y", "x2", "y2", "xy")).tolist() == [[2, 3, 4, 9, 6]]
    assert features(xy, ("xy", "y")).tolist() == [[3, 6]]
    grid = grid_points()
    assert grid.shape == (GRID_SIZE ** 2, 2) and grid[1, 0] > grid[0, 0] and grid[GRID_SIZE, 1] > grid[0, 1]


# ----------------------------------------------------------------------------- the nets


def _keras_twin(model, norm: str, residual: bool):
    """The same net written with Keras' own layers, one per block, the weights copied."""
    import keras

    from explorer.nets.playground_net import BATCH_NORM_MOMENTUM, EPSILON

    stack = model.get_layer("blocks")
    w = {v.name: v.numpy() for v in stack.weights}
    given = []  # (layer, its weights), set once the model is built

    def layer(made, weights):
        given.append((made, weights))
        return made

    inputs = keras.Input(model.input_shape[1:])
    stem = keras.layers.Dense(stack.width, activation="relu")
    h = layer(stem, model.get_layer("stem").get_weights())(inputs)
    for b in range(stack.blocks):
        y = h
        for k in (1, 2):
            if norm == "none":
                y = layer(keras.layers.Dense(stack.width), [w[f"kernel{k}"][b], w[f"bias{k}"][b]])(y)
            else:
                y = layer(keras.layers.Dense(stack.width, use_bias=False), [w[f"kernel{k}"][b]])(y)
                gamma_beta = [w[f"gamma{k}"][b], w[f"beta{k}"][b]]
                y = (layer(keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=EPSILON),
                           [*gamma_beta, w[f"mean{k}"][b], w[f"variance{k}"][b]]) if norm == "batch" else
                     layer(keras.layers.LayerNormalization(epsilon=EPSILON), gamma_beta))(y)
            if k == 1:
                y = keras.layers.ReLU()(y)
        h = keras.layers.ReLU()(keras.layers.Add()([y, h]) if residual else y)
    reference = keras.Model(inputs, layer(keras.layers.Dense(1), model.get_layer("head").get_weights())(h))
    for made, weights in given:
        made.set_weights(weights)
    return reference


@pytest.mark.parametrize("norm", bounds.NORMS)
@pytest.mark.parametrize("residual", [True, False])
def test_blocks_compute_what_keras_layers_compute(norm, residual):
    """Each block is dense-norm-ReLU-dense-norm (+ its input) then ReLU, in training and in
    inference mode, batch norm's running averages moved alike."""
    from explorer.nets.playground_net import build_net

    model = build_net(3, 3, 8, norm, residual=residual, seed=2)
    stack = model.get_layer("blocks")
    if norm == "batch":  # running averages away from 0 and 1, so inference mode uses them
        rng = np.random.default_rng(0)
        for name in ("mean1", "mean2", "variance1", "variance2"):
            getattr(stack, name).assign(rng.uniform(0.5, 1.5, (3, 8)).astype(np.float32))
    reference = _keras_twin(model, norm, residual)
    x = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x, training=False), reference(x, training=False), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model(x, training=True), reference(x, training=True), rtol=1e-4, atol=1e-5)
    if norm == "batch":
        moved = reference.layers[3]  # the first block's first batch norm
        np.testing.assert_allclose(stack.mean1.numpy()[0], moved.moving_mean.numpy(), rtol=1e-4, atol=1e-6)


def _stem_and_head(model, x):
    """The net without its blocks, in NumPy: head(ReLU(stem(x)))."""
    (stem_w, stem_b), (head_w, head_b) = (model.get_layer(name).get_weights() for name in ("stem", "head"))
    return np.maximum(x @ stem_w + stem_b, 0) @ head_w + head_b


@pytest.mark.parametrize("norm", bounds.NORMS)
def test_zeroed_branches_leave_the_stem_and_the_head(norm):
    """With every branch's last layer zeroed, the residual net is its stem and head alone
    (NumPy), whatever the blocks before hold; the plain twin outputs its head's bias."""
    from explorer.nets.playground_net import build_net

    x = np.random.default_rng(4).normal(size=(50, 2)).astype(np.float32)
    for residual in (True, False):
        model = build_net(2, 5, 16, norm, residual=residual, seed=7)
        stack = model.get_layer("blocks")
        for name in (("kernel2", "bias2") if norm == "none" else ("gamma2", "beta2")):
            getattr(stack, name).assign(np.zeros(getattr(stack, name).shape, np.float32))
        head_b = model.get_layer("head").get_weights()[1]
        alone = _stem_and_head(model, x) if residual else np.full((50, 1), head_b)
        for training in (False, True):
            np.testing.assert_allclose(model(x, training=training), alone, rtol=1e-5, atol=1e-5)


def test_zero_init_starts_every_residual_block_as_the_identity():
    from explorer.studies.playground import twins

    nets = twins(TINY.replace(init="zero"))
    model, x = nets["residual"], np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    np.testing.assert_allclose(model(x), _stem_and_head(model, x), rtol=1e-5, atol=1e-6)
    assert np.all(model.get_layer("blocks").gamma2.numpy() == 0)


# ----------------------------------------------------------------------------- the trainer


@pytest.fixture(scope="module")
def pair():
    from explorer.studies.playground import PairTrainer

    return PairTrainer(TINY)


def test_twins_start_equal_and_see_the_same_batches(pair):
    """The twins start from the same weights; each trained alone on the settings' batches ends
    where it ends in the pair, so the pair's twins saw the same batches."""
    from explorer.studies.playground import PairTrainer

    pair.reset()
    residual, plain = pair.nets["residual"], pair.nets["plain"]
    assert all(np.array_equal(a, b) for a, b in zip(residual.get_weights(), plain.get_weights()))
    assert [layer.name for layer in residual.layers] == [layer.name for layer in plain.layers]
    assert residual.get_layer("blocks").residual and not plain.get_layer("blocks").residual
    first = [pair.batch_indices().copy() for _ in range(3)]
    pair.reset()
    assert all(np.array_equal(a, pair.batch_indices()) for a in first)  # reset: the same batches again
    pair.reset()
    both = pair.run(12)
    for name in ("residual", "plain"):
        alone = PairTrainer(TINY, nets=(name,))
        snap = alone.run(12)
        for a, b in zip(pair.nets[name].get_weights(), alone.nets[name].get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert snap[name]["train_loss"] == pytest.approx(both[name]["train_loss"], rel=1e-5)
    assert not all(np.array_equal(a, b) for a, b in zip(residual.get_weights(), plain.get_weights()))


def test_the_boundary_is_the_nets_own_prediction(pair):
    pair.reset()
    snap = pair.run(5)
    axis = grid_axis()
    for i, j in [(0, 0), (10, 50), (32, 32), (63, 7), (63, 63)]:
        point = features(np.array([[axis[j], axis[i]]], np.float32), TINY.features)
        for name in ("residual", "plain"):
            logit = pair.nets[name].predict(point, verbose=0)[0, 0]
            assert snap[name]["boundary"][i, j] == pytest.approx(1 / (1 + np.exp(-logit)), abs=1e-5)


def test_a_snapshot_is_small_plain_data(pair):
    pair.reset()
    snap = pair.run(3)
    assert snap["step"] == 3 and snap["grid_size"] == GRID_SIZE and snap["seconds"] > 0
    for name in ("residual", "plain"):
        net = snap[name]
        assert net["boundary"].shape == (GRID_SIZE, GRID_SIZE) and net["boundary"].dtype == np.float32
        assert net["gradient_norms"].shape == (TINY.blocks,) and np.all(net["gradient_norms"] > 0)
        assert 0 <= net["train_accuracy"] <= 1 and net["batch_loss"] > 0
    assert len(pickle.dumps(snap)) < 100_000
    again = pair.snapshot()  # no step since: nothing averaged
    assert again["step"] == 3 and again["residual"]["batch_loss"] is None
    assert again["residual"]["train_loss"] == snap["residual"]["train_loss"]


def test_a_seeded_run_is_repeatable(pair):
    from explorer.studies.playground import PairTrainer

    pair.reset()
    first = pair.run(20)
    pair.reset()
    again = pair.run(20)
    fresh = PairTrainer(TINY).run(20)
    for snap in (again, fresh):
        for name in ("residual", "plain"):
            for key in ("train_loss", "test_loss", "train_accuracy", "batch_loss"):
                assert snap[name][key] == pytest.approx(first[name][key], rel=1e-6, abs=1e-7), (name, key)
            np.testing.assert_allclose(snap[name]["boundary"], first[name]["boundary"], atol=1e-6)
    other = PairTrainer(TINY.replace(seed=4)).run(0)
    assert other["residual"]["train_loss"] != fresh["residual"]["train_loss"]


def test_fewer_blocks_of_a_deeper_stack_are_the_shallower_net(pair):
    """`use_blocks` (the sweep's one compiled program for every depth) gives the net a fresh
    build of that depth gives: same start, same training."""
    from explorer.studies.playground import PairTrainer

    pair.use_blocks(2)
    try:
        stacked = pair.run(8)
        fresh = PairTrainer(TINY.replace(blocks=2)).run(8)
        for name in ("residual", "plain"):
            assert stacked[name]["train_loss"] == pytest.approx(fresh[name]["train_loss"], rel=1e-5)
            assert stacked[name]["gradient_norms"].shape == (2,)
        with pytest.raises(ValueError, match="blocks must be from 1 to 3 here"):
            pair.use_blocks(4)
    finally:
        pair.use_blocks(TINY.blocks)


def test_run_for_keeps_to_its_time(pair):
    pair.reset()
    snap = pair.run_for(0.2, most=1000)
    assert 1 <= snap["step"] <= 1000
    assert pair.run_for(0.0)["step"] == snap["step"] + 1  # at least one step


# ----------------------------------------------------------------------------- the sweep


def _result(table: dict, steps: int = 100) -> dict:
    """A sweep's result from {depth: (plain loss, residual loss)}, for the reading alone."""
    rows = [{"blocks": depth, "net": net, "train_loss": loss}
            for depth, losses in table.items() for net, loss in zip(("plain", "residual"), losses)]
    return {"settings": PlaygroundSettings(blocks=max(table)).to_dict(), "steps": steps,
            "depths": sorted(table), "rows": rows}


def test_the_reading_says_where_the_plain_net_falls_behind():
    from explorer.studies.playground_sweep import sweep_reading

    reading = sweep_reading(_result({2: (0.30, 0.31), 8: (0.50, 0.30), 32: (0.70, 0.35)}))
    assert "from **8 blocks** on" in reading and "up to 2 blocks" in reading
    assert "0.700 against 0.350, 2 times" in reading
    assert "rises with depth: from 8 blocks on" in reading and "0.300 at 2" in reading
    assert "100 steps a depth, seed 0" in reading and "another seed" in reading

    behind_twice = sweep_reading(_result({2: (0.3, 0.31), 8: (0.5, 0.3), 16: (0.31, 0.3), 32: (0.7, 0.3)}))
    assert "from **32 blocks** on" in behind_twice  # 16 breaks the run: only 32 on counts

    level = sweep_reading(_result({2: (0.30, 0.31), 8: (0.305, 0.30), 32: (0.31, 0.30)}))
    assert "at these settings the plain net did not fall behind" in level and "from **" not in level
    assert "did not rise with depth" in level

    diverged = sweep_reading(_result({2: (0.30, 0.31), 64: (float("nan"), 0.40)}))
    assert "from **64 blocks** on" in diverged and "NaN (diverged)" in diverged

    turned = sweep_reading(_result({2: (0.30, 0.60), 8: (0.30, 0.31)}))
    assert "residual net was the one behind at 2 blocks" in turned


def test_the_sweep_on_the_spiral_shows_the_direction_its_reading_states():
    """A small budget on the spiral: whatever it measures, the reading states that direction
    (never a hard-coded outcome)."""
    from explorer.studies.playground_sweep import behind, depth_sweep, losses_by_depth, sweep_reading

    result = depth_sweep(PlaygroundSettings(data="spiral"), depths="2,16", steps=150)
    assert [(row["blocks"], row["net"]) for row in result["rows"]] == [
        (2, "residual"), (2, "plain"), (16, "residual"), (16, "plain")]
    table, reading = losses_by_depth(result), sweep_reading(result)
    plain, residual = table[16]
    assert f"{plain:.3f} against {residual:.3f}" in reading.replace("against the residual net's", "against")
    if behind(plain, residual):
        assert plain > residual
        start = 2 if behind(*table[2]) else 16
        assert f"from **{start} blocks** on" in reading
    else:
        assert "at these settings the plain net did not fall behind" in reading


# ----------------------------------------------------------------------------- command line


def test_cli_prints_one_nets_numbers():
    result = run_main("playground", "--data", "moons", "--blocks", "2", "--width", "8", "--steps", "20",
                      "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr
    (line,) = json_lines(result.stdout)
    assert set(line) == {"train_loss", "test_loss", "train_accuracy", "test_accuracy", "steps_per_s"}
    assert 0 <= line["train_accuracy"] <= 1 and line["steps_per_s"] > 0
    tiny = ("--data", "moons", "--blocks", "2", "--width", "8", "--steps", "20", "--seed", "1", "--json")
    plain = json_lines(run_main("playground", *tiny, "--plain").stdout)[0]
    assert plain["train_loss"] != line["train_loss"]


def test_cli_sweep_prints_a_row_per_depth_and_net():
    result = run_main("playground", "--sweep", "1,2", "--steps", "5", "--width", "8", "--json")
    assert result.returncode == 0, result.stderr
    rows = json_lines(result.stdout)
    assert [(row["blocks"], row["net"]) for row in rows] == [(1, "residual"), (1, "plain"), (2, "residual"),
                                                             (2, "plain")]
    assert {"train_loss", "test_loss", "train_accuracy", "test_accuracy"} <= set(rows[0])


@pytest.mark.parametrize("args, needle", [
    (["--blocks", "0"], "blocks must be a whole number from 1 to 128, got '0'"),
    (["--width", "wide"], "width must be a whole number, got 'wide'"),
    (["--norm", "group"], "norm must be one of none, batch, layer"),
    (["--data", "swirl"], "data must be one of spiral"),
    (["--steps", "0"], "steps must be a whole number from 1 to 100000"),
    (["--sweep", "2,500"], "blocks must be a whole number from 1 to 128, got '500'"),
    (["--sweep", "2,4", "--plain"], "--plain picks the net of one run"),
    (["--sweep", "2", "--steps", "9999"], "steps must be a whole number from 1 to 5000"),
])
def test_cli_refuses_bad_values_with_one_line(args, needle):
    result = run_main("playground", *args)
    assert result.returncode == 2
    assert_clean_failure(result, needle)
    assert len(result.stderr.strip().splitlines()) == 1


def test_live_streams_snapshots_until_told(pair):
    from explorer.studies.playground import live

    pair.reset()
    stream = list(live(pair, seconds=0.05, steps=30))
    assert stream[0]["step"] == 0 and stream[0]["residual"]["batch_loss"] is None  # drawn before any step
    assert stream[-1]["step"] == 30 and all(a["step"] < b["step"] for a, b in itertools.pairwise(stream))
    calls = iter([False, False, True])
    paused = list(live(pair, seconds=0.01, stop=lambda: next(calls)))
    assert len(paused) == 3 and paused[0]["step"] == 30  # the first, then one per "go on"


def test_the_command_lines_sweep_default_is_the_studys():
    from explorer.cli import playground as cli_playground
    from explorer.studies import playground_sweep

    assert cli_playground.DEFAULT_SWEEP_STEPS == playground_sweep.DEFAULT_SWEEP_STEPS
