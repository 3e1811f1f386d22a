"""Lesion study mechanics on small untrained nets (the real study needs trained checkpoints)."""

from pathlib import Path

import numpy as np
import pytest

from explorer.insight import lesion
from explorer.models import build_model
from explorer.specs import make_spec


@pytest.mark.parametrize("residual", [True, False])
def test_lesion_deletes_each_block_once(tmp_path, residual):
    path = tmp_path / "m.keras"
    build_model(make_spec(20, 1, residual=residual)).save(path)
    result = lesion(path, "synthetic", samples=40)
    assert result["blocks"][0] == "stage1_block1" and len(result["blocks"]) == 9
    assert result["downsampling"] == [False] * 3 + [True, False, False] * 2
    assert result["n"] == 40 and 0 <= result["baseline"] <= 1
    for acc, down in zip(result["accuracy"], result["downsampling"]):
        if down and not residual:
            assert acc is None  # a plain block that changes shape cannot be bypassed
        else:
            assert 0 <= acc <= 1


def test_deleting_a_residual_branch_keeps_the_shortcut():
    model = build_model(make_spec(20, 1))
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    _, outputs = model.forward(x, collect=True)
    _, lesioned = model.forward(x, collect=True, drop_blocks=(1,))
    # without its branch, block 2 returns relu(shortcut(x)) = its input (already post-ReLU)
    np.testing.assert_allclose(lesioned[1], outputs[0], atol=1e-6)


def test_loss_landscape_restores_weights_and_has_its_minimum_grid(tmp_path):
    from explorer.insight import loss_landscape
    from explorer.models import load_model

    path = tmp_path / "m.keras"
    build_model(make_spec(8, 1)).save(path)
    result = loss_landscape(path, "synthetic", samples=16, steps=3, span=0.5)
    assert len(result["alphas"]) == 5 and len(result["loss_1d"]) == 5
    assert np.asarray(result["loss_2d"]).shape == (3, 3)
    assert result["loss_1d"][2] == pytest.approx(result["loss_2d"][1][1], rel=1e-5)  # both at the origin
    with pytest.raises(ValueError, match="steps"):
        loss_landscape(path, "synthetic", steps=1)
    assert load_model(path).count_params() > 0


def test_filter_normalized_direction_matches_filter_norms():
    from explorer.insight import _filter_normalized_direction

    kernel = np.random.default_rng(0).standard_normal((3, 3, 4, 5)).astype(np.float32)
    bias = np.ones(5, np.float32)
    d_kernel, d_bias = _filter_normalized_direction([kernel, bias], np.random.default_rng(1))
    np.testing.assert_allclose(np.sqrt((d_kernel ** 2).sum(axis=(0, 1, 2))),
                               np.sqrt((kernel ** 2).sum(axis=(0, 1, 2))), rtol=1e-4)
    assert not d_bias.any()


def test_imagenet_photos_fail_clearly_offline_or_work_online():
    from explorer import inference

    try:
        label = inference.classify_imagenet(str(Path(__file__).parents[1] / "examples" / "red_car.png"))
    except ValueError as err:
        assert "cannot be downloaded" in str(err)
    else:
        assert len(label) == 5
