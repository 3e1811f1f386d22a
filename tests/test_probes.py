"""The gradient lab's numbers against a hand-written tf.GradientTape computation."""

import numpy as np
import pytest
import tensorflow as tf

from explorer.core.specs import make_spec
from explorer.nets import gradient_probe
from explorer.nets.models import weight_layers
from explorer.studies import probes, twins


def _by_hand(model, x, y):
    """The textbook computation: tape, forward in training mode, data loss, kernel grads."""
    kernels = [layer.kernel for layer in weight_layers(model)]
    with tf.GradientTape() as tape:
        probs = model(tf.constant(x), training=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, probs))
    return np.array([float(tf.norm(g)) for g in tape.gradient(loss, kernels)])


@pytest.fixture(scope="module")
def flow():
    return probes.gradient_flow(20, 1, batch_size=16, seed=3, source="synthetic")


def test_twins_share_initial_weights():
    residual, plain = twins.twins(20, 1, 3)
    weights = {v.path.split("/", 1)[1]: v.numpy() for v in residual.weights}
    assert len(plain.weights) < len(residual.weights)  # no projection shortcuts
    for variable in plain.weights:
        np.testing.assert_array_equal(variable.numpy(), weights[variable.path.split("/", 1)[1]])


@pytest.mark.parametrize("version", [1, 2])
def test_a_kept_pair_reinitialised_for_a_seed_equals_a_pair_built_with_it(version):
    depth = 20 if version == 1 else 29
    twins.twins(depth, version, 0)  # the kept pair, at seed 0
    residual, plain = twins.twins(depth, version, 5)  # re-initialised, not built
    assert twins.kept_twins(depth, version, "projection").residual is residual
    fresh_residual, fresh_plain, _ = twins._build_twins(make_spec(depth, version), 5)
    for kept, fresh in ((residual, fresh_residual), (plain, fresh_plain)):
        assert [v.path for v in kept.weights] == [v.path for v in fresh.weights]
        for mine, theirs in zip(kept.weights, fresh.weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)
    other, _ = twins.twins(depth, version, 6)
    # a seed changes them
    assert not np.array_equal(other.weights[0].numpy(), fresh_residual.weights[0].numpy())


def test_probe_matches_hand_written_gradient_tape(flow):
    x, y, _, _ = probes.probe_batch(16, "synthetic", 3)
    residual, plain = twins.twins(20, 1, 3)
    np.testing.assert_allclose(flow.residual, _by_hand(residual, x, y)[
        [i for i, layer in enumerate(weight_layers(residual)) if not layer.name.endswith("_shortcut")]],
        rtol=2e-4)
    np.testing.assert_allclose(flow.plain, _by_hand(plain, x, y), rtol=2e-4)


def test_traced_probe_gives_the_eager_numbers_for_any_batch_size(flow):
    residual, plain = twins.twins(20, 1, 3)
    assert probes.trace(20, 1, 16, "synthetic")  # the warm-up task the page submits after a first answer
    assert (getattr(residual, "_explorer_probe_ready", False)
            and getattr(plain, "_explorer_probe_ready", False))
    for size in (16, 5):
        x, y, _, _ = probes.probe_batch(size, "synthetic", 3)
        traced = probes._probe(plain, x, y, traced=True)
        eager = gradient_probe.probe_fn(plain, compiled=False)(x, y)
        np.testing.assert_allclose(traced[1], eager[0].numpy(), rtol=1e-4)
        np.testing.assert_allclose(traced[2], eager[1].numpy(), rtol=1e-4)
        np.testing.assert_allclose(traced[1], _by_hand(plain, x, y), rtol=2e-4)
    assert probes.gradient_flow(20, 1, batch_size=7, seed=3, source="synthetic").traced
    # one trace serves every batch size
    assert len(gradient_probe.probe_fn(plain, compiled=True)._list_all_concrete_functions()) == 1


def test_probe_leaves_batch_norm_statistics_alone():
    residual, _ = twins.twins(20, 1, 3)
    before = [v.numpy().copy() for v in residual.non_trainable_variables]
    probes.gradient_flow(20, 1, batch_size=8, seed=3, source="synthetic")
    for old, new in zip(before, residual.non_trainable_variables):
        np.testing.assert_array_equal(old, new.numpy())


def test_flow_shapes_and_order(flow):
    assert flow.layers[0] == "stem_conv" and flow.layers[-1] == "head_dense"
    assert len(flow.layers) == len(flow.plain) == len(flow.residual) == 20
    assert flow.shortcut_layers == ["stage2_block1_shortcut", "stage3_block1_shortcut"]
    assert len(flow.blocks) == len(flow.plain_blocks) == 9
    assert all(np.isfinite(v) and v > 0 for v in flow.plain + flow.residual)
    assert flow.stage_starts == [1, 7, 13]


def test_reading_reports_measured_numbers(flow):
    from explorer.core.numbers import magnitude

    text = probes.reading(flow)
    assert "ResNet-20 v1" in text and "16 images, generated" in text and "at initialization" in text
    ratio = flow.plain[0] / flow.residual[0]
    said = [f"{magnitude(ratio)} times larger", f"{magnitude(1 / ratio)} times smaller",
            f"plain/residual = {magnitude(ratio)}"]
    assert sum(phrase in text for phrase in said) == 1, (ratio, text)
    spread = np.log10(max(flow.plain) / min(flow.plain))
    assert f"spans {spread:.1f} orders of magnitude (plain)" in text


