"""What one lesion, landscape, path-length, signal or shattered-gradient request may ask for:
the bounds of its values, and its cost against this host's budget, both checked before any work.

A request is sized in image-evaluations at ResNet-56 v1's cost per image, so a deeper net
counts for more; over the budget, it is refused with a `ValueError` that says by how much
and what to lower. The budgets protect a shared host (the app); the command line runs on the
user's own machine and has never applied them. The bounds of the values hold for both.
"""

from __future__ import annotations

import math

from explorer.core.costs import summarize
from explorer.core.plans import plan
from explorer.core.runtime import has_gpu
from explorer.core.specs import MAX_DEPTH, MAX_SEED, MAX_VERSION, make_spec, whole_number

MAX_LESION_SAMPLES = 100_000  # test images one lesion study runs on
MIN_LANDSCAPE_STEPS, MAX_LANDSCAPE_STEPS = 3, 51  # grid points per axis of the 2-D plane
MAX_LANDSCAPE_SAMPLES = 10_000  # test images each landscape loss is averaged over
MAX_LANDSCAPE_SPAN = 5.0  # how far out a landscape goes, in filter norms


def _bounded(value, name: str, low: int, high: int) -> int:
    """`value` (int, float or text) as a whole number within [low, high], in the words these
    studies have always used ("steps must be between 3 and 51, got 1")."""
    try:
        return whole_number(value, name, low, high)
    except ValueError:
        raise ValueError(f"{name} must be between {low} and {high}, got {str(value)[:40]}") from None


def lesion_samples(samples) -> int:
    """The test images of a lesion study (int, float or text), 1 to `MAX_LESION_SAMPLES`.

    Raises:
        ValueError: `samples` is malformed or out of range.
    """
    return _bounded(samples, "samples", 1, MAX_LESION_SAMPLES)


def landscape_values(steps, samples, span, seed) -> tuple[int, int, float, int]:
    """A landscape request's raw values (int, float or text), read and checked.

    Args:
        steps: grid points per axis, `MIN_LANDSCAPE_STEPS` to `MAX_LANDSCAPE_STEPS`.
        samples: test images, 1 to `MAX_LANDSCAPE_SAMPLES`.
        span: how far out, in (0, `MAX_LANDSCAPE_SPAN`] filter norms.
        seed: seed of the random directions, 0 to `specs.MAX_SEED`.

    Returns:
        (steps, samples, span, seed) as int, int, float and int.

    Raises:
        ValueError: a value is malformed or out of range.
    """
    steps = _bounded(steps, "steps", MIN_LANDSCAPE_STEPS, MAX_LANDSCAPE_STEPS)
    samples = _bounded(samples, "samples", 1, MAX_LANDSCAPE_SAMPLES)
    try:
        if not 0 < float(span) <= MAX_LANDSCAPE_SPAN:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"span must be in (0, {MAX_LANDSCAPE_SPAN:g}], got {str(span)[:40]}") from None
    return steps, samples, float(span), whole_number(seed, "seed", 0, MAX_SEED)


# ----------------------------------------------------------------------------- budgets


# Images x loss evaluations one landscape request may cost: 4 times the CPU default (9x9
# plane and 17-point slice on 128 images, for two checkpoints), 20 times that on a GPU.
LANDSCAPE_BUDGET_CPU = 4 * (9 * 9 + 17) * 128 * 2


# Image-evaluations one lesion request may cost: two ResNet-56s (28 evaluations each, the
# intact net and 27 deletions) on 2,000 images, times 4; 20 times that on a GPU.
LESION_BUDGET_CPU = 4 * 28 * 2000 * 2

# Budgets count images at ResNet-56 v1's cost (multiply-adds per image, `costs.summarize`):
# a deeper net's images count for more, a shallower one's as one.
REFERENCE_FLOPS = 125_747_840


