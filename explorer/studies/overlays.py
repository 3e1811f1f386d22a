"""Measurements drawn on the architecture graph: one value per block, and per block of a twin
drawn below on the same colour scale.

Overlay kinds (`OVERLAY_KINDS`, one table):
    gradient           ||dL/d(block output)|| at initialization, the residual net against its
                       plain twin: `probes.gradient_flow`'s numbers (the Gradient-flow tab's and
                       `python -m explorer gradients --json`'s, same seed and batch).
    gradient_trained   the same for a checkpoint, on the same batch, against its net at
                       initialization.
    gradient_training  a job's logged per-layer ||dL/dW||, gathered per block (the root of the
                       sum of squares over the block's kernels), at an epoch, against the run's
                       first logged step.
    lesion             accuracy lost when the block's residual branch is deleted:
                       `lesion.lesion_study`'s numbers (`python -m explorer lesion --json`).
    branch_share       ||F(x)|| / ||x|| at each add (signal propagation, De & Smith 2020): at
                       initialization, and for a checkpoint trained against at initialization.
    ratio              residual / plain gradient norm per block at initialization.
    branch_ratio       ||F(x)|| / ||x|| of a checkpoint in inference mode, each image's ratio
                       averaged over the probe batch: `inside.block_ratios`' numbers.
    readout            test accuracy of a linear read-out of each block's pooled output:
                       `readout.readout_study`'s (`python -m explorer readout --json`'s).
    gradient_paths     the share of the loss gradient at each add that goes back through the
                       shortcut rather than the branch (`gradient_probe.skip_shares`): the
                       graph's skip arcs and branches drawn as wide as their shares, at
                       initialization, and for a checkpoint against at initialization.

Every measurement is kept per pure arguments (a checkpoint by its path and modification
time), so switching back to an overlay already computed costs only the drawing.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from explorer.core.caches import BoundedCache
from explorer.core.checks import file_stamp, one_of
from explorer.core.limits import check_lesion_budget, lesion_samples
from explorer.core.plans import plan
from explorer.core.specs import ResNetSpec, make_spec, whole_number
from explorer.nets.checkpoints import load
from explorer.nets.gradient_probe import probe_fn, skip_shares
from explorer.nets.models import checkpoint_spec
from explorer.studies.inside import block_ratios
from explorer.studies.lesion import lesion_study
from explorer.studies.probes import check_request, gradient_flow, largest_batch, probe_batch
from explorer.studies.readout import readout_study
from explorer.studies.twins import twins

OVERLAY_SAMPLES = 500  # test images of the lesion overlay and of a block's deletion
GRADIENT = "‖∂L/∂(block output)‖"


@dataclass(frozen=True)
class OverlayKind:
    """One kind of overlay: what it measures and on what, and how its colour scale reads.

    Attributes:
        name: the kind's name in requests and links ("gradient").
        quantity: what a block's value is ("accuracy lost").
        checkpoint: "none" (measured at initialization), "optional" (at initialization, or
            for a checkpoint against its net at initialization) or "required".
        what: the figure's title, what the colours show.
        log: a logarithmic colour scale.
        center: the centre of a diverging scale, or None for a sequential one.
        missing: what a block without a value says on hover.
        percent: values are fractions shown as percentages.
    """

    name: str
    quantity: str
    checkpoint: str
    what: str
    log: bool = True
    center: float | None = None
    missing: str = "not measured"
    percent: bool = False


OVERLAY_KINDS = {kind.name: kind for kind in (
    OverlayKind("gradient", GRADIENT, "none", "gradient norm per block at initialization"),
    OverlayKind("gradient_trained", GRADIENT, "required",
                "gradient norm per block, trained against at initialization"),
    OverlayKind("gradient_training", "‖∂L/∂W‖ of the block", "required",
                "gradient norm per block during training"),
    OverlayKind("lesion", "accuracy lost", "required",
                "accuracy lost when the block's residual branch is deleted", log=False, center=0.0,
                missing="cannot be deleted: a plain block that changes shape", percent=True),
    OverlayKind("branch_share", "‖F(x)‖ / ‖x‖", "optional", "residual branch against the skip at each add",
                center=1.0),
    OverlayKind("ratio", "residual / plain", "none",
                "gradient norm per block, residual net over its plain twin", center=1.0),
    OverlayKind("branch_ratio", "‖F(x)‖ / ‖x‖", "required",
                "residual branch against its input per block, averaged over test images", center=1.0),
    OverlayKind("readout", "read-out accuracy", "required",
                "test accuracy of a linear read-out of each block's pooled output", log=False, percent=True),
    OverlayKind("gradient_paths", "gradient share through the shortcut", "optional",
                "where the gradient goes back: the shortcut's share, lines as wide as their shares",
                log=False, center=0.5, missing="no shortcut: all of it goes through the layers",
                percent=True),
)}
EDGE_KINDS = ("gradient_paths",)  # kinds whose values also set the widths of the graph's lines
KINDS = tuple(OVERLAY_KINDS)


def needs_checkpoint(kind: str, checkpoint=None) -> bool:
    """Whether an overlay of `kind` is measured on a checkpoint: always for those that require
    one, and for an optional one when a checkpoint is given."""
    need = OVERLAY_KINDS[kind].checkpoint
    return need == "required" or (need == "optional" and bool(checkpoint))


def check_kind(kind) -> str:
    """`kind` if it is one of `KINDS`; raises ValueError naming them otherwise."""
    return one_of(kind, KINDS, "overlay")


def _probe_images(depth: int, source):
    """The gradient probes' batch for a net of `depth` (their size and seed: the same images)."""
    return probe_batch(largest_batch(depth, 64), source, 0)


