"""The Keras builder against independent numbers and against the plan-only graph module."""

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from explorer.core import costs
from explorer.core.plans import plan
from explorer.core.specs import REGISTRY, get_spec
from explorer.nets.models import ResNet, ZeroPadShortcut, build_model, load_model, weight_layers

HUGE = {"resnet1202_v1", "resnet1001_v2"}
# CIFAR specs quick enough to build, run and differentiate in every test run.
FAST = [name for name, spec in REGISTRY.items() if spec.family == "cifar" and name not in HUGE]

# Independent parameter counts (Keras tutorial / keras.applications / He et al.).
EXPECTED_PARAMS = {
    "resnet20_v1": 274_442,
    "resnet56_v1": 861_770,
    "resnet110_v1": 1_742_762,
    "resnet29_v2": 849_002,
    "resnet164_v2": 4_972_682,
    "plain56_v1": 859_114,
    "resnet20_v1_zeropad": 271_786,
    "resnet50": 25_636_712,  # keras.applications.ResNet50(weights=None).count_params()
}


@functools.cache
def built(name: str) -> ResNet:
    keras.utils.set_random_seed(0)
    return build_model(get_spec(name))


def pixels(n=2, shape=(32, 32, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def leaves(model) -> list:
    """Layers with no sublayers, anywhere in the model."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if not list(layer._flatten_layers(include_self=False))]


@pytest.mark.parametrize("name", FAST)
def test_forward_gives_probabilities(name):
    model = built(name)
    probs = np.asarray(model(pixels(), training=False))
    assert probs.shape == (2, model.spec.num_classes)
    assert np.isfinite(probs).all() and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", FAST)
def test_every_trainable_weight_gets_a_gradient(name):
    model = built(name)
    labels = tf.one_hot(np.arange(4) % 10, 10)
    with tf.GradientTape() as tape:
        probs = model(pixels(4, seed=1), training=True)
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(labels, probs))
    grads = tape.gradient(loss, model.trainable_weights)
    assert len(grads) == len(model.trainable_weights) > 0
    dead = []
    for weight, grad in zip(model.trainable_weights, grads):
        assert grad is not None, f"no gradient reaches {weight.path}"
        grad = np.asarray(grad)
        assert np.isfinite(grad).all(), weight.path
        # A conv bias that feeds a batch norm is cancelled by the BN's mean subtraction in
        # training mode, so its gradient is zero up to rounding; everything else must move.
        conv_bias = weight.path.endswith("/bias") and "head_dense" not in weight.path
        if not conv_bias and not np.abs(grad).max() > 0:
            dead.append(weight.path)
    assert not dead, f"zero gradient for {dead}"


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_parameter_counts_match_independent_numbers(name):
    assert built(name).count_params() == EXPECTED_PARAMS[name]
    assert costs.summarize(get_spec(name))["totals"]["params"] == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name, millions", [("resnet18", 11.7), ("resnet34", 21.8)])
def test_imagenet_basic_block_counts(name, millions):
    assert built(name).count_params() == pytest.approx(millions * 1e6, rel=0.01)


def test_zeropad_shortcut_has_no_weights():
    zeropad, projection = built("resnet20_v1_zeropad"), built("resnet20_v1")
    assert zeropad.count_params() == 271_786 < projection.count_params() == 274_442
    names = [layer.name for layer in leaves(zeropad)]
    assert not [n for n in names if n.endswith("_shortcut")]
    pads = [layer for layer in leaves(zeropad) if isinstance(layer, ZeroPadShortcut)]
    assert sorted(p.name for p in pads) == ["stage2_block1_shortcut_pad", "stage3_block1_shortcut_pad"]
    assert all(p.count_params() == 0 for p in pads)


@pytest.mark.parametrize("plain_name", ["plain20_v1", "plain29_v2"])
def test_plain_twin_has_no_shortcuts_or_adds(plain_name):
    plain = built(plain_name)
    residual = built(plain.spec.twin().slug)
    everything = list(plain._flatten_layers())
    assert not [layer for layer in everything if isinstance(layer, keras.layers.Add)]
    assert not [layer.name for layer in everything if "_shortcut" in layer.name]
    adds = [layer for layer in residual._flatten_layers() if isinstance(layer, keras.layers.Add)]
    shortcuts = [layer for layer in residual._flatten_layers() if layer.name.endswith("_shortcut")]
    assert len(adds) == len(plan(residual.spec).blocks)
    assert len(shortcuts) == sum(b.shortcut == "projection" for b in plan(residual.spec).blocks) > 0
    # Same names otherwise: "plain" is a flag, not a second code path.
    residual_names = {layer.name for layer in leaves(residual)}
    plain_names = {layer.name for layer in leaves(plain)}
    assert plain_names == {n for n in residual_names if "_shortcut" not in n and not n.endswith("_add")}


@pytest.mark.parametrize("name", FAST + ["resnet18", "resnet50"])
def test_layer_names_and_params_match_the_graph_table(name):
    model = built(name)
    found = leaves(model)
    names = [layer.name for layer in found]
    assert len(names) == len(set(names)), "duplicate layer names"
    table = {row.name: row for row in costs.layer_table(model.spec)}
    assert set(names) == set(table)
    for layer in found:
        row = table[layer.name]
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        assert (layer.count_params(), trainable) == (row.params, row.trainable), layer.name


@pytest.mark.parametrize("name", FAST + ["resnet18", "resnet50"])
def test_summary_totals_match_the_model(name):
    model = built(name)
    totals = costs.summarize(model.spec)["totals"]
    assert totals["params"] == model.count_params()
    assert totals["trainable_params"] == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert totals["non_trainable_params"] == sum(
        int(np.prod(w.shape)) for w in model.non_trainable_weights)


@pytest.mark.parametrize("name", FAST + ["resnet18"])
def test_weight_layers_follow_the_plan_order(name):
    model = built(name)
    expected = [row.name for row in costs.layer_table(model.spec) if row.kind in ("conv", "dense")]
    assert [layer.name for layer in weight_layers(model)] == expected


@pytest.mark.parametrize("name", FAST)
def test_block_outputs_have_the_planned_shapes(name):
    model = built(name)
    probs, outputs = model.forward(pixels(), collect=True)
    blocks = plan(model.spec).blocks
    assert len(outputs) == len(blocks)
    for block, out in zip(blocks, outputs):
        assert tuple(out.shape) == (2, *block.out_shape), block.name
    assert tuple(probs.shape) == (2, 10)


def test_dropping_a_branch_leaves_the_shortcut():
    model = built("resnet20_v1")
    x = pixels()
    _, full = model.forward(x, collect=True)
    probs, lesioned = model.forward(x, drop_blocks={1}, collect=True)
    np.testing.assert_allclose(np.asarray(probs).sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(lesioned[0]), np.asarray(full[0]))
    # v1 identity block without F(x): ReLU(x) of a post-ReLU input is the input itself.
    np.testing.assert_array_equal(np.asarray(lesioned[1]), np.asarray(lesioned[0]))
    assert not np.allclose(np.asarray(lesioned[1]), np.asarray(full[1]))


@pytest.mark.parametrize("name", ["resnet20_v1", "resnet20_v1_zeropad", "plain20_v1", "resnet29_v2"])
def test_keras_file_round_trip(name, tmp_path):
    model = built(name)
    path = tmp_path / "m.keras"
    model.save(path)
    x = pixels(4, seed=2)
    loaded = load_model(path)
    assert isinstance(loaded, ResNet) and loaded.spec == model.spec
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    again = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert isinstance(again, ResNet)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)


def test_input_statistics_travel_with_the_checkpoint(tmp_path):
    stats = {"mean": [100.0, 110.0, 120.0], "std": [50.0, 55.0, 60.0]}
    model = build_model(get_spec("resnet20_v1"), input_stats=stats)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert loaded.input_stats == stats
    x = pixels(2, seed=3)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


@pytest.mark.slow
def test_thousand_layer_networks():
    deep = build_model(get_spec("resnet1202_v1"))
    assert deep.count_params() == 19_558_378
    assert costs.summarize(deep.spec)["totals"]["params"] == 19_558_378
    # the v2 thousand-layer net by the analytic count, which test_summary_totals_match_the_model
    # holds to the built models (building it too cost 30 s alone, up to 90 s in CI)
    assert costs.summarize(get_spec("resnet1001_v2"))["totals"]["params"] == 30_539_498
    # A `.keras` file maps weights by layer name, so unique names are what a round trip of
    # 1,202 layers needs beyond test_keras_file_round_trip (saving and loading this one took
    # 65 s of CI's time, and its outputs could be NaN on both sides).
    names = [layer.name for layer in deep._flatten_layers(include_self=False)]
    assert len(names) == len(set(names)) > 1202
    # The probes read a net at initialization in training mode (batch statistics), where 600
    # blocks stay finite; in inference mode an untrained net's batch norms are identities and
    # 600 skip additions saturate the softmax, or overflow float32 to NaN.
    probabilities = np.asarray(deep(pixels(2), training=True))
    assert np.all(np.isfinite(probabilities)) and probabilities.sum(-1) == pytest.approx([1, 1], abs=1e-4)
