"""Small checks of a request's values, each written once: a value out of a set of choices, a
checkpoint file that is not there, and a checkpoint's cache key.

Every check raises `ValueError` with a message a user can act on (the page shows it as it
is), and returns what it checked, so a caller reads `kind = one_of(kind, KINDS, "overlay")`.
"""

from __future__ import annotations

from pathlib import Path


def one_of(value, choices, name: str, described: str | None = None):
    """`value` if it is one of `choices`; raises ValueError naming them otherwise.

    Args:
        value: what a request gave, of any type (an unhashable or array value is refused,
            never compared element by element).
        choices: the values allowed, in the order the message lists them.
        name: what the value is, as the message says it ("overlay").
        described: the choices as the message says them, in place of the list of all of them
            (say "ResNet-20 v1's blocks, stage1_block1 to stage3_block3" for a long list).

    Returns:
        `value`, unchanged.

    Raises:
        ValueError: `value` is none of `choices`:
            "overlay must be one of gradient, lesion; got 'x'" (the value cut to 40 characters).

    Example:

    >>> one_of("flip", ("none", "flip"), "test-time augmentation")
    'flip'
    """
    try:
        hash(value)  # an array or a list is no choice (and an array has no one truth value)
        known = value in choices
    except (TypeError, ValueError):
        known = False
    if not known:
        listed = described if described is not None else ", ".join(str(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {listed}; got {str(value)[:40]!r}")
    return value


def checkpoint_file(path) -> Path:
    """The checkpoint file at `path`, if there is one.

    Args:
        path: a `.keras` file's path (str or Path).

    Returns:
        `path` as a `Path`.

    Raises:
        ValueError: no file is at `path`: "no checkpoint at NAME" (the file's name only: a
            server's folders are not a visitor's business).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path.name}")
    return path


def file_stamp(path) -> tuple[str, int]:
    """A checkpoint's cache key: its path and modification time, so a file written again (a
    job's next epoch) is a new key.

    Args:
        path: a `.keras` file's path (str or Path).

    Returns:
        (the path as text, its modification time in nanoseconds).

    Raises:
        ValueError: no file is at `path` (see `checkpoint_file`).
    """
    path = checkpoint_file(path)
    return str(path), path.stat().st_mtime_ns
