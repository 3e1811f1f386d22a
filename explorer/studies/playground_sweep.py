"""The playground's depth sweep: He et al.'s figure 1 on points in the plane. At each depth the
plain net and its residual twin train the same budget of steps from the same weights on the
same batches; the final training loss against depth says whether, at these settings, the
plain net falls behind as it gets deeper. `sweep_reading` says what the numbers show, and
only that: one seed, one budget, these settings.

One compiled program serves every depth (the nets are built at the deepest depth and run their
first blocks, `PairTrainer.use_blocks`), so a sweep compiles once, not once a depth.
"""

from __future__ import annotations

import math
import time

from explorer.core.numbers import magnitude
from explorer.core.playground_settings import MAX_SWEEP_STEPS, PlaygroundSettings, read_depths, read_steps
from explorer.studies.playground import NETS, PairTrainer

DEFAULT_DEPTHS = (2, 4, 8, 16, 32, 64)
DEFAULT_SWEEP_STEPS = 300
# The plain net is behind at a depth when its final training loss is above the residual net's
# by more than this share of the residual's, and by more than `BEHIND_BY` in absolute terms
# (two nets that both fit the points, at losses of 0.010 and 0.013, are not apart)
BEHIND_SHARE = 0.1
BEHIND_BY = 0.02
ROW_KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "batch_loss")


def depth_sweep(settings: PlaygroundSettings, depths=DEFAULT_DEPTHS, steps=DEFAULT_SWEEP_STEPS,
                progress=None) -> dict:
    """Trains the twins `steps` steps at each depth and keeps where they ended.

    Args:
        settings: everything but the depth (its `blocks` is ignored).
        depths: blocks per net at each point of the sweep (text "2,4,8" or a list; see
            `playground_settings.read_depths`).
        steps: training steps at each depth, 1 to `MAX_SWEEP_STEPS`.
        progress: optional `progress(fraction, text)` callback, called before each depth.

    Returns:
        {"settings" (a dict, `blocks` the deepest), "steps", "depths", "rows", "seconds"}: a row
        per depth and net, {"blocks", "net" ("plain" or "residual"), "train_loss", "test_loss",
        "train_accuracy", "test_accuracy" (inference mode, the whole splits), "batch_loss"
        (mean of the last steps' batch losses; see `PairTrainer.snapshot`), "steps_per_s"
        (the pair's)}.

    Raises:
        ValueError: a depth or the steps are malformed or out of range.
    """
    depths = read_depths(depths)
    steps = read_steps(steps, MAX_SWEEP_STEPS)
    report = progress or (lambda fraction, text: None)
    start = time.perf_counter()
    report(0.0, f"building and compiling the {max(depths)}-block pair")
    trainer = PairTrainer(settings.replace(blocks=max(depths)))
    rows = []
    for i, depth in enumerate(depths):
        report(i / len(depths), f"{depth} blocks: {steps} steps of both nets")
        trainer.use_blocks(depth)
        trainer.run(max(steps - 10, 0))
        snap = trainer.run(steps - max(steps - 10, 0))  # batch_loss: the mean of the last 10 steps
        for net in NETS:
            rows.append({"blocks": depth, "net": net, **{key: snap[net][key] for key in ROW_KEYS},
                         "steps_per_s": round(snap["steps_per_s"], 1)})
    report(1.0, "done")
    return {"settings": trainer.settings.replace(blocks=max(depths)).to_dict(), "steps": steps,
            "depths": depths, "rows": rows, "seconds": round(time.perf_counter() - start, 2)}


def losses_by_depth(result: dict, key: str = "train_loss") -> dict:
    """{depth: (plain, residual)} of a sweep's `key`."""
    table = {}
    for row in result["rows"]:
        table.setdefault(row["blocks"], {})[row["net"]] = row[key]
    return {depth: (nets["plain"], nets["residual"]) for depth, nets in table.items()}


