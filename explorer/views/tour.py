"""The guided tour: eight questions on what residual networks fix, each answered from a
measurement (the shipped histories and checkpoints, or a net measured now), never from text
typed into the page. Each step names where its number came from and links to the view that
shows it (`explorer.links` query strings).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from explorer.core.costs import summarize
from explorer.core.numbers import magnitude
from explorer.core.playground_settings import PlaygroundSettings
from explorer.core.specs import make_spec
from explorer.data.cifar import resolve_source
from explorer.shipped import histories, pretrained, stored
from explorer.studies import race as race_study


@dataclasses.dataclass(frozen=True)
class Step:
    """One question of the tour."""

    title: str  # what the step is about
    question: str  # asked before anything is shown
    choices: tuple  # the answers to pick from
    link: str  # the query string of the view that shows the measurement
    measure: Callable[..., tuple[str, str]]  # measures the answer: (the answer, what was measured)


def _final_train_error(runs, label):
    run = next((run for run in runs if run["label"] == label), None)
    return None if run is None or not run["epochs"] else run["epochs"][-1]["train_error"]


def degradation(**_) -> tuple[str, str]:
    """The shipped plain-20 and plain-56 histories: training error at their last epoch."""
    runs = pretrained.shipped_histories(version=1)
    deep, shallow = _final_train_error(runs, "Plain-56 v1"), _final_train_error(runs, "Plain-20 v1")
    if deep is None or shallow is None:
        return "", ("The shipped plain-20 and plain-56 histories are not here, so this step cannot be "
                    "measured.")
    answer = ("plain-56" if deep > shallow + 0.01 else "plain-20" if shallow > deep + 0.01
              else "about the same")
    return answer, (f"Training error at the last epoch: plain-56 {deep:.1%}, plain-20 {shallow:.1%} "
                    "(the shipped runs' histories, `pretrained/histories/`). "
                    + histories.degradation_reading(runs))


def gradients(progress=None, **_) -> tuple[str, str]:
    """Plain-110 and ResNet-110 v1 at initialization, measured now (seed 0, 64 images)."""
    from explorer.studies import probes  # deferred: importing this module must not load TensorFlow

    flow = probes.gradient_flow(110, 1, 64, 0, progress=progress)
    ratio = flow.plain[0] / flow.residual[0]
    answer = ("exploding (far larger)" if ratio > 10 else "vanishing (far smaller)" if ratio < 0.1
              else "similar")
    return answer, (f"Measured now: the first layer's gradient norm is {magnitude(flow.plain[0])} in "
                    f"plain-110 and {magnitude(flow.residual[0])} in ResNet-110, {magnitude(ratio)} times "
                    f"larger ({flow.batch_size} images, seed 0, the same initial weights). "
                    + probes.reading(flow))


def _shipped_pair() -> tuple[list[str], list]:
    """The deepest shipped residual net and its shipped plain twin (ResNet-56 and plain-56 here)."""
    names = list(pretrained.default_pair(pretrained.checkpoint_choices()))
    if not all(names):
        raise ValueError("no shipped residual net with its plain twin: this step needs both")
    return names, [pretrained.pretrained_path(name) for name in names]


def _which(residual: float, plain: float, margin: float, same: str) -> str:
    return ("the plain net" if plain > residual + margin
            else "the residual net" if residual > plain + margin else same)


def lesion(progress=None, samples: int = 256, **_) -> tuple[str, str]:
    """The shipped pair with each block deleted in turn, measured now."""
    # deferred: importing this module must not load TensorFlow (and the name is this function's)
    from explorer.studies import lesion

    names, paths = _shipped_pair()
    results = lesion.lesion_study(paths, samples, names, resolve_source()[0], progress=progress)
    costs, _ = lesion.median_costs(results)  # the comparison the reading's last sentence states
    return _which(costs[0], costs[1], 0.05, "both about the same"), (
        f"{stored.provenance(results) or 'Measured now.'} On {samples} test images:\n\n"
        + lesion.lesion_reading(results))


def landscape(progress=None, **_) -> tuple[str, str]:
    """The loss around the shipped pair, a coarse plane measured now."""
    # deferred: importing this module must not load TensorFlow (and the name is this function's)
    from explorer.studies import landscape

    names, paths = _shipped_pair()
    results = landscape.landscape_study(paths, 5, 64, names, source=resolve_source()[0], progress=progress)
    shares = [landscape.landscape_summary(result)["basin_fraction"] for result in results]
    points = [round(share * len(result["grid"]) ** 2) for share, result in zip(shares, results)]
    total = len(results[0]["grid"]) ** 2
    return _which(shares[0], shares[1], 0.02, "about the same"), (
        f"Of the plane's {total} points, {points[0]} of {names[0]}'s and {points[1]} of {names[1]}'s stay "
        "within 1 nat of the loss at the trained weights: that is what this coarse measurement (one "
        "random plane, 64 test images) can say, and it says nothing finer than a grid step. "
        f"{stored.provenance(results) or 'Measured now.'} " + landscape.landscape_reading(results))


def _part(result: dict, block: str | None) -> str:
    """Where a block sits, in the words of the read-out step's choices."""
    if block is None:
        return ""
    stages = [name.split("_")[0] for name in result["blocks"]]
    stage = block.split("_")[0]
    if stage != stages[-1]:
        return f"stage {stage.removeprefix('stage')}"
    within = [name for name in result["blocks"] if name.startswith(stage + "_")]
    return ("the first half of the last stage" if within.index(block) < len(within) / 2
            else "the second half of the last stage")


