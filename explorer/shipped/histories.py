"""Training histories in words and numbers: per-epoch errors from a run's history, and the
reading of the degradation view (plain against residual nets over training).

Pure functions of run dicts: the shipped runs come from `pretrained.shipped_histories`, the
live ones from a job's status.
"""

from __future__ import annotations


def error_history(epochs: list[dict], digits: int | None = None) -> list[dict]:
    """Per-epoch training and test error from a run's history.

    Args:
        epochs: `history.json`'s "epochs": dicts with "epoch", "accuracy" and "val_accuracy".
        digits: rounds the errors to this many decimals; None keeps them as they are.

    Returns:
        A list of {"epoch", "train_error", "test_error"}, one per epoch.
    """
    def error(accuracy):
        return 1 - accuracy if digits is None else round(1 - accuracy, digits)

    return [{"epoch": e["epoch"], "train_error": error(e["accuracy"]),
             "test_error": error(e["val_accuracy"])} for e in epochs]


# The four runs of the paper's Figures 1 and 6 that the degradation view is about.
DEGRADATION_RUNS = ("Plain-20 v1", "Plain-56 v1", "ResNet-20 v1", "ResNet-56 v1")


def degradation_reading(runs: list[dict]) -> str:
    """What the runs show, in words computed from their numbers (Markdown).

    Compares the shallow and the deep net of each kind at the last epoch both reached (so a
    run still in training is compared fairly), and a plain net with its residual twin, among
    runs of the same planned length only.

    Args:
        runs: dicts as returned by `shipped_histories` (a run without "depth", e.g. a live
            job, is listed but not compared).
    """
    if not runs:
        return "No shipped training histories yet (see `pretrained/README.md`)."
    lines = []
    for run in runs:
        last = run["epochs"][-1] if run["epochs"] else None
        if last is None:
            continue
        planned = run.get("planned_epochs")
        of = f" of {planned}" if planned and planned != len(run["epochs"]) else ""
        best = min(e["test_error"] for e in run["epochs"])
        lines.append(f"- **{run['label']}** after {last['epoch']}{of} epochs: training error "
                     f"{last['train_error']:.1%}, test error {last['test_error']:.1%} (best {best:.1%}).")

    # the paper's comparison: v1 nets only (a v2 bottleneck net is another family), and nets
    # trained alike: runs are paired within one schedule, so a longer run of a net (200 epochs
    # against its twin's 100) is listed and drawn but never set against a shorter one
    schedules: dict = {}
    for run in runs:
        if run.get("depth") and run.get("version") == 1 and run["epochs"]:
            schedules.setdefault(run.get("planned_epochs"), {})[run["residual"], run["depth"]] = run
    findings = []
    for known in schedules.values():
        findings += _findings(known)
    missing = [name for name in DEGRADATION_RUNS if name not in {r["label"] for r in runs}]
    text = "\n".join(lines)
    if findings:
        text += "\n\n**What these runs show**\n\n" + "\n".join(findings)
    if missing:
        text += (f"\n\nNot shipped yet: {', '.join(missing)}; comparisons are made only between shipped "
                 "runs (`pretrained/README.md` says how the rest is being trained).")
    return text


def _findings(known: dict) -> list[str]:
    """The deeper against the shallower net of each kind, and each plain net against its
    residual twin, among runs of one schedule keyed by (residual, depth)."""
    findings = []
    for residual, kind in ((False, "plain"), (True, "residual")):
        depths = sorted(d for res, d in known if res == residual)
        if len(depths) >= 2:
            line, worse = _compare(known[residual, depths[0]], known[residual, depths[-1]],
                                   f"Deeper {kind} net")
            if worse and not residual:
                line += (" Higher training error for the deeper plain net is the degradation problem "
                         "(it is not overfitting: the training error itself is worse).")
            findings.append(line)
    for depth in sorted({d for _, d in known}):
        if (False, depth) in known and (True, depth) in known:
            findings.append(_compare(known[False, depth], known[True, depth],
                                     f"Shortcuts at depth {depth}")[0])
    return findings


def _at(run: dict, epoch: int) -> dict:
    """The history entry of `epoch` in a run."""
    for entry in run["epochs"]:
        if entry["epoch"] == epoch:
            return entry
    raise ValueError(f"the history of {run['label']} has no epoch {epoch}")


def _compare(first: dict, second: dict, what: str) -> tuple[str, bool]:
    """(a sentence, whether `second` trains worse than `first`), at the last epoch both reached
    (so a run still in training is compared fairly)."""
    epoch = min(first["epochs"][-1]["epoch"], second["epochs"][-1]["epoch"])
    a, b = _at(first, epoch), _at(second, epoch)
    worse = b["train_error"] > a["train_error"]
    return (f"- {what}: at epoch {epoch}, **{second['label']}** has {'higher' if worse else 'lower'} "
            f"training error than **{first['label']}** ({b['train_error']:.1%} against "
            f"{a['train_error']:.1%}; test error {b['test_error']:.1%} against "
            f"{a['test_error']:.1%})."), worse
