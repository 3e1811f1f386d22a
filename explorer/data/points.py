"""The playground's points: five labelled sets in the plane (two classes, within about [-1, 1]
on each axis), jittered, split into training and test points, all from one seed; the features
the nets see of a point; the grid over the plane their decision boundary is drawn on.

NumPy only: the same seed gives the same points on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.core.checks import one_of
from explorer.core.playground_settings import DATA_SETS, feature_names, train_count

GRID_SIZE = 64  # the decision boundary's grid points per axis
GRID_EXTENT = 1.25  # the grid spans [-GRID_EXTENT, GRID_EXTENT] on both axes, a margin round the points


@dataclass(frozen=True)
class PointSet:
    """A set split in two: coordinates (n, 2) float32 and labels (n,) 0 or 1, int32."""

    name: str
    noise: float
    seed: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _spiral(count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two arms of 1.75 turns from the centre out to radius 1, the second turned half a turn
    (the TensorFlow Playground's spiral)."""
    label = np.arange(count) % 2
    share = np.empty(count)
    for k in (0, 1):
        share[label == k] = np.linspace(0.0, 1.0, int((label == k).sum()))
    angle = 1.75 * 2 * np.pi * share + np.pi * label
    return np.stack([share * np.sin(angle), share * np.cos(angle)], 1), label


def _circles(count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 inside radius 0.5, class 0 in the ring from 0.7 to 1."""
    label = np.arange(count) % 2
    radius = np.where(label == 1, rng.uniform(0.0, 0.5, count), rng.uniform(0.7, 1.0, count))
    angle = rng.uniform(0.0, 2 * np.pi, count)
    return np.stack([radius * np.sin(angle), radius * np.cos(angle)], 1), label


def _xor(count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Uniform over the square, kept 0.05 off the axes: class 1 in the quadrants where x and y
    share a sign, class 0 in the others, half the points each."""
    label = np.arange(count) % 2
    size = rng.uniform(0.05, 1.0, (count, 2))
    sign_x = rng.choice([-1.0, 1.0], count)
    sign_y = np.where(label == 1, sign_x, -sign_x)
    return size * np.stack([sign_x, sign_y], 1), label


def _moons(count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles (scikit-learn's make_moons), centred and scaled to [-1, 1]."""
    label = np.arange(count) % 2
    angle = rng.uniform(0.0, np.pi, count)
    x = np.where(label == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(label == 0, np.sin(angle), 0.5 - np.sin(angle))
    return np.stack([(x - 0.5) / 1.5, (y - 0.25) / 1.5], 1), label


def _gaussian(count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clusters of standard deviation 0.15: class 1 round (0.5, 0.5), class 0 round
    (-0.5, -0.5)."""
    label = np.arange(count) % 2
    centre = np.where(label[:, None] == 1, 0.5, -0.5)
    return centre + rng.normal(0.0, 0.15, (count, 2)), label


_MAKERS = {"spiral": _spiral, "circles": _circles, "xor": _xor, "moons": _moons, "gaussian": _gaussian}
assert tuple(_MAKERS) == DATA_SETS


def make_points(name: str, points: int, noise: float, train_fraction: float, seed: int) -> PointSet:
    """A labelled set in the plane, half of each class, jittered and split.

    Args:
        name: one of `playground_settings.DATA_SETS`.
        points: points in all (bounds checked by `PlaygroundSettings`).
        noise: standard deviation of the Gaussian jitter added to each point (the label is the
            point's before the jitter, so noise moves points across the boundary).
        train_fraction: the share of the points trained on (`train_count`), picked at random.
        seed: the seed of the points, the jitter and the split.

    Returns:
        A `PointSet`.

    Raises:
        ValueError: `name` is not one of the sets.
    """
    one_of(name, DATA_SETS, "data")
    rng = np.random.default_rng(seed)
    xy, label = _MAKERS[name](points, rng)
    xy = xy + rng.normal(0.0, 1.0, xy.shape) * noise
    order = rng.permutation(points)
    xy, label = xy[order].astype(np.float32), label[order].astype(np.int32)
    cut = train_count(points, train_fraction)
    return PointSet(name, float(noise), int(seed), xy[:cut], label[:cut], xy[cut:], label[cut:])


def features(xy: np.ndarray, names=("x", "y")) -> np.ndarray:
    """What a net sees of points (n, 2): the columns named (x, y, x², y², x·y), in `FEATURES`'
    order, float32 (n, len(names))."""
    x, y = xy[:, 0], xy[:, 1]
    columns = {"x": x, "y": y, "x2": x * x, "y2": y * y, "xy": x * y}
    return np.stack([columns[name] for name in feature_names(names)], 1).astype(np.float32)


def grid_axis(size: int = GRID_SIZE, extent: float = GRID_EXTENT) -> np.ndarray:
    """The grid's coordinates along either axis, ascending, float32 (size,)."""
    return np.linspace(-extent, extent, size, dtype=np.float32)


def grid_points(size: int = GRID_SIZE, extent: float = GRID_EXTENT) -> np.ndarray:
    """The grid's points (size * size, 2), row by row: point [i * size + j] is
    (x = axis[j], y = axis[i]), so values reshaped to (size, size) are an image with y rows."""
    axis = grid_axis(size, extent)
    x, y = np.meshgrid(axis, axis)
    return np.stack([x.ravel(), y.ravel()], 1)

