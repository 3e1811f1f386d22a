"""The plan of blocks: shapes chain from the stem to the head (no Keras here)."""

import pytest

from explorer.core.plans import plan
from explorer.core.specs import REGISTRY


@pytest.mark.parametrize("name", list(REGISTRY))
def test_plan_shapes_chain(name):
    spec = REGISTRY[name]
    net = plan(spec)
    assert net.blocks[0].in_shape == net.stem_out_shape
    for before, after in zip(net.blocks, net.blocks[1:]):
        assert before.out_shape == after.in_shape
    for block in net.blocks:
        if not spec.residual:
            assert block.shortcut is None
        elif block.downsamples:
            assert block.shortcut == spec.shortcut
        else:
            assert block.shortcut == "identity"
    if spec.family == "cifar":
        assert len(net.blocks) == 3 * spec.num_blocks
        assert net.blocks[-1].out_shape == ((8, 8, 64) if spec.version == 1 else (8, 8, 256))
    else:
        assert net.blocks[-1].out_shape[:2] == (7, 7)
