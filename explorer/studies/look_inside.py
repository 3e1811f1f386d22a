"""The Look inside tab's work as engine tasks, and what its numbers say in words.

The tasks take a checkpoint's path (never a model), so a Dask worker imports them by name and
keeps the checkpoint loaded (`checkpoints.load` caches per file): `warm` loads and traces a
checkpoint's sub-model ahead (`inside.trace`, about two seconds that no request waits for);
`inside_of` is one image through a net and its plain twin, every block's numbers and one
block's maps (`inside.inside`); `readout_of` fits (or finds stored) the linear read-outs of a
checkpoint and says what each block's probe reads in the image (`readout`). Read-outs fitted
live are kept per worker, so the next image reads them at once.

The readings put the numbers of this run beside Jastrzębski et al. (2017: later blocks make
small refinements to what the shortcut carries) and Alain and Bengio (2016: linear probes grow
more accurate with depth), as docs/measured.md does for the shipped nets.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from explorer.core.caches import BoundedCache
from explorer.core.checks import file_stamp
from explorer.core.limits import MAX_INSIDE_GALLERY, READOUT_TEST, READOUT_TRAIN
from explorer.core.specs import whole_number
from explorer.data.cifar import load_cifar10
from explorer.data.images import prepare
from explorer.nets.checkpoints import load
from explorer.shipped import stored
from explorer.studies.inside import block_name, inside, is_traced, trace
from explorer.studies.readout import readout_study

SETTINGS = {"test": READOUT_TEST, "train": READOUT_TRAIN}  # the page's read-outs: the stored ones' settings
# A block refines what its shortcut carries (Jastrzębski et al.'s finding) where its branch is
# small beside its input and the sum points nearly where the input did
REFINES_RATIO, REFINES_COSINE = 0.5, 0.9
_PROBES = BoundedCache(8)  # (checkpoint stamp, source) -> its read-out, stored or fitted in this worker


def warm(path, twin=None) -> list[str]:
    """Loads a checkpoint (and its twin) and traces the pass `inside_of` runs: a warm-up task,
    sent when a checkpoint is chosen, so the first image is answered in tens of milliseconds.

    Args:
        path: a `.keras` checkpoint.
        twin: its plain (or residual) twin's checkpoint, or None.

    Returns:
        The nets' names.
    """
    names = []
    for checkpoint in filter(None, (path, twin)):
        model = load(checkpoint)
        if model.spec.family == "cifar":
            trace(model)
        names.append(model.spec.name)
    return names


def probes(path, source, fit: bool = False, progress=None) -> dict | None:
    """A checkpoint's read-out at the page's settings: kept in this worker, else stored (a
    shipped checkpoint on its data), else fitted now when `fit` (`readout.readout_study`,
    within the host's budget), else None."""
    key = (file_stamp(path), str(source))
    found = _PROBES.get(key) or stored.lookup("readout", path, SETTINGS, source)
    if found is None and fit:
        found = readout_study([path], READOUT_TRAIN, READOUT_TEST, source, progress=progress)[0]
    if found is not None:
        _PROBES.put(key, found)
    return found


def inside_of(path, pixels, block=None, twin=None, source=None) -> dict:
    """One image inside a checkpoint and its twin: every block's numbers, one block's maps.

    Args:
        path: a `.keras` checkpoint of a CIFAR-10 net.
        pixels: the image (anything `images.prepare` takes; the page sends the 32x32 array).
        block: the block whose maps are wanted ("stage2_block3"); None for the first.
        twin: the twin's checkpoint, or None. Its block of the same name is mapped too.
        source: the data the read-outs were fitted on; each block says its probe's top 3
            where a read-out is stored or was fitted in this worker (never fitted here).

    Returns:
        {"net": `inside.inside`'s result, "twin": the twin's, or None, "traced": whether both
        passes were the compiled ones (False: this worker has not run `warm` for them)}.

    Raises:
        ValueError: as `inside.inside`.
    """
    pixels, model = prepare(pixels), load(path)
    block = block or model.blocks[0].name
    result = inside(model, pixels, block, readout=probes(path, source))
    twin_result, traced = None, is_traced(model)
    if twin:
        twin_model = load(twin)
        twin_block = block if block in [b.name for b in twin_model.blocks] else None
        twin_result = inside(twin_model, pixels, twin_block, readout=probes(twin, source))
        traced = traced and is_traced(twin_model)
    return {"net": result, "twin": twin_result, "traced": traced}


def readout_of(path, pixels, source=None, progress=None, block=None) -> dict:
    """A checkpoint's read-out per block, and what each block's probe reads in one image.

    Args:
        path: a `.keras` checkpoint of a CIFAR-10 net.
        pixels: the image (anything `images.prepare` takes).
        source: the data source; the stored read-out where it is the one it was fitted on.
        progress: optional `progress(fraction, text)` callback of a live fit.
        block: a block of the net to mark on the page's chart (None or "": none).

    Returns:
        The `readout.readout` result without its probes' weights, with "tops" (per block the
        probe's top 3 [{"class", "score"}] on the image), "top" (the net's own top 3) and
        "marked" (`block`, or None).

    Raises:
        ValueError: a live fit over the host's budget, the data cannot be had, the image
            cannot be read, or the block is not one of the net's.
    """
    pixels = prepare(pixels)  # a bad image or block refused before a fit
    model = load(path)
    marked = None if block in (None, "") else block_name(model, block)
    result = probes(path, source, fit=True, progress=progress)
    seen = inside(model, pixels, None, readout=result)
    kept = {key: value for key, value in result.items() if key not in ("weights", "bias")}
    return {**kept, "tops": [b["readout_top"] for b in seen["blocks"]], "top": seen["top"], "marked": marked}


@functools.lru_cache(maxsize=2)
def _test_split(source) -> tuple[np.ndarray, np.ndarray, tuple]:
    data = load_cifar10(source)
    return data.x_test, data.y_test, tuple(data.classes)


def test_images(source, indices) -> list[dict]:
    """Test images by index, for the page's one-click choice (and a link's `image=`).

    Args:
        source: the data source.
        indices: 1 to `limits.MAX_INSIDE_GALLERY` indices into its test split.

    Returns:
        [{"index", "pixels" (32x32x3 uint8), "label" (its class)}] in the order asked.

    Raises:
        ValueError: too many indices, or one outside the test split.
    """
    indices = list(indices) if isinstance(indices, (list, tuple, range)) else [indices]
    whole_number(len(indices), "test images asked for", 1, MAX_INSIDE_GALLERY)
    x, y, names = _test_split(source)
    chosen = [whole_number(i, "test image", 0, len(x) - 1) for i in indices]
    return [{"index": i, "pixels": x[i], "label": names[int(y[i])]} for i in chosen]


# ----------------------------------------------------------------------------- readings


def _span(values) -> str:
    low, high = min(values), max(values)
    return f"{low:.2f}" if math.isclose(low, high, abs_tol=0.005) else f"{low:.2f} to {high:.2f}"


def stage_summary(result: dict) -> list[dict]:
    """Per stage, its later blocks: those after the stage's first that keep their shape (an
    identity shortcut), their ratios and cosines, the medians, and whether the stage refines
    (median ratio under `REFINES_RATIO`, median cosine over `REFINES_COSINE`). A stage of one
    block is summed up by it."""
    stages: dict = {}
    for b in result["blocks"]:
        if b["branch_ratio"] is None:
            continue
        # an identity shortcut gives the add x itself; a projection gives it another tensor
        identity = not b["downsamples"] and b["skip_norm"] == b["input_norm"]
        stage = stages.setdefault(b["block"].split("_")[0],
                                  {"blocks": [], "ratio": [], "cosine": [], "first": b})
        if identity and b is not stage["first"]:
            stage["blocks"].append(b["block"])
            stage["ratio"].append(b["branch_ratio"])
            stage["cosine"].append(b["cosine"])
    summary = []
    for name, stage in stages.items():
        if not stage["blocks"]:  # one block: itself
            first = stage["first"]
            stage.update(blocks=[first["block"]], ratio=[first["branch_ratio"]], cosine=[first["cosine"]])
        ratio, cosine = float(np.median(stage["ratio"])), float(np.median(stage["cosine"]))
        summary.append({"stage": name, "blocks": stage["blocks"], "ratio": stage["ratio"],
                        "cosine": stage["cosine"], "median_ratio": ratio, "median_cosine": cosine,
                        "refines": ratio < REFINES_RATIO and cosine > REFINES_COSINE})
    return summary


def _jastrzebski(stages: list[dict]) -> str:
    """The verdict beside Jastrzębski et al. (2017), from `stage_summary`."""
    refining = [s["stage"] for s in stages if s["refines"]]
    last = stages[-1]
    if len(refining) == len(stages):
        return (f"**agree**: in every stage the later blocks' median ratio is under {REFINES_RATIO} and "
                f"their median cosine over {REFINES_COSINE}.")
    if refining and not last["refines"]:
        return (f"**agree in {', '.join(refining)}, not in {last['stage']}**: there the median ratio is "
                f"{last['median_ratio']:.2f} (up to {max(last['ratio']):.2f}) and the cosine falls to "
                f"{min(last['cosine']):.2f}: the last blocks rework the signal more than they refine it. "
                "docs/measured.md finds the same for ResNet-56 v1 over test images (0.15 to 0.31 in "
                "stages 1 and 2, 0.49 rising to 1.61 in stage 3).")
    if not refining:
        return (f"**not on this image**: in no stage is the later blocks' median ratio under {REFINES_RATIO} "
                f"with a median cosine over {REFINES_COSINE}.")
    return f"**in part**: the later blocks of {', '.join(refining)} refine, the others do not."


def inside_reading(result: dict, twin: dict | None = None) -> str:
    """What `inside_of`'s numbers show on this image, beside Jastrzębski et al. (Markdown)."""
    stages = stage_summary(result)
    if not stages:
        text = (f"**{result['model']}** is a plain net: no shortcut, no add, so no ‖F(x)‖/‖x‖ or cosine: "
                "each block's output replaces its input.")
        if twin and stage_summary(twin):
            return text + " Its residual twin, mapped beside it:\n\n" + inside_reading(twin)
        return text
    lines = "; ".join(f"{s['stage']} {s['median_ratio']:.2f} ({_span(s['ratio'])}, cosine "
                      f"{_span(s['cosine'])})" for s in stages)
    shaped = [b for b in result["blocks"] if b["downsamples"] and b["branch_ratio"] is not None]
    text = (f"**On this image, {result['model']}** (one forward pass, inference mode): the median "
            f"‖F(x)‖/‖x‖ of each stage's later blocks: {lines}.")
    if shaped:
        text += (" The blocks that change shape, whose x is what their shortcut gives the add: "
                 + ", ".join(f"{b['block']} {b['branch_ratio']:.2f}" for b in shaped) + ".")
    text += ("\n\n**Beside Jastrzębski et al. (2017)**, who find that later blocks make small refinements "
             f"to what the shortcut carries: {_jastrzebski(stages)} What differs: theirs is averaged over "
             "data; this is one image, through "
             + ("a pre-activation (v2) net, whose sums pass on untouched."
                if result["net"].get("version") == 2 else "a v1 net, with a ReLU after each sum."))
    if twin:
        last = twin["blocks"][-1]
        text += (f"\n\n{twin['model']} beside it has no shortcut: each block's output replaces its input "
                 f"(‖output‖ at its last block {last['output_norm']:,.1f}, against "
                 f"{result['blocks'][-1]['output_norm']:,.1f} here).")
    return text


def _curve(result: dict) -> str:
    """One read-out curve beside Alain and Bengio (2016): rising, or where it falls or stops."""
    accuracy, blocks = result["accuracy"], result["blocks"]
    drops = [(accuracy[i] - accuracy[i + 1], blocks[i + 1]) for i in range(len(accuracy) - 1)]
    drop, where = max(drops, default=(0.0, None))
    error = math.sqrt(0.25 / max(result["test_images"], 1))  # a standard error at 50% accuracy, at most
    best = max(accuracy)
    plateau = next(name for name, a in zip(blocks, accuracy) if a >= best - 0.01)
    rise, ends = accuracy[-1] - accuracy[0], f"{accuracy[0]:.1%} to {accuracy[-1]:.1%}"
    trend = ("rises" if rise > 2 * error else "falls" if rise < -2 * error else "stays level,")
    text = f"{result['model']}'s {trend} from {ends}"
    if drop <= 2 * error:
        text += f", never falling more than {max(drop, 0):.1%} from one block to the next"
    else:
        text += f", falling {drop:.1%} at {where} (a standard error is about {error:.1%})"
    text += " (**agrees**)" if rise > 2 * error and drop <= 2 * error else " (**disagrees**)"
    if plateau != blocks[-1]:
        text += f"; within a point of its best from {plateau} on"
    return text


def readout_page_reading(results: list[dict]) -> str:
    """What the read-outs show, beside Alain and Bengio (2016), and where the image's answer
    appears (Markdown), from `readout_of` results (the checkpoint first, its twin next)."""
    text = ("**Beside Alain and Bengio (2016)**, whose linear probes grow more accurate layer after layer: "
            + "; ".join(_curve(r) for r in results) + ".")
    first = results[0]
    answers = [top[0]["class"] if top else None for top in first["tops"]]
    final = answers[-1]
    if final is not None:
        since = len(answers) - 1
        while since > 0 and answers[since - 1] == final:
            since -= 1
        first_named = answers.index(final)
        text += (f"\n\n**On this image**, {first['model']}'s last read-out says *{final}* (the net itself: "
                 f"*{first['top'][0]['class']}*, {first['top'][0]['probability']:.0%}); the read-out first "
                 f"names it at {first['blocks'][first_named]}"
                 + (f" and keeps it from {first['blocks'][since]} on." if since != first_named
                    else " and keeps it."))
    provenance = stored.provenance(results)
    return text + (f"\n\n{provenance}" if provenance else
                   f"\n\nFitted now on {first['train_images']:,} training images, scored on "
                   f"{first['test_images']:,} test images.")
