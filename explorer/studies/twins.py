"""The gradient lab's twins: a residual net and its plain twin with the same initial weights,
built once per depth and re-initialised for each seed.
"""

from __future__ import annotations

import functools
import random
import threading
from dataclasses import dataclass

import keras
from keras.src.initializers.random_initializers import RandomInitializer

from explorer.core.specs import make_spec
from explorer.nets.models import BUILD_LOCK, build_model


def twins(depth: int, version: int, seed: int = 0, shortcut: str = "projection"):
    """A CIFAR-10 residual net and its plain twin, with the same initial weights.

    The pair of a depth is built once and kept (`kept_twins`); a new seed re-initialises its
    weights from the seeded initializers (`_reinitialize`) instead of building two nets again
    (building ResNet-110's pair took 5.7-6.6 s, most of it creating 1,316 variables). The
    weights equal those of a pair built afresh with that seed (tests/test_probes.py). The pair
    is shared: callers hold `TWINS_LOCK` from this call to their last pass on it.

    Args:
        depth: weighted layers (6n+2 for v1, 9n+2 for v2).
        version: 1 or 2.
        seed: random seed of the initial weights.
        shortcut: "projection" or "zeropad", where shapes change.

    Returns:
        (residual model, plain model), both built `ResNet`s.

    Raises:
        ValueError: `depth`, `version` or `shortcut` is not valid (see `specs.make_spec`).
    """
    kept = kept_twins(depth, version, shortcut)
    if kept.seed != seed:
        _reinitialize(kept, seed)
    return kept.residual, kept.plain


TWINS_LOCK = threading.RLock()  # a kept pair holds one seed's weights at a time


@dataclass
class _Twins:
    residual: object
    plain: object
    seed: int
    draws: list  # (initializer, its variable, the index of its seed among the build's draws)
    shared: list  # (plain variable, residual variable): the plain twin's copy of each weight


def _build_twins(spec, seed: int):
    """A pair built afresh: the residual net with `seed`, the plain twin carrying its weights."""
    with BUILD_LOCK:  # the same weights for a seed, whatever other threads build meanwhile
        keras.utils.set_random_seed(seed)
        residual = build_model(spec)
        plain = build_model(spec.twin())
    source = {v.path.split("/", 1)[1]: v for v in residual.weights}
    shared = [(variable, source[variable.path.split("/", 1)[1]]) for variable in plain.weights]
    for variable, value in shared:
        variable.assign(value)
    return residual, plain, shared


@functools.lru_cache(maxsize=4)
def kept_twins(depth: int, version: int, shortcut: str) -> _Twins:
    """The pair of a depth, built once with seed 0, with what re-initialising it needs.

    Keras draws each random initializer's seed from Python's `random` when the layer is made
    (`keras.src.random.make_default_seed`), so a seeded build's draws say which initializer
    made which weight: matching them once gives the order to replay for any other seed.
    """
    spec = make_spec(depth, version, shortcut=shortcut)
    residual, plain, shared = _build_twins(spec, 0)
    random.seed(0)  # as keras.utils.set_random_seed(0) seeded it before the build
    initializers = [(value, getattr(layer, name[: -len("_initializer")]))
                    for layer in residual._flatten_layers() for name, value in vars(layer).items()
                    if isinstance(value, RandomInitializer) and name.endswith("_initializer")]
    wanted = {initializer.seed for initializer, _ in initializers}
    index, draws = {}, 0
    while len(index) < len(wanted) and draws < 50 * len(wanted) + 100:
        value = random.randint(1, int(1e9))  # the draw `make_default_seed` makes
        if value in wanted and value not in index:
            index[value] = draws
        draws += 1
    if len(index) < len(wanted):
        raise RuntimeError(f"cannot replay the initial weights of {spec.name}: "
                           "the build drew its seeds otherwise")
    plan = [(initializer, variable, index[initializer.seed]) for initializer, variable in initializers]
    return _Twins(residual, plain, 0, plan, shared)


def _reinitialize(kept: _Twins, seed: int) -> None:
    """The kept pair's weights as a build with `seed` would have made them."""
    keras.utils.set_random_seed(seed)
    draws = [random.randint(1, int(1e9)) for _ in range(max(i for _, _, i in kept.draws) + 1)]
    for initializer, variable, i in kept.draws:
        initializer.seed = draws[i]
        variable.assign(initializer(variable.shape, dtype=variable.dtype))
    for variable, value in kept.shared:
        variable.assign(value)
    kept.seed = seed