def readout(progress=None, **_) -> tuple[str, str]:
    """The shipped pair's linear read-outs per block (stored for the shipped checkpoints on
    their data, else fitted now): where the residual net's first comes within 5 points of its
    own accuracy."""
    # deferred: importing this module must not load TensorFlow (and the name is this function's)
    from explorer.studies import readout

    names, paths = _shipped_pair()
    results = readout.readout_study(paths, source=resolve_source()[0], progress=progress)
    found = readout.first_readable(results[0])
    accuracy = dict(zip(results[0]["blocks"], results[0]["accuracy"]))
    own = f"within 5 points of the net's own {results[0]['model_accuracy']:.1%}"
    said = (f"{names[0]}'s read-out first comes {own} at {found} ({accuracy[found]:.1%})" if found
            else f"{names[0]}'s read-out never comes {own}")
    return _part(results[0], found), (
        f"{stored.provenance(results) or 'Measured now.'} {said}, on {results[0]['test_images']:,} test "
        "images; each probe scores all ten classes at once (a cat-against-dog probe is not stored, so the "
        "step asks where the ten-class read-out becomes nearly as good as the net). "
        + readout.readout_reading(results))


def depth_limit(**_) -> tuple[str, str]:
    """The paper's own answer (He et al. 2015, Table 6), and the size of ResNet-1202 from its plan."""
    big, small = (summarize(make_spec(depth, 1))["totals"]["params"] for depth in (1202, 110))
    return "no, higher test error", (
        f"The paper's own answer (He et al. 2015, Table 6): ResNet-1202 ({big:,} parameters, counted "
        f"from its plan here) ends at 7.93% test error against 6.43% for ResNet-110 ({small:,}): its "
        "training error is as low, so the authors read it as overfitting, a net far too large for "
        "50,000 small images. We have not trained ResNet-1202 (about 40 times ResNet-20's work per "
        "image): the link opens its architecture.")


def _shipped_race() -> tuple[str, str]:
    """Without a race of the visitor's: the shipped plain-56 and ResNet-56 v1 runs' last
    training error, what a long race shows."""
    runs = pretrained.shipped_histories(version=1)
    plain, residual = _final_train_error(runs, "Plain-56 v1"), _final_train_error(runs, "ResNet-56 v1")
    if plain is None or residual is None:
        return "", ("You have not raced yet in this browser: tick Race on the Train tab, press Start, and "
                    "ask again when it has trained.")
    return _which(1 - plain, 1 - residual, 0.01, "neither"), (
        "You have not raced yet in this browser, so this answer is the shipped runs' (`pretrained/"
        f"histories/`, 100 epochs on all 50,000 images): training error at the last epoch {plain:.1%} for "
        f"plain-56 against {residual:.1%} for ResNet-56. Tick Race on the Train tab and press Start to "
        "measure your own; ask again when it has trained.")


def race(runs=None, finished: bool = True, images: int | None = None, test_images: int | None = None,
         data: str = "", **_) -> tuple[str, str]:
    """The visitor's own race, read by `studies.race`: who fell behind, by more than the run's
    own noise, or too short to tell (no answer then); without one, the shipped runs.

    Args:
        runs: (label, residual, history) of the race's two jobs; None or [] for none.
        finished, images, test_images, data: as for `race.race_reading`.
    """
    verdict = race_study.race_verdict(runs or [])
    if verdict is None:
        return _shipped_race()
    answer = {"plain": "the plain net", "residual": "the residual net"}.get(verdict.behind, "")
    reading = race_study.race_reading(verdict, images=images, test_images=test_images,
                                      finished=finished, data=data)
    still = "" if finished else " Your race is still running: this is what it has measured so far."
    return answer, f"From your own race, the newest in this browser.{still} {reading}"


