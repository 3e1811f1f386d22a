"""The limits of one Insight request: the bounds of its values and its cost on this host."""

import pytest

from explorer.core.specs import make_spec


def test_landscape_budget():
    from explorer.core.limits import check_landscape_budget

    check_landscape_budget(9, 128, 2)  # the default, for two checkpoints
    with pytest.raises(ValueError, match="times what this host allows"):
        check_landscape_budget(51, 10_000, 2)


def test_budgets_weigh_a_net_by_its_cost_per_image():
    """A lesion or landscape request is sized by the net's multiply-adds, so a ResNet-1202
    cannot hold the shared probe slot for hours with a request a ResNet-56 may make."""
    from explorer.core.limits import check_landscape_budget, check_lesion_budget
    from explorer.core.specs import get_spec

    r56, plain56 = make_spec(56, 1), make_spec(56, 1, residual=False)
    check_lesion_budget(2000, [r56, plain56])  # the README's report
    with pytest.raises(ValueError, match="times what this host allows"):
        check_lesion_budget(10_000, [r56, plain56])
    with pytest.raises(ValueError, match="deleting each block of ResNet-1202 v1 on 100 images"):
        check_lesion_budget(100, [make_spec(1202, 1)])
    check_landscape_budget(9, 128, 2, [r56, plain56])  # the default
    check_landscape_budget(9, 128, 1, [get_spec("resnet20_v1")])  # small nets count as ResNet-56
    with pytest.raises(ValueError, match="use fewer steps or images"):
        check_landscape_budget(9, 128, 1, [make_spec(1202, 1)])
