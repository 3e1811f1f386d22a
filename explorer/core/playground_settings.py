"""What a playground run may ask for: its points, its two nets and their training, each value
with one named bound, read from loose input (text from a page, a link or the command line) and
checked before anything is built.

`PlaygroundSettings` is frozen and valid on construction (as `specs.ResNetSpec` is); a value
out of its bounds is refused with a `ValueError` that names the value and the bounds, which
the command line turns into exit status 2 and the page into a message.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from explorer.core.checks import one_of
from explorer.core.specs import MAX_SEED, is_whole, whole_number

DATA_SETS = ("spiral", "circles", "xor", "moons", "gaussian")  # the TensorFlow Playground's, and moons
FEATURES = ("x", "y", "x2", "y2", "xy")  # what the stem may see of a point (x2: x², xy: x·y)
NORMS = ("none", "batch", "layer")  # the normalisation after each of a block's two dense layers
INITS = ("default", "zero")  # zero: each branch's last layer starts at zero (Goyal et al. 2017)
OPTIMIZERS = ("sgd", "adam")  # sgd: with momentum `SGD_MOMENTUM`
SGD_MOMENTUM = 0.9
MIN_BLOCKS, MAX_BLOCKS = 1, 128  # blocks of each net (two dense layers each)
MIN_WIDTH, MAX_WIDTH = 8, 64  # units of every dense layer but the head
MAX_NOISE = 0.5  # standard deviation of the jitter added to each point, in units of the plane
MIN_POINTS, MAX_POINTS = 50, 2000  # points of a data set, training and test together
MIN_TRAIN_FRACTION, MAX_TRAIN_FRACTION = 0.1, 0.9  # the share of the points trained on
MIN_LEARNING_RATE, MAX_LEARNING_RATE = 1e-5, 1.0
MIN_BATCH, MAX_BATCH = 1, 512  # points per training step (and at most the training points)
MAX_STEPS = 100_000  # training steps of one run asked for at once (the command line's --steps)
MAX_SWEEP_STEPS = 5_000  # training steps at each depth of a depth sweep
MAX_SWEEP_DEPTHS = 8  # depths in one sweep: each is a pair of nets built, compiled and trained
MAX_PAGE_STEPS = 1_000  # steps one Step click (or API call) of the page trains
# a sweep the page runs trains at most this many block-steps (blocks x steps, summed over its
# depths): five times the default sweep's 126 x 300, about a minute here (the command line has no cap)
MAX_SWEEP_BLOCK_STEPS = 200_000


def number(value, name: str, low: float, high: float) -> float:
    """A finite number from a page or API value (int, float or text) within [low, high].

    Raises:
        ValueError: not a finite number, a bool, or out of range.
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(result) or not low <= result <= high:
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {str(value)[:40]!r}")
    return result


def feature_names(value) -> tuple[str, ...]:
    """The stem's features from text ("x,y,xy") or a sequence, in `FEATURES`' order.

    Raises:
        ValueError: a name is not one of `FEATURES`, or there is none.
    """
    if isinstance(value, str):
        value = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"features must name at least one of {', '.join(FEATURES)}, got {str(value)[:40]!r}")
    chosen = {one_of(name, FEATURES, "a feature") for name in value}
    return tuple(name for name in FEATURES if name in chosen)


@dataclass(frozen=True)
class PlaygroundSettings:
    """One playground: the points, the twins (identical but for the shortcut) and their training.

    Args:
        data: one of `DATA_SETS`.
        noise: jitter of each point, 0 to `MAX_NOISE` (a standard deviation; the plane's points
            lie within about [-1, 1]).
        points: points of the set, `MIN_POINTS` to `MAX_POINTS`.
        train_fraction: the share trained on, the rest tested on.
        features: what the stem sees of a point, a non-empty tuple out of `FEATURES`.
        blocks: blocks of each net, `MIN_BLOCKS` to `MAX_BLOCKS`.
        width: units of the stem's and the blocks' dense layers, `MIN_WIDTH` to `MAX_WIDTH`.
        norm: one of `NORMS`.
        init: one of `INITS`.
        optimizer: one of `OPTIMIZERS`.
        learning_rate: `MIN_LEARNING_RATE` to `MAX_LEARNING_RATE`.
        batch_size: points per step, `MIN_BATCH` to `MAX_BATCH` and at most the training points.
        seed: seed of the points, the split, the initial weights and the order of the batches.
    """

    data: str = "spiral"
    noise: float = 0.1
    points: int = 500
    train_fraction: float = 0.5
    features: tuple = ("x", "y")
    blocks: int = 8
    width: int = 16
    norm: str = "batch"
    init: str = "default"
    optimizer: str = "adam"
    learning_rate: float = 0.01
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self):
        one_of(self.data, DATA_SETS, "data")
        one_of(self.norm, NORMS, "norm")
        one_of(self.init, INITS, "init")
        one_of(self.optimizer, OPTIMIZERS, "optimizer")
        if not isinstance(self.features, tuple) or feature_names(self.features) != self.features:
            raise ValueError(f"features must be a tuple out of {', '.join(FEATURES)} in that order, "
                             f"got {str(self.features)[:40]!r}")
        for name, low, high in (("points", MIN_POINTS, MAX_POINTS), ("blocks", MIN_BLOCKS, MAX_BLOCKS),
                                ("width", MIN_WIDTH, MAX_WIDTH), ("batch_size", MIN_BATCH, MAX_BATCH),
                                ("seed", 0, MAX_SEED)):
            value = getattr(self, name)
            if not is_whole(value):
                raise ValueError(f"{name} must be a whole number, got {str(value)[:40]!r}")
            whole_number(value, name.replace("_", " "), low, high)
        for name, low, high in (("noise", 0.0, MAX_NOISE),
                                ("train_fraction", MIN_TRAIN_FRACTION, MAX_TRAIN_FRACTION),
                                ("learning_rate", MIN_LEARNING_RATE, MAX_LEARNING_RATE)):
            number(getattr(self, name), name.replace("_", " "), low, high)
        if self.batch_size > self.train_points:
            raise ValueError(f"batch size must be at most the {self.train_points} training points "
                             f"({self.points} points, {self.train_fraction:g} of them trained on), "
                             f"got {self.batch_size}")

    @property
    def train_points(self) -> int:
        """How many of the points are trained on (the rest are the test points)."""
        return train_count(self.points, self.train_fraction)

    def replace(self, **changes) -> PlaygroundSettings:
        """These settings with `changes` (checked as any settings are)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The settings as plain values (the features as a list), for JSON and links."""
        values = dataclasses.asdict(self)
        values["features"] = list(self.features)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> PlaygroundSettings:
        """Settings from a dict of loose values (`read_settings`; unknown keys refused)."""
        if not isinstance(values, dict):
            raise ValueError(f"playground settings must be a JSON object, got {type(values).__name__}")
        return read_settings(**values)