def relative_cost(specs) -> float:
    """The per-image cost of the costliest of `specs` against ResNet-56 v1's, at least 1."""
    return max([1.0] + [summarize(spec)["totals"]["flops"] / REFERENCE_FLOPS for spec in specs])


def check_budget(work: float, budget: float, request: str, advice: str) -> None:
    """Refuses a request whose work is over this host's budget: `budget` on a CPU, 20 times
    that on a GPU.

    Args:
        work: the request's work, in the budget's units.
        budget: the CPU budget.
        request: what was asked, for the message ("9x9 steps on 128 images ...").
        advice: what to ask for instead ("use fewer images").

    Raises:
        ValueError: the work is over budget.
    """
    budget *= 20 if has_gpu() else 1
    if work > budget:
        raise ValueError(f"{request} is {work / budget:.1f} times what this host allows per request; "
                         f"{advice}")


def check_landscape_budget(steps: int, samples: int, checkpoints: int = 1, specs=()) -> None:
    """Refuses a landscape request that would hold the CPU for many minutes.

    The budget is `LANDSCAPE_BUDGET_CPU` image-evaluations at ResNet-56's cost, 20 times
    that on a GPU.

    Args:
        steps: points per axis of the 2-D plane, as for `loss_landscape`.
        samples: test images each evaluation runs on.
        checkpoints: how many checkpoints the request covers.
        specs: the checkpoints' specs (see `models.checkpoint_spec`); nets deeper than
            ResNet-56 cost more per image.

    Raises:
        ValueError: steps^2 + (2 steps - 1) evaluations x samples x checkpoints, weighed by
            the costliest net, is over budget.
    """
    work = (int(steps) ** 2 + 2 * int(steps) - 1) * int(samples) * int(checkpoints) * relative_cost(specs)
    check_budget(work, LANDSCAPE_BUDGET_CPU, f"{steps}x{steps} steps on {samples} images for {checkpoints} "
           "checkpoint(s)", "use fewer steps or images")


def check_lesion_budget(samples: int, specs) -> None:
    """Refuses a lesion request that would hold the CPU for many minutes: one evaluation of
    `samples` images per block, plus the intact net, per checkpoint, weighed by the net's
    cost per image (budget `LESION_BUDGET_CPU`, 20 times that on a GPU).

    Args:
        samples: test images each evaluation runs on.
        specs: the checkpoints' specs (see `models.checkpoint_spec`).

    Raises:
        ValueError: the request is over budget.
    """
    work = sum((len(plan(spec).blocks) + 1) * int(samples) * relative_cost([spec]) for spec in specs)
    check_budget(work, LESION_BUDGET_CPU,
                 f"deleting each block of {' and '.join(spec.name for spec in specs)} on {samples} images",
                 "use fewer images")


def default_landscape_steps() -> int:
    """Grid steps per axis a user waits about a minute for: 9x9 on a CPU, 25x25 on a GPU."""
    return 25 if has_gpu() else 9


MAX_SWEEP_DEPTHS = 8  # depths in one sweep: each is a pair of nets built and probed


def sweep_depths(version, depths) -> tuple[int, list[int]]:
    """Reads and checks the raw values of a depth sweep, before any work.

    Args:
        version: 1 or 2, as an int, a float or text.
        depths: the depths as text separated by commas or semicolons ("20, 56; 110"), or a
            list; 1 to `MAX_SWEEP_DEPTHS` of them, each valid for `version`.

    Returns:
        (version, depths) as ints.

    Raises:
        ValueError: a value is malformed or out of range, or there are no depths or too many.
    """
    version = whole_number(version, "version", 1, MAX_VERSION)
    if not isinstance(depths, (str, list, tuple)):  # None or a number from the API: list() would fail
        raise ValueError(f'depths must be text such as "20, 56" or a list, got {str(depths)[:40]!r}')
    parts = str(depths).replace(";", ",").split(",") if isinstance(depths, str) else list(depths)
    values = [whole_number(part, "depth", 1, MAX_DEPTH) for part in parts if str(part).strip()]
    if not 1 <= len(values) <= MAX_SWEEP_DEPTHS:
        raise ValueError(f"give between 1 and {MAX_SWEEP_DEPTHS} depths, separated by commas")
    for depth in values:
        make_spec(depth, version)
    return version, values