def _init_model(spec: ResNetSpec):
    """The net of `spec` at initialization: the gradient lab's twin, the same weights (seed 0)."""
    residual, plain = twins(spec.depth, spec.version, 0, spec.shortcut)
    return residual if spec.residual else plain


def _block_gradients(model, x, y) -> list[float]:
    """||dL/d(block output)|| per block, as `probes.gradient_flow` measures it."""
    return [float(v) for v in probe_fn(model, compiled=False)(x, y)[1].numpy()]


def _branch_shares(model, x) -> list[float | None]:
    """||F(x)|| / ||x|| at each add, on `x` in training mode (batch statistics, the moving
    averages untouched); None for a block without an add (a plain net's)."""
    with keras.StatelessScope():
        parts = model.block_parts(x, training=True)
    shares = []
    for branch, total, _ in parts:
        if model.blocks[len(shares)].add is None:
            shares.append(None)
            continue
        skip = float(np.linalg.norm(np.asarray(total - branch, dtype=np.float64)))
        shares.append(float(np.linalg.norm(np.asarray(branch, dtype=np.float64))) / max(skip, 1e-12))
    return shares


@functools.lru_cache(maxsize=16)
def _trained(path: str, stamp: int, kind: str, source) -> tuple[list, list]:
    """(the checkpoint's values, its net's at initialization) for gradient_trained, branch_share
    or gradient_paths."""
    model = load(path)
    return _values(model, kind, source), _initial(model.spec, kind, source)


@functools.lru_cache(maxsize=16)
def _initial(spec: ResNetSpec, kind: str, source) -> list:
    """A net's values at initialization for gradient_trained, branch_share or gradient_paths."""
    return _values(_init_model(spec), kind, source)


def _values(model, kind: str, source) -> list:
    """A net's values for gradient_trained, branch_share or gradient_paths, on the probes' batch."""
    x, y, _, _ = _probe_images(model.spec.depth, source)
    if kind == "branch_share":
        return _branch_shares(model, x)
    return skip_shares(model, x, y) if kind == "gradient_paths" else _block_gradients(model, x, y)


_LESIONS = BoundedCache(16)  # (path, modification time, samples, source) -> lesion result: the newest 16
_READOUTS = BoundedCache(16)  # (path, modification time, source) -> read-out result: the newest 16


@functools.lru_cache(maxsize=16)
def _ratios(path: str, stamp: int, source) -> dict:
    """branch_ratio's numbers of a checkpoint on the gradient probes' batch."""
    model = load(path)
    return block_ratios(model, _probe_images(model.spec.depth, source)[0])


def _readout(path: str, stamp: int, source, progress, budget: bool) -> dict:
    """The read-out of a checkpoint at the default settings (stored for a shipped one), once
    per file version and source."""
    result = _READOUTS.get((path, stamp, source))
    if result is None:
        result = readout_study([path], source=source, progress=progress, budget=budget)[0]
        _READOUTS.put((path, stamp, source), result)
    return result


def measured_lesion(path: str, stamp: int, samples: int, source, progress=None,
                    compute: bool = True) -> dict | None:
    """The lesion study of a checkpoint, measured once per file version, images and source
    (`lesion.lesion_study`, the lesion CLI's numbers); with `compute=False`, only a result
    already measured (else None)."""
    key = (path, stamp, samples, source)
    result = _LESIONS.get(key)
    if result is not None or not compute:
        return result
    result = lesion_study([path], samples, source=source, progress=progress, budget=False)[0]
    _LESIONS.put(key, result)
    return result


