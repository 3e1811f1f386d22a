"""Lesion study mechanics on small untrained nets (the real study needs trained checkpoints)."""

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