# ----------------------------------------------------------------------------- paths and signals

MAX_PATH_SAMPLES = 512  # test images the gradient of each path length is averaged over
MAX_PATH_SUBSETS = 20  # passes per path length (each image a random path of its own in each)
MAX_SIGNAL_SAMPLES = 512  # images a signal propagation plot's statistics are taken over
MIN_LINE_POINTS, MAX_LINE_POINTS = 16, 1024  # points along the line of inputs (shattered gradients)
# Images x layers one recorded forward and backward pass may hold: the tape keeps every layer's
# activations of every image (256 points through 128 layers, about 5 GB; ResNet-1202 takes 27)
MAX_TAPE_IMAGE_LAYERS = 32_768
# Image passes (forward and backward) at ResNet-56's cost one request may cost: 4 times the CPU
# default of each (ResNet-56's 28 path lengths on 64 images; ResNet-20, 56 and 110 and their plain
# twins on 256 points); 20 times that on a GPU. A signal plot is one forward pass per net.
PATHS_BUDGET_CPU = 4 * 28 * 64
SHATTERED_BUDGET_CPU = 4 * 2 * 256 * 4
SIGNALS_BUDGET_CPU = 4 * 2 * 512


def path_sets(blocks: int, subsets: int) -> int:
    """How many passes a path-length analysis makes: `subsets` per length, or C(n, k) for a
    length with fewer sets of branches."""
    return sum(min(subsets, math.comb(blocks, k)) for k in range(blocks + 1))


def _check_tape(images: int, spec, what: str) -> None:
    if images * spec.depth > MAX_TAPE_IMAGE_LAYERS:
        raise ValueError(f"{images} {what} through {spec.depth} layers would not fit in memory (the "
                         f"gradient's tape holds every layer's activations): at most "
                         f"{MAX_TAPE_IMAGE_LAYERS // spec.depth} {what} for {spec.name}")


def check_paths_request(samples, subsets, spec, budget: bool = True) -> tuple[int, int]:
    """Reads and checks a path-length request before any work.

    Args:
        samples: test images, 1 to `MAX_PATH_SAMPLES` (and `MAX_TAPE_IMAGE_LAYERS` / depth).
        subsets: passes per path length, 1 to `MAX_PATH_SUBSETS` (see `paths.path_lengths`).
        spec: the net's spec (see `models.checkpoint_spec`).
        budget: also refuse a request over this host's budget (`PATHS_BUDGET_CPU` passes at
            ResNet-56's cost, 20 times that on a GPU); False for the command line.

    Returns:
        (samples, subsets) as ints.

    Raises:
        ValueError: a value is malformed or out of range, or the request is over budget
            (ResNet-1202, say: 600 blocks, 601 passes at 22 times ResNet-56's cost).
    """
    samples = _bounded(samples, "samples", 1, MAX_PATH_SAMPLES)
    subsets = _bounded(subsets, "subsets", 1, MAX_PATH_SUBSETS)
    _check_tape(samples, spec, "images")
    if budget:
        sets = path_sets(len(plan(spec).blocks), subsets)
        check_budget(sets * samples * relative_cost([spec]), PATHS_BUDGET_CPU,
               f"{sets:,} passes through {spec.name} on {samples} images", "use fewer images "
               "or subsets, a shallower net, or the command line (python -m explorer paths)")
    return samples, subsets