def checkpoint_net(checkpoint_path) -> ResNetSpec:
    spec = checkpoint_spec(checkpoint_path)
    if spec.family != "cifar":
        raise ValueError(f"{spec.name} is an ImageNet net: overlays measure CIFAR-10 nets")
    return spec


def _result(kind, spec, values, twin_spec=None, twin_values=None, label="", twin_label="", **extra) -> dict:
    out = {"overlay": kind, "model": spec.name, "blocks": [b.name for b in plan(spec).blocks],
           "values": values, "quantity": OVERLAY_KINDS[kind].quantity, "label": label,
           "net": spec.to_config()}
    if twin_spec is not None:
        out.update(twin_values=twin_values, twin_model=twin_spec.name, twin_label=twin_label,
                   twin_net=twin_spec.to_config())
    return {**out, **extra}


def _at_initialization(kind, depth, version, source, progress) -> dict:
    """gradient, ratio and (without a checkpoint) branch_share and gradient_paths: fresh nets, seed 0."""
    depth, version, _, _ = check_request(depth, version)
    spec = make_spec(depth, version)
    if kind in ("branch_share", "gradient_paths"):
        return _result(kind, spec, _initial(spec, kind, source), label=f"{spec.name}, at initialization")
    flow = gradient_flow(depth, version, source=source, progress=progress)
    extra = {"batch_size": flow.batch_size, "data": flow.data}
    if kind == "ratio":
        ratio = [r / p if p > 0 else None for r, p in zip(flow.residual_blocks, flow.plain_blocks)]
        return _result(kind, spec, ratio, label=f"{spec.name} over {spec.twin().name}, at initialization",
                       **extra)
    return _result(kind, spec, list(flow.residual_blocks), spec.twin(), list(flow.plain_blocks),
                   f"{spec.name}, at initialization", f"{spec.twin().name} (plain twin), at initialization",
                   **extra)


def training_epoch(history: dict, epoch=None) -> tuple[int, list[str], list[float], list[float]]:
    """A job's logged per-layer gradient norms at an epoch, and at its first logged step.

    Args:
        history: `history.json` of a run ({"epochs", "grad_norms": {"layers", "steps", "norms"}}),
            optionally with "steps_per_epoch" (the job's status has it; else it is estimated).
        epoch: 0 (the first logged step) to the epochs finished; None for the last.

    Returns:
        (epoch, layer names, norms at the epoch's last logged step, norms at the first one).

    Raises:
        ValueError: nothing was logged yet, or `epoch` is out of range.
    """
    grads = (history or {}).get("grad_norms") or {}
    steps, norms, finished = (grads.get("steps") or [], grads.get("norms") or [],
                              len(history.get("epochs") or []))
    if not steps or not norms:
        raise ValueError("this run has logged no gradient norms yet: wait for its first steps")
    epoch = finished if epoch is None else whole_number(epoch, "epoch", 0, max(finished, 0))
    per_epoch = history.get("steps_per_epoch") or math.ceil(steps[-1] / max(finished, 1))
    last = max([i for i, step in enumerate(steps) if step <= epoch * per_epoch] or [0])
    return epoch, list(grads["layers"]), list(norms[last]), list(norms[0])


def run_history(checkpoint_path) -> dict:
    """The history beside a run's checkpoint (`history.json` in its folder), with the steps
    per epoch from its `status.json` where there is one: what gradient_training reads.

    Raises:
        ValueError: the folder holds no readable history.
    """
    folder = Path(checkpoint_path).parent
    try:
        history = json.loads((folder / "history.json").read_text())
    except (OSError, ValueError):
        raise ValueError(f"no readable history.json beside {Path(checkpoint_path).name}: gradient_training "
                         "reads a run folder's log") from None
    try:
        history["steps_per_epoch"] = json.loads((folder / "status.json").read_text()).get("steps_per_epoch")
    except (OSError, ValueError):
        pass
    return history


def as_text(result: dict) -> str:
    """An `overlay` result as lines of text: a heading, then a block per line."""
    twin = result.get("twin_values") or [None] * len(result["blocks"])
    lines = [f"{result['model']}: {result['overlay']} ({result['quantity']}), {result['label']}"
             + (f"; beside it {result['twin_label']}" if "twin_label" in result else "")]
    for name, value, other in zip(result["blocks"], result["values"], twin):
        lines.append(f"  {name:<18} {'n/a' if value is None else f'{value:.4g}':>10}"
                     + ("" if other is None else f"   {other:.4g}"))
    return "\n".join(lines)