def train_count(points: int, train_fraction: float) -> int:
    """Training points of a set of `points` with `train_fraction` of them trained on (at least
    one point on each side of the split)."""
    return min(points - 1, max(1, round(points * train_fraction)))


_WHOLE = {"points": (MIN_POINTS, MAX_POINTS), "blocks": (MIN_BLOCKS, MAX_BLOCKS),
          "width": (MIN_WIDTH, MAX_WIDTH), "batch_size": (MIN_BATCH, MAX_BATCH), "seed": (0, MAX_SEED)}
_REAL = {"noise": (0.0, MAX_NOISE), "train_fraction": (MIN_TRAIN_FRACTION, MAX_TRAIN_FRACTION),
         "learning_rate": (MIN_LEARNING_RATE, MAX_LEARNING_RATE)}


def read_settings(**raw) -> PlaygroundSettings:
    """Settings from loose values (text from a link or the command line, numbers from a page):
    whole numbers and numbers read, choices checked, features from text such as "x,y,xy";
    what is not given keeps its default.

    Raises:
        ValueError: a value is malformed or out of its bounds (see `PlaygroundSettings`).
    """
    values = {}
    for name, value in raw.items():
        if name in _WHOLE:
            values[name] = whole_number(value, name.replace("_", " "), *_WHOLE[name])
        elif name in _REAL:
            values[name] = number(value, name.replace("_", " "), *_REAL[name])
        elif name == "features":
            values[name] = feature_names(value)
        elif name in ("data", "norm", "init", "optimizer"):
            values[name] = str(value).strip().lower() if isinstance(value, str) else value
        else:
            raise ValueError(f"unknown playground setting {name!r}")
    return PlaygroundSettings(**values)


def read_steps(steps, most: int = MAX_STEPS) -> int:
    """Training steps asked for (int, float or text), 1 to `most`."""
    return whole_number(steps, "steps", 1, most)


def read_depths(depths) -> list[int]:
    """The depths of a sweep: text separated by commas ("2,4,8,16") or a list, 1 to
    `MAX_SWEEP_DEPTHS` of them, each `MIN_BLOCKS` to `MAX_BLOCKS` blocks, kept in order, once.

    Raises:
        ValueError: a depth is malformed or out of range, or there are none or too many.
    """
    if not isinstance(depths, (str, list, tuple)):
        raise ValueError(f'depths must be text such as "2,4,8" or a list, got {str(depths)[:40]!r}')
    parts = str(depths).replace(";", ",").split(",") if isinstance(depths, str) else list(depths)
    values = [whole_number(part, "blocks", MIN_BLOCKS, MAX_BLOCKS) for part in parts if str(part).strip()]
    values = list(dict.fromkeys(values))
    if not 1 <= len(values) <= MAX_SWEEP_DEPTHS:
        raise ValueError(f"give between 1 and {MAX_SWEEP_DEPTHS} depths (blocks), separated by commas")
    return values


def check_sweep_budget(depths: list[int], steps: int) -> None:
    """Refuses a page's sweep that would train more than `MAX_SWEEP_BLOCK_STEPS` block-steps.

    Raises:
        ValueError: over the budget, saying by how much and what to lower.
    """
    cost = sum(depths) * steps
    if cost > MAX_SWEEP_BLOCK_STEPS:
        raise ValueError(f"this sweep trains {sum(depths)} blocks x {steps} steps = {cost:,} block-steps, "
                         f"more than the {MAX_SWEEP_BLOCK_STEPS:,} a sweep may here: fewer or shallower "
                         "depths, or fewer steps (the command line has no cap)")
