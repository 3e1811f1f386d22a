"""Links that rebuild a view: every parameter read with the request's own checks, bad ones
dropped with a reason and never raised."""

import pytest

from explorer.views import links

SHIPPED = ["resnet56_v1", "plain56_v1"]


def test_a_gradient_link_sets_the_tab_and_its_inputs():
    view = links.parse({"tab": "gradients", "depth": "110", "version": "1", "seed": "3"}, SHIPPED)
    assert view.tab == "gradients" and view.ignored == []
    assert view.gradients == {**links.GRADIENT_DEFAULTS, "depth": 110, "seed": 3}
    assert view.architecture == links.ARCHITECTURE_DEFAULTS  # another tab's inputs are not touched


def test_an_architecture_link_reads_every_control():
    view = links.parse({"depth": "29", "version": "2", "residual": "false", "shortcut": "zeropad",
                        "expand": "stage2", "twin": "true"}, SHIPPED)
    assert view.tab == "architecture" and view.ignored == []
    assert view.architecture == {"depth": 29, "version": 2, "family": "cifar", "residual": False,
                                 "shortcut": "zeropad", "expand": "stage2", "twin": True}


@pytest.mark.parametrize("params, reason", [
    ({"depth": "abc"}, "depth=abc (depth must be a whole number"),
    ({"depth": "21"}, "nearest valid depths are 20 and 26"),
    ({"tab": "nope"}, "tab=nope (tabs:"),
    ({"tab": "classify", "checkpoint": "resnet9000_v1"}, "no shipped checkpoint has that name"),
    ({"tab": "insight", "compare": "job:0123456789ab"}, "a job belongs to the browser that trained it"),
    ({"expand": "stage4"}, "has no such stage"),
    ({"expand": "stage3_block10"}, "ResNet-56 v1 has no such block"),
    ({"expand": "stage2_blockx"}, "or a block's name"),
    ({"tab": "gradients", "seed": "-1"}, "seed must be a whole number"),
    ({"depth": "5" * 300}, "longer than 200 characters"),
])
def test_a_bad_or_foreign_parameter_is_dropped_with_its_reason(params, reason):
    view = links.parse(params, SHIPPED)
    assert reason in view.notice() and "defaults are shown instead" in view.notice()
    assert view.architecture["depth"] == 56 and view.gradients["depth"] == 110  # the defaults stand


def test_a_link_opens_one_block_expanded():
    view = links.parse({"depth": "20", "expand": "stage2_block3"}, SHIPPED)
    assert view.ignored == [] and view.architecture["expand"] == "stage2_block3"
    assert "expand=stage2_block3" in links.query("architecture", view.architecture,
                                                 links.ARCHITECTURE_DEFAULTS)


def test_a_link_names_only_shipped_checkpoints():
    view = links.parse({"tab": "insight", "checkpoint": "resnet56_v1", "compare": "plain56_v1"}, SHIPPED)
    assert (view.checkpoint, view.compare, view.ignored) == ("resnet56_v1", "plain56_v1", [])


def test_teacher_mode_switches():
    view = links.parse({"tab": "gradients", "hide": "controls", "tab_only": "1"}, SHIPPED)
    assert view.hide_controls and view.tab_only
    assert not links.parse({}, SHIPPED).hide_controls


def test_the_query_of_a_view_reads_back_as_the_same_view():
    values = {**links.ARCHITECTURE_DEFAULTS, "depth": 110, "twin": True}
    text = links.query("architecture", values, links.ARCHITECTURE_DEFAULTS)
    assert text == "tab=architecture&depth=110&twin=true"  # defaults left out, a fixed order
    from urllib.parse import parse_qsl

    assert links.parse(dict(parse_qsl(text)), SHIPPED).architecture == values


def test_a_link_opens_the_train_tabs_degradation_view_and_nothing_else():
    assert links.parse({"tab": "train", "show": "degradation"}, []).show == "degradation"
    view = links.parse({"tab": "classify", "show": "degradation"}, [])
    assert view.show is None and "show=degradation" in view.notice()
    assert links.parse({"tab": "train", "show": "curves"}, []).show is None