def _per_block(spec: ResNetSpec, layers: list[str], norms: list[float]) -> list[float | None]:
    """Layer norms gathered per block: the root of the sum of their squares (None for a block
    with none logged)."""
    sums = {}
    for name, norm in zip(layers, norms):
        block = "_".join(name.split("_")[:2])
        sums[block] = sums.get(block, 0.0) + float(norm) ** 2
    return [math.sqrt(sums[b.name]) if b.name in sums else None for b in plan(spec).blocks]


def _with_checkpoint(kind, checkpoint_path, history, epoch, source, samples, progress, budget) -> dict:
    spec = checkpoint_net(checkpoint_path)
    path, stamp = file_stamp(checkpoint_path)
    if kind == "gradient_training":
        epoch, layers, now, first = training_epoch(history, epoch)
        return _result(kind, spec, _per_block(spec, layers, now), spec, _per_block(spec, layers, first),
                       f"{spec.name}, epoch {epoch}", f"{spec.name}, first logged step", epoch=epoch,
                       epochs=len(history.get("epochs") or []))
    if kind == "lesion":
        samples = lesion_samples(samples)
        if budget:
            check_lesion_budget(samples, [spec])
        result = measured_lesion(path, stamp, samples, source, progress)
        cost = [None if a is None else round(result["baseline"] - a, 4) for a in result["accuracy"]]
        return _result(kind, spec, cost, label=f"{spec.name}, trained ({result['n']} test images)",
                       baseline=result["baseline"], accuracy=result["accuracy"], n=result["n"])
    if kind in ("branch_share", "branch_ratio", "gradient_paths") and not spec.residual:
        raise ValueError(f"{spec.name} is a plain net: it has no add, so no branch share (its gradient "
                         "goes back through its layers alone)")
    if kind == "branch_ratio":
        ratios = _ratios(path, stamp, source)
        return _result(kind, spec, ratios["branch_ratio"], label=f"{spec.name}, trained ({ratios['n']} test "
                       "images)", cosine=ratios["cosine"], n=ratios["n"])
    if kind == "readout":
        result = _readout(path, stamp, source, progress, budget)
        return _result(kind, spec, result["accuracy"], label=f"{spec.name}, trained ({result['test_images']} "
                       "test images)", model_accuracy=result["model_accuracy"],
                       train_images=result["train_images"], stored=result.get("stored"))
    if progress is not None:
        progress(0.2, f"measuring {spec.name} and its net at initialization")
    trained, initial = _trained(path, stamp, kind, source)
    return _result(kind, spec, trained, spec, initial, f"{spec.name}, trained",
                   f"{spec.name}, at initialization")


def overlay(depth, version, kind, checkpoint_path=None, history=None, epoch=None, source=None,
            samples=OVERLAY_SAMPLES, progress=None, budget=True) -> dict:
    """A value per block of a net (and of its twin) for the graph to be coloured by.

    Args:
        depth: weighted layers of the CIFAR-10 net measured at initialization (6n+2 for v1,
            9n+2 for v2); a checkpoint's own net is measured instead where one is given.
        version: 1 or 2.
        kind: one of `KINDS` (see the module's notes).
        checkpoint_path: a `.keras` checkpoint (the app's come from `pretrained.resolve`):
            needed by gradient_trained, gradient_training, lesion, branch_ratio and readout,
            optional for branch_share.
        history: the run's history (see `training_epoch`), for gradient_training.
        epoch: the epoch gradient_training shows; None for the last.
        source: the data source of the images; None for the default.
        samples: test images of the lesion overlay (see `limits.lesion_samples`).
        progress: optional `progress(fraction, text)` callback.
        budget: refuse a lesion over this host's budget; False for the command line.

    Returns:
        {"overlay", "model", "blocks", "values", "quantity", "label", "net"} and, where a twin
        is drawn, {"twin_values", "twin_model", "twin_label", "twin_net"}: block names input
        to output, a value per block (None where there is none: a plain block that changes
        shape cannot be deleted), the nets' specs; plus what the kind adds (the lesion's
        baseline, accuracies and images, gradient_training's epoch).

    Raises:
        ValueError: a value is malformed or out of range, a checkpoint is needed and missing,
            or the measurement cannot apply (a plain net has no branch share).
    """
    kind = check_kind(kind)
    if OVERLAY_KINDS[kind].checkpoint == "required" and not checkpoint_path:
        raise ValueError(f"the {kind} overlay needs a checkpoint")
    if kind == "gradient_training" and not history:
        raise ValueError("the gradient_training overlay needs a job's history (a job of this browser)")
    if not needs_checkpoint(kind, checkpoint_path):
        return _at_initialization(kind, depth, version, source, progress)
    return _with_checkpoint(kind, checkpoint_path, history, epoch, source, samples, progress, budget)
