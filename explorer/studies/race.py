"""A race's verdict: which twin falls behind (the plain net, or its residual twin), by how
much, and whether that gap is larger than the run's own noise; read from the two jobs'
histories as `history.json` holds them (no net is run here).

The measure is training accuracy, the one the degradation problem is about (He et al. 2015:
a deep plain net's *training* error stays higher). A page's job logs the running mean of the
epoch so far (`callbacks.RunLog.log_step`); consecutive points of one epoch give the mean of
the batches between them. A race trains both nets on the same batches in the same order, so
the two means over the same steps form a pair; their differences over the latest epoch give
the gap (the difference of the epoch's running means, as the curves show it) and its standard
error (the batches' spread: the run's own noise). A gap over `MEASURABLE` standard errors is a
verdict; a smaller one is "too short to tell", and the reading says after how much training.

Why a v1 residual net's loss starts far above ln 10 (`starting_loss_note`), measured at
initialization on 128 CIFAR-10 training images, seed 0, the batch's own statistics (as in a
first training step): ResNet-56 v1's last block output has an RMS of 4.5 against plain-56's
0.68 (each block adds its batch-normalised branch to its input, so the sum grows block after
block), its scores a spread of 4.9 against 0.65, and its cross-entropy is 7.7 against 2.45
(ResNet-20 v1: 6.6). In v2 the sum grows as well (6.9) but the head's batch norm rescales it:
ResNet-56 v2 starts at 2.50, as its plain twin (2.52). The loss also holds the L2 weight
penalty, 0.41 for plain-56 v1 at initialization.
"""

from __future__ import annotations

import dataclasses
import math

