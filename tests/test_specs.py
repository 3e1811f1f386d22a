"""Specs: validation messages, naming and the registry (no Keras here)."""

import json
import re

import pytest

from explorer.core.specs import MAX_DEPTH, REGISTRY, ResNetSpec, get_spec, make_spec, nearest_valid_depths


def test_depth_21_message_names_the_nearest_valid_depths():
    with pytest.raises(ValueError) as err:
        make_spec(21, 1)
    assert str(err.value) == "depth 21 is not 6n+2 for v1; the nearest valid depths are 20 and 26"


def test_v2_depth_30_suggests_29_and_38():
    with pytest.raises(ValueError, match=r"9n\+2 for v2.*29 and 38"):
        make_spec(30, 2)


def test_depth_below_the_smallest_suggests_one_depth():
    with pytest.raises(ValueError, match="the nearest valid depth is 8$"):
        make_spec(1, 1)


@pytest.mark.parametrize("kwargs, needle", [
    ({"depth": 0}, "depth must be positive"),
    ({"depth": -5}, "depth must be positive"),
    ({"depth": "-5"}, "depth must be positive"),
    ({"depth": 10**9}, "too large"),
    ({"depth": 20, "version": 3}, "version must be 1 or 2"),
    ({"depth": 20, "version": "x"}, "version must be 1 or 2"),
    ({"depth": "abc"}, "depth must be a whole number"),
    ({"depth": ""}, "depth must be a whole number"),
    ({"depth": None}, "depth must be a whole number"),
    ({"depth": 20.5}, "depth must be a whole number"),
    ({"depth": True}, "depth must be a whole number"),
    ({"depth": 20, "family": "imagenet"}, "not an ImageNet ResNet.*18 and 34"),
    ({"depth": 18, "version": 2, "family": "imagenet"}, "version 1 only"),
    ({"depth": 20, "family": "alexnet"}, "family must be one of cifar, imagenet"),
    ({"depth": 20, "shortcut": "dense"}, "shortcut must be one of projection, zeropad"),
    ({"depth": 20, "num_classes": 0}, "num_classes must be between"),
])
def test_invalid_specs_raise_value_error(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        make_spec(**kwargs)


@pytest.mark.parametrize("depth, version", [(MAX_DEPTH + 1, 1), (2006, 1), (2003, 2), (10**6 + 2, 1)])
def test_depths_above_the_limit_are_refused(depth, version):
    with pytest.raises(ValueError, match=f"too large: at most {MAX_DEPTH}"):
        make_spec(depth, version)


def test_suggestions_never_exceed_the_limit():
    assert all(d <= MAX_DEPTH for d in nearest_valid_depths(MAX_DEPTH - 1, 1))
    assert all(d <= MAX_DEPTH for d in nearest_valid_depths(MAX_DEPTH - 1, 2))


def test_loose_user_input_is_normalized():
    assert make_spec(" 56 ", "v1") == get_spec("resnet56_v1")
    assert make_spec(56.0, 1.0) == get_spec("resnet56_v1")
    assert make_spec(50, family="imagenet") == get_spec("resnet50")
    assert make_spec(50, family="imagenet").num_classes == 1000


def test_infinite_depth_is_a_value_error():
    with pytest.raises(ValueError):
        make_spec(float("inf"), 1)


@pytest.mark.parametrize("depth", [10**400, -(10**400), str(10**400), 1e300])
def test_huge_depths_are_a_short_value_error(depth):
    # a JSON big-int from the API once escaped as OverflowError, a traceback
    with pytest.raises(ValueError) as err:
        make_spec(depth, 1)
    assert len(str(err.value)) < 200


def test_whole_number_refuses_an_int_too_large_for_a_float():
    from explorer.core.specs import whole_number

    with pytest.raises(ValueError, match="from 1 to 2000"):
        whole_number(10**400, "depth", 1, 2000)


def test_residual_false_as_text_is_not_read_as_true():
    try:
        spec = make_spec(20, 1, residual="false")
    except ValueError:
        return
    assert spec.residual is False


def test_names_and_slugs():
    spec = ResNetSpec(56, 1)
    assert (spec.name, spec.slug) == ("ResNet-56 v1", "resnet56_v1")
    assert (spec.twin().name, spec.twin().slug) == ("Plain-56 v1", "plain56_v1")
    assert get_spec("resnet50").name == "ResNet-50"
    assert get_spec("resnet20_v1_zeropad").slug == "resnet20_v1_zeropad"


def test_twin_flips_residual_only():
    for spec in REGISTRY.values():
        twin = spec.twin()
        assert twin.residual is not spec.residual
        assert twin.twin() == spec
        assert {**twin.to_config(), "residual": spec.residual} == spec.to_config()
    assert get_spec("resnet20_v1").twin() == get_spec("plain20_v1")
    assert get_spec("plain29_v2").twin() == get_spec("resnet29_v2")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_config_round_trip(name):
    spec = REGISTRY[name]
    config = spec.to_config()
    assert ResNetSpec.from_config(config) == spec
    assert ResNetSpec.from_config(json.loads(json.dumps(config))) == spec


def test_from_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown spec fields"):
        ResNetSpec.from_config({"depth": 20, "width": 2})


def test_spec_constructor_validates():
    with pytest.raises(ValueError, match="residual must be true or false"):
        ResNetSpec(20, residual=1)
    with pytest.raises(ValueError, match="6n\\+2"):
        ResNetSpec(22, 1)


def test_registry_names_are_their_unique_slugs():
    slugs = [spec.slug for spec in REGISTRY.values()]
    assert list(REGISTRY) == slugs
    assert len(set(slugs)) == len(slugs)
    assert len({spec.name + spec.shortcut for spec in REGISTRY.values()}) == len(REGISTRY)
    assert all(re.fullmatch(r"[a-z0-9_]+", slug) for slug in slugs)


def test_get_spec_unknown_name():
    with pytest.raises(ValueError, match="unknown model 'resnet7'"):
        get_spec("resnet7")