def behind(first: float, second: float) -> bool:
    """Whether a net whose loss is `first` is behind one whose loss is `second` (a diverged
    net, NaN, is behind a finite one)."""
    if math.isnan(first):
        return not math.isnan(second)
    return first > second + max(BEHIND_BY, BEHIND_SHARE * second)


def falls_behind_from(result: dict) -> int | None:
    """The smallest depth from which the plain net is behind (`behind`) at every deeper depth
    measured, or None when it is not behind at the deepest."""
    found = None
    for depth, (plain, residual) in sorted(losses_by_depth(result).items(), reverse=True):
        if not behind(plain, residual):
            break
        found = depth
    return found


def sweep_reading(result: dict) -> str:
    """What a sweep measured, in words: from which depth on the plain net's final training loss
    stays above the residual net's (if it does), how far apart they end at the deepest depth,
    and whether the residual net was ever the one behind. It names the settings and never
    generalises past them."""
    table = losses_by_depth(result)
    settings = result["settings"]
    depths = sorted(table)
    deepest = depths[-1]
    plain, residual = table[deepest]
    setup = (f"{settings['data']} points, width {settings['width']}, {settings['norm']} norm, "
             f"{settings['optimizer']} at {settings['learning_rate']:g}, {result['steps']} steps a depth, "
             f"seed {settings['seed']}")
    text = [f"**What the sweep measured** ({setup}; final training loss, the whole training set):"]
    start = falls_behind_from(result)
    if start is None:
        text.append(f"at these settings the plain net did not fall behind: at {deepest} blocks it ends at "
                    f"{_loss(plain)} against the residual net's {_loss(residual)}.")
    else:
        shallower = [d for d in depths if d < start]
        before = (f" (up to {shallower[-1]} blocks the two end within {BEHIND_BY} or {BEHIND_SHARE:.0%} of "
                  "each other, whichever is more, or the plain net ahead)" if shallower
                  else " (it is behind at every depth measured)")
        text.append(f"from **{start} blocks** on, the plain net's training loss stays above its residual "
                    f"twin's" + before
                    + f"; at {deepest} blocks it ends at {_loss(plain)} against {_loss(residual)}"
                    + (f", {magnitude(plain / residual)} times the residual net's." if residual > 0
                       and not math.isnan(plain) else "."))
    text.append(_plain_alone(table))
    reversed_ = [d for d in depths if behind(table[d][1], table[d][0])]
    if reversed_:
        text.append("The residual net was the one behind at " + ", ".join(map(str, reversed_)) + " blocks.")
    text.append("One seed and one budget: another seed, more steps or other settings may move the depth.")
    return " ".join(text)


def plain_rises_from(table: dict) -> int | None:
    """The smallest depth from which the plain net's own training loss is behind (`behind`) its
    best at the shallower depths, at that depth and every deeper one; None if there is none.

    Args:
        table: {depth: (plain loss, residual loss)} (`losses_by_depth`).
    """
    depths = sorted(table)
    for k, depth in enumerate(depths[1:], start=1):
        shallower = [table[d][0] for d in depths[:k] if not math.isnan(table[d][0])]
        if shallower and all(behind(table[d][0], min(shallower)) for d in depths[k:]):
            return depth
    return None


def _plain_alone(table: dict) -> str:
    """Whether the plain net's own training loss rises with depth (`plain_rises_from`)."""
    rise = plain_rises_from(table)
    if rise is None:
        return ("The plain net's own training loss did not rise with depth here: from no depth on does "
                "every deeper one end above its best at fewer blocks.")
    best = min((d for d in table if d < rise and not math.isnan(table[d][0])), key=lambda d: table[d][0])
    return (f"The plain net's own training loss rises with depth: from {rise} blocks on it is above its "
            f"best at fewer blocks ({_loss(table[best][0])} at {best}), so the deeper plain net fits its "
            "training points worse, not better.")


def _loss(value: float) -> str:
    return "NaN (diverged)" if math.isnan(value) else f"{value:.3f}"