def check_signals_request(samples, specs, budget: bool = True) -> int:
    """Reads and checks a signal propagation request (one forward pass per net) before any work.

    Args:
        samples: images, 1 to `MAX_SIGNAL_SAMPLES`.
        specs: the specs of the nets measured.
        budget: also refuse a request over `SIGNALS_BUDGET_CPU` image passes at ResNet-56's
            cost (20 times that on a GPU); False for the command line.

    Raises:
        ValueError: `samples` is malformed or out of range, or the request is over budget.
    """
    samples = _bounded(samples, "samples", 1, MAX_SIGNAL_SAMPLES)
    if budget:
        check_budget(samples * sum(relative_cost([spec]) for spec in specs), SIGNALS_BUDGET_CPU,
               f"{samples} images through {' and '.join(spec.name for spec in specs)}", "use fewer images")
    return samples


def check_shattered_request(points, specs, budget: bool = True) -> int:
    """Reads and checks a shattered-gradient request (one forward and backward pass of the
    line's points per net) before any work.

    Args:
        points: points along the line, `MIN_LINE_POINTS` to `MAX_LINE_POINTS` (and
            `MAX_TAPE_IMAGE_LAYERS` / depth of the deepest net).
        specs: the specs of the nets measured (plain and residual at each depth).
        budget: also refuse a request over `SHATTERED_BUDGET_CPU` image passes at ResNet-56's
            cost (20 times that on a GPU); False for the command line.

    Raises:
        ValueError: `points` is malformed or out of range, or the request is over budget.
    """
    points = _bounded(points, "points", MIN_LINE_POINTS, MAX_LINE_POINTS)
    _check_tape(points, max(specs, key=lambda spec: spec.depth), "points")
    if budget:
        check_budget(points * sum(relative_cost([spec]) for spec in specs), SHATTERED_BUDGET_CPU,
               f"{points} points through {len(specs)} nets", "use fewer points or shallower nets")
    return points


# ----------------------------------------------------------------------------- inside and read-out

# Training images a read-out is fitted on: at least a few per class (a fifth of them choose the
# ridge penalty), at most CIFAR-10's 50,000; test images it is scored on, at most the 10,000.
MIN_READOUT_TRAIN, MAX_READOUT_TRAIN = 10, 50_000
MAX_READOUT_TEST = 10_000
READOUT_TRAIN, READOUT_TEST = 5_000, 5_000  # the defaults, and the stored probes' settings
# Image passes one live read-out may cost at ResNet-56's cost: 2 times the default (about a
# minute for ResNet-56 on 2 cores); 20 times that on a GPU.
READOUT_BUDGET_CPU = 2 * (READOUT_TRAIN + READOUT_TEST)
MAX_INSIDE_CHANNELS = 16  # channel maps shown per tensor of a block (the most energetic first)
MAX_INSIDE_SAMPLES = 2_000  # test images the branch_ratio overlay averages a block's ratio over
MAX_INSIDE_GALLERY = 32  # test images one request of the Look inside tab's one-click choice fetches


def readout_images(train, test) -> tuple[int, int]:
    """A read-out request's image counts (int, float or text), read and checked.

    Args:
        train: training images the probes are fitted on, `MIN_READOUT_TRAIN` to `MAX_READOUT_TRAIN`.
        test: test images they are scored on, 1 to `MAX_READOUT_TEST`.

    Returns:
        (train, test) as ints.

    Raises:
        ValueError: a value is malformed or out of range.
    """
    return (_bounded(train, "training images", MIN_READOUT_TRAIN, MAX_READOUT_TRAIN),
            _bounded(test, "test images", 1, MAX_READOUT_TEST))


def check_readout_budget(train: int, test: int, specs) -> None:
    """Refuses a live read-out that would hold the CPU for minutes: one forward pass of
    `train` + `test` images per checkpoint, weighed by the net's cost per image (budget
    `READOUT_BUDGET_CPU`, 20 times that on a GPU).

    Raises:
        ValueError: the request is over budget.
    """
    work = sum((int(train) + int(test)) * relative_cost([spec]) for spec in specs)
    check_budget(work, READOUT_BUDGET_CPU, f"a read-out of {' and '.join(spec.name for spec in specs)} on "
                 f"{train} training and {test} test images", "use fewer images")