def _made_up_flow(plain, residual):
    names = [f"layer{i}" for i in range(len(plain))]
    return probes.FlowResult("ResNet-110 v1", names, plain, residual, [], [], [], [], [], [0], 64,
                             "cifar10", "", 2.3, 2.3)


@pytest.mark.parametrize("first_plain", [3.5e5, 1e-3, 1.0])  # explosion, vanishing, alike
def test_reading_says_the_moment_and_writes_numbers_one_way(first_plain):
    text = probes.reading(_made_up_flow([first_plain, 2.0, 1e-1, 1e-1], [1.0, 0.5, 0.5, 0.5]))
    assert "at initialization" in text and "before any training step" in text
    assert "e+" not in text and "e-0" not in text and "x larger" not in text  # not "354646.2x", "2.2e+06"
    if first_plain > 1:
        assert "**3.5×10⁵ times larger**" in text and "a factor 3.5×10⁶ in the plain net" in text


def test_depth_sweep_rows_are_the_probes_numbers_and_the_chart_names_its_data():
    from explorer.views import charts

    sweep = probes.depth_sweep(1, [8, 14], batch_size=4, seed=1, source="synthetic")
    assert [row["depth"] for row in sweep["rows"]] == [8, 14] and sweep["data"] == "synthetic"
    flow = probes.gradient_flow(14, 1, 4, 1, "synthetic")
    assert sweep["rows"][1]["plain_first"] == pytest.approx(flow.plain[0], rel=1e-5)
    assert sweep["rows"][1]["residual_median"] == pytest.approx(float(np.median(flow.residual)), rel=1e-5)
    assert "generated images" in charts.sweep_figure(sweep).layout.title.text


def test_bad_input_refused():
    with pytest.raises(ValueError, match="nearest valid depths are 20 and 26"):
        probes.gradient_flow(22, 1)
    with pytest.raises(ValueError, match="batch size"):
        probes.gradient_flow(20, 1, batch_size=0)


def test_deep_nets_cap_the_batch():
    assert probes.largest_batch(110, 64) == 64
    assert probes.largest_batch(1202, 64) == 8


def test_requests_are_read_from_raw_values_with_their_bounds():
    """The page and the API send text and floats: the probes read them and refuse bad ones
    with the message the app always gave."""
    from explorer.core.specs import MAX_SEED

    assert probes.check_request("56", 1.0, "64", MAX_SEED) == (56, 1, 64, MAX_SEED)
    for args, message in [(("20", 1, 513), "batch size must be a whole number from 1 to 512"),
                          ((20, 1, 64, -1), "seed must be a whole number"),
                          ((10**9, 1), "depth must be a whole number from 1 to 2000"),
                          ((20, 3), "version must be a whole number from 1 to 2"),
                          ((22, 1), "nearest valid depths are 20 and 26")]:
        with pytest.raises(ValueError, match=message):
            probes.check_request(*args)
    assert probes.sweep_depths("1", "20, 56; 110,") == (1, [20, 56, 110])
    assert probes.sweep_depths(2, [29, 56]) == (2, [29, 56])
    with pytest.raises(ValueError, match="give between 1 and 8 depths, separated by commas"):
        probes.sweep_depths(1, " , ")
    with pytest.raises(ValueError, match="give between 1 and 8 depths"):
        probes.sweep_depths(1, ",".join(["20"] * 9))
    with pytest.raises(ValueError, match="9n\\+2 for v2"):
        probes.sweep_depths(2, "21")


def test_skip_shares_match_a_hand_written_tape_and_a_plain_net_has_none():
    """For a block with an identity shortcut, the shortcut's part of dL/dx is dL/d(x + F(x))
    itself and the branch's is the rest of dL/dx: both from one textbook tape over the model's
    own call (v1: dL/d(x + F(x)) is the block output's gradient where the ReLU passes)."""
    from explorer.core.plans import plan

    x, y, _, _ = probes.probe_batch(16, "synthetic", 3)
    residual, plain = twins.twins(20, 1, 3)
    shares = gradient_probe.skip_shares(residual, x, y)
    assert gradient_probe.skip_shares(plain, x, y) == [None] * 9
    with tf.GradientTape() as tape:
        probs, outputs = residual.forward(tf.constant(x), training=True, collect=True)
        loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(y, probs))
    grads = tape.gradient(loss, outputs)
    identity = [i for i, block in enumerate(plan(residual.spec).blocks) if block.shortcut == "identity"]
    assert len(identity) == 7 and all(0 < share < 1 for share in shares)
    for i in identity[1:]:  # its input is the block before's output
        at_add = grads[i] * tf.cast(outputs[i] > 0, grads[i].dtype)
        skip, branch = float(tf.norm(at_add)), float(tf.norm(grads[i - 1] - at_add))
        assert shares[i] == pytest.approx(skip / (skip + branch), rel=1e-3), i
