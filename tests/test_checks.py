"""The small checks written once (`core.checks`): a value out of a set of choices, a missing
checkpoint and a checkpoint's cache key."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from explorer.core.checks import checkpoint_file, file_stamp, one_of

CHOICES = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6, unique=True)


def test_one_of_returns_the_value_or_names_the_choices():
    assert one_of("flip", ("none", "flip"), "test-time augmentation") == "flip"
    with pytest.raises(ValueError, match=r"^overlay must be one of gradient, lesion; got 'ratio'$"):
        one_of("ratio", ("gradient", "lesion"), "overlay")
    with pytest.raises(ValueError, match=r"^block must be one of ResNet-8 v1's blocks, a to c; got 'x'$"):
        one_of("x", ["a", "b", "c"], "block", "ResNet-8 v1's blocks, a to c")
    with pytest.raises(ValueError, match="got '" + "y" * 40 + "'$"):  # a long value is cut short
        one_of("y" * 1000, ("a",), "name")


@pytest.mark.parametrize("value", [None, 1, ["flip"], {"flip": 1}, np.array(["flip"]), np.array(["a", "b"])])
def test_one_of_refuses_what_is_no_choice_whatever_its_type(value):
    with pytest.raises(ValueError, match="must be one of none, flip"):
        one_of(value, ("none", "flip"), "tta")


@given(CHOICES, st.data())
def test_one_of_returns_any_choice_unchanged(choices, data):
    value = data.draw(st.sampled_from(choices))
    assert one_of(value, tuple(choices), "x") is value


@given(CHOICES, st.one_of(st.text(max_size=50), st.integers(), st.none(), st.floats(allow_nan=False)))
def test_one_of_refuses_anything_else_naming_the_choices(choices, value):
    if value in choices:
        return
    with pytest.raises(ValueError) as err:
        one_of(value, choices, "thing")
    assert str(err.value).startswith(f"thing must be one of {', '.join(choices)}; got ")


def test_checkpoint_file_and_its_stamp(tmp_path):
    missing = tmp_path / "folder" / "no_such.keras"
    for check in (checkpoint_file, file_stamp):
        # the file's name only, never the server's folders
        with pytest.raises(ValueError, match=r"^no checkpoint at no_such\.keras$"):
            check(missing)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="no checkpoint at folder"):  # a folder is no checkpoint
        checkpoint_file(tmp_path / "folder")
    path = tmp_path / "m.keras"
    path.write_bytes(b"x")
    assert checkpoint_file(str(path)) == path
    key = file_stamp(path)
    assert key == (str(path), os.stat(path).st_mtime_ns) and file_stamp(str(path)) == key
    os.utime(path, ns=(key[1] + 10**9, key[1] + 10**9))  # written again: a new key
    assert file_stamp(path) != key and file_stamp(path)[0] == key[0]