MEASURABLE = 2.0  # standard errors: a gap smaller than this is within the run's own noise
MIN_PAIRS = 5  # paired stretches of one epoch needed for a spread
LN_CLASSES = math.log(10)  # a uniform guess among CIFAR-10's ten classes, in nats


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a race measured: `behind` is "plain", "residual" or "" (too short to tell)."""

    behind: str
    plain: str  # the plain net's label
    residual: str  # the residual net's label
    epoch: int  # the epoch compared (1 is the first)
    steps: int  # its batches both nets have logged
    plain_accuracy: float  # training accuracy over those batches (the epoch's running mean)
    residual_accuracy: float
    error: float  # the standard error of the gap (residual minus plain), from the paired batches
    test: tuple | None  # (plain, residual test accuracy, their epoch) at the last epoch both tested
    epochs_done: float  # how far the shorter run has trained, in epochs

    @property
    def gap(self) -> float:
        """Residual minus plain training accuracy: positive when the plain net is behind."""
        return self.residual_accuracy - self.plain_accuracy


def _per_epoch(steps: dict) -> dict:
    """{epoch: {step: (batches since the epoch began, the running mean of accuracy there)}}."""
    points = [(step, epoch, accuracy) for step, epoch, accuracy in zip(
        steps.get("step") or [], steps.get("epoch") or [], steps.get("accuracy") or [])
        if epoch and isinstance(accuracy, (int, float)) and math.isfinite(accuracy)]
    if not points:
        return {}
    # steps per epoch from the latest point: its fraction (kept to 4 decimals) is the most exact
    per_epoch = max(1, round(points[-1][0] / points[-1][1]))
    epochs: dict = {}
    for step, _, accuracy in points:
        index = math.ceil(step / per_epoch)
        epochs.setdefault(index, {})[step] = (step - (index - 1) * per_epoch, accuracy)
    return epochs


def _paired(plain: dict, residual: dict) -> tuple[float, float, float, int] | None:
    """(plain mean, residual mean, standard error of their difference, batches) over the steps
    of one epoch both logged; None with fewer than `MIN_PAIRS` stretches between them."""
    common = sorted(set(plain) & set(residual))
    stretches, seen, totals = [], 0, (0.0, 0.0)
    for step in common:  # each net's mean over the batches between two logged points
        now = plain[step][0]
        sums = (now * plain[step][1], now * residual[step][1])
        if now > seen:
            stretches.append((now - seen, (sums[1] - totals[1] - sums[0] + totals[0]) / (now - seen)))
        seen, totals = now, sums
    if len(stretches) < MIN_PAIRS:
        return None
    batches = sum(length for length, _ in stretches)
    mean = sum(length * difference for length, difference in stretches) / batches
    # the per-batch variance: a stretch of L batches has a mean whose variance is 1/L of it
    spread = sum(length * (difference - mean) ** 2 for length, difference in stretches)
    variance = spread / (len(stretches) - 1)
    return plain[common[-1]][1], residual[common[-1]][1], math.sqrt(variance / batches), batches


def _test(plain: list, residual: list) -> tuple | None:
    both = min(len(plain), len(residual))
    if not both:
        return None
    p, r = plain[both - 1].get("val_accuracy"), residual[both - 1].get("val_accuracy")
    ok = all(isinstance(v, (int, float)) and math.isfinite(v) for v in (p, r))
    return (p, r, both) if ok else None


def race_verdict(runs: list) -> Verdict | None:
    """The verdict of a race from its two jobs.

    Args:
        runs: (label, residual, history) per job; the first plain and the first residual one
            are compared. history as in history.json ("steps": per-step running means,
            "epochs": per-epoch figures with "val_accuracy").

    Returns:
        The verdict; None without a plain and a residual run. Compares the latest epoch where
        both logged at least `MIN_PAIRS` points at the same steps (else the epoch before).
    """
    plain = next(((label, h) for label, is_residual, h in runs if not is_residual), None)
    residual = next(((label, h) for label, is_residual, h in runs if is_residual), None)
    if plain is None or residual is None:
        return None
    (plain_label, plain_history), (residual_label, residual_history) = plain, residual
    epochs = [_per_epoch(h.get("steps") or {}) for h in (plain_history, residual_history)]
    done = min(max(h.get("steps", {}).get("epoch") or [0]) for h in (plain_history, residual_history))
    test = _test(plain_history.get("epochs") or [], residual_history.get("epochs") or [])
    for epoch in sorted(set(epochs[0]) & set(epochs[1]), reverse=True):
        pair = _paired(epochs[0][epoch], epochs[1][epoch])
        if pair is not None:
            p, r, error, batches = pair
            behind = ("" if abs(r - p) <= MEASURABLE * error or r == p
                      else "plain" if r > p else "residual")
            return Verdict(behind, plain_label, residual_label, epoch, batches, p, r, error, test, done)
    return Verdict("", plain_label, residual_label, 0, 0, math.nan, math.nan, math.nan, test, done)


def _points(value: float) -> str:
    return f"{100 * value:.1f} points"


def _epochs(value: float) -> str:
    shown = f"{value:g}" if float(value).is_integer() else f"{value:.1f}"
    return f"{shown} epoch{'' if shown == '1' else 's'}"


def race_reading(verdict: Verdict | None, images: int | None = None, test_images: int | None = None,
                 finished: bool = True, data: str = "") -> str:
    """The verdict in words (Markdown): who is behind and by how much against the noise, or that
    the run is too short to tell and after how much training; "" without a verdict.

    Args:
        images: the training images of each job, when known (said in "too short to tell").
        test_images: how many test images each epoch's test used, when known.
        finished: False while a job still runs ("so far").
        data: the jobs' data source; "synthetic" is said (generated images, not CIFAR-10).
    """
    if verdict is None:
        return ""
    trained = _epochs(verdict.epochs_done) + (f" on {images:,} images" if images else "")
    generated = (" These jobs trained on generated images, not CIFAR-10 (it was not found here: "
                 "EXPLORER_DATA names a copy): 2,000 training images of coloured stripes, so a short race "
                 "tells less than on CIFAR-10." if data == "synthetic" else "")
    if verdict.steps == 0:
        return (f"**The race so far**: too few points yet to compare {verdict.plain} with "
                f"{verdict.residual} ({trained}).")
    when = "so far" if not finished else "after " + trained
    numbers = (f"Training accuracy over epoch {verdict.epoch}'s {verdict.steps} batches (the same batches "
               f"for both): {verdict.plain_accuracy:.1%} for {verdict.plain} against "
               f"{verdict.residual_accuracy:.1%} for {verdict.residual}, a gap of "
               f"{_points(abs(verdict.gap))}")
    noise = (f"the run's own noise (±{_points(verdict.error)}: one standard error of the paired batches' "
             "differences)")
    if verdict.behind:
        behind, ahead = ((verdict.plain, verdict.residual) if verdict.behind == "plain"
                         else (verdict.residual, verdict.plain))
        times = f"{abs(verdict.gap) / verdict.error:.0f} times" if verdict.error > 0 else "far over"
        text = f"**The race, {when}: {behind} is behind {ahead}.** {numbers}, {times} {noise}."
    else:
        near = (" Both are still near chance (10%)." if max(verdict.plain_accuracy,
                                                             verdict.residual_accuracy) < 0.2 else "")
        text = (f"**The race, {when}: too short to tell** which net falls behind. {numbers}, within twice "
                f"{noise}.{near} More epochs or images would tell (at depth 20 the two stay close).")
    if verdict.test is not None:
        p, r, epoch = verdict.test
        where = f" on the first {test_images:,} test images" if test_images else ""
        spread = (f" (±{_points(math.sqrt((p * (1 - p) + r * (1 - r)) / test_images))})"
                  if test_images else "")
        text += f" Test accuracy after epoch {epoch}{where}: {p:.1%} against {r:.1%}{spread}."
    return text + generated


def starting_loss_note(runs: list) -> str:
    """One sentence on why a residual net's first loss is far above ln 10, from the first point
    of each run's loss (see the module's docstring for the measurement); "" when it is not."""
    first = {}
    for label, residual, history in runs:
        losses = (history.get("steps") or {}).get("loss") or []
        if losses and residual not in first and isinstance(losses[0], (int, float)):
            first[residual] = (label, losses[0])
    if True not in first or first[True][1] < LN_CLASSES + 1:
        return ""
    label, loss = first[True]
    plain = (f" where {first[False][0]}'s starts at {first[False][1]:.1f}" if False in first else "")
    return (f"{label}'s loss starts at {loss:.1f}, far above ln 10 = 2.3 (an even guess among ten "
            f"classes){plain}: at initialization each v1 block adds its batch-normalised branch to its "
            "input, so the sum grows block after block and the untrained head's scores come out large, "
            "confident and mostly wrong (measured for ResNet-56 v1: its last block's output is about 7 "
            "times plain-56's); a plain net's batch norm rescales every layer. Both losses also hold the "
            "L2 weight penalty, a few tenths.")