PLAYGROUND_BLOCKS = 32  # the playground step's depth
NEAR_CHANCE = 0.6  # training accuracy below which a net on two balanced classes has barely learned
FIT_CHOICES = ("yes, as well as its residual twin", "partly: it trails its residual twin",
               "no: it stays near chance")


def fit_answer(plain: dict, residual: dict, plain_behind: bool) -> str:
    """The playground step's answer from the twins' final rows (`depth_sweep`'s) and whether
    the plain net's training loss is behind the residual net's (`playground_sweep.behind`)."""
    if plain["train_accuracy"] < NEAR_CHANCE:
        return FIT_CHOICES[2]
    return FIT_CHOICES[1] if plain_behind else FIT_CHOICES[0]


def playground_fit(progress=None, steps: int | None = None, **_) -> tuple[str, str]:
    """A 32-block plain net and its residual twin on the spiral (the Playground's other
    defaults), trained now for the depth sweep's budget of steps."""
    # deferred: importing this module must not load TensorFlow
    from explorer.studies.playground_sweep import DEFAULT_SWEEP_STEPS, behind, depth_sweep

    settings = PlaygroundSettings(data="spiral", blocks=PLAYGROUND_BLOCKS)
    result = depth_sweep(settings, [PLAYGROUND_BLOCKS], steps or DEFAULT_SWEEP_STEPS, progress=progress)
    rows = {row["net"]: row for row in result["rows"]}
    plain, residual = rows["plain"], rows["residual"]
    answer = fit_answer(plain, residual, behind(plain["train_loss"], residual["train_loss"]))
    return answer, (
        f"Measured now: {result['steps']} steps of {settings.optimizer} at {settings.learning_rate:g} on "
        f"the spiral's {settings.train_points} training points (width {settings.width}, {settings.norm} "
        f"norm, seed {settings.seed}; both nets from the same initial weights, on the same batches). The "
        f"plain {PLAYGROUND_BLOCKS}-block net ends at training loss {plain['train_loss']:.3f} (accuracy "
        f"{plain['train_accuracy']:.0%}), its residual twin at {residual['train_loss']:.3f} "
        f"({residual['train_accuracy']:.0%}); a net that learned nothing sits at ln 2 = 0.693 (50%). One "
        "seed and one budget: the Playground's depth sweep draws the whole curve, and Start shows them "
        "train.")


# the steps in the order the tour asks them, each holding the function that measures its answer
STEPS = (
    Step("Degradation", "Plain-56 against plain-20, trained with the same recipe: which ends with the higher "
         "training error (on the images it learned from, not the test images)?",
         ("plain-56", "plain-20", "about the same"), "tab=train&show=degradation", degradation),
    Step("Gradients at initialization", "At initialization, how does the gradient at plain-110's first layer "
         "compare with ResNet-110's?", ("vanishing (far smaller)", "similar", "exploding (far larger)"),
         "tab=gradients&depth=110&version=1", gradients),
    Step("Deleting a block", "Delete one block of a trained ResNet-56, then one of its plain twin: "
         "which loses more accuracy?", ("the residual net", "the plain net", "both about the same"),
         "tab=insight", lesion),
    Step("The loss surface", "We step away from the trained weights of ResNet-56 and of its plain twin "
         "along two random filter-normalised directions (out to one filter norm each way, a coarse 5x5 "
         "plane) and measure the test loss: which net keeps more of that plane within 1 nat of the loss "
         "at its trained weights?", ("the residual net", "the plain net", "about the same"),
         "tab=insight", landscape),
    Step("Deeper still", "ResNet-1202 against ResNet-110 on CIFAR-10: does more depth keep helping?",
         ("yes, lower test error", "no, higher test error", "the same"), "tab=architecture&depth=1202",
         depth_limit),
    Step("Your turn", "Train a plain net and its residual twin side by side on the Train tab (tick Race): "
         "which falls behind in training accuracy, by more than the run's own noise?",
         ("the plain net", "the residual net", "neither"), "tab=train", race),
    Step("The prediction forming", "A linear read-out (Alain and Bengio's probe) of each block of ResNet-56, "
         "fitted on 5,000 training images: where does it first come within 5 points of the net's own test "
         "accuracy?", ("stage 1", "stage 2", "the first half of the last stage",
                       "the second half of the last stage"),
         "tab=inside&checkpoint=resnet56_v1&block=stage3_block7&image=3", readout),
    Step("A deep plain net on points", "A 32-block plain net (a block: dense, norm, ReLU, dense, norm) "
         "trained a few hundred steps on the two-armed spiral: will it fit its training points?", FIT_CHOICES,
         "tab=playground&data=spiral&blocks=32", playground_fit),
)
