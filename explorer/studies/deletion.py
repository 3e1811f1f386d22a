"""One block of a checkpoint deleted: its accuracy with and without the block's residual
branch, beside the lesion study's median deletion (Veit et al. 2016), for the Architecture
tab's block panel and its `/delete_block` API.

The numbers are the lesion study's (`lesion.lesion`: the same code and the same first test
images), taken from the lesion overlay's study when it has been measured (`overlays`).
"""

from __future__ import annotations

import functools

import numpy as np

from explorer.core.checks import file_stamp, one_of
from explorer.core.limits import LESION_BUDGET_CPU, check_budget, lesion_samples, relative_cost
from explorer.core.plans import plan
from explorer.core.specs import ResNetSpec
from explorer.data.cifar import load_cifar10
from explorer.nets.checkpoints import load
from explorer.studies.lesion import lesioned_accuracy
from explorer.studies.overlays import OVERLAY_SAMPLES, checkpoint_net, measured_lesion


def check_block(spec: ResNetSpec, block) -> int:
    """The index of a block a user names, checked before any work.

    Args:
        spec: the net the block belongs to.
        block: its name, "stage2_block3".

    Returns:
        Its index, input to output.

    Raises:
        ValueError: no block of the net has this name, or it is a plain block that changes
            shape (its input cannot stand in for its output).
    """
    blocks = plan(spec).blocks
    names = [b.name for b in blocks]
    index = names.index(one_of(block, names, "block", f"{spec.name}'s blocks, {names[0]} to {names[-1]}"))
    if not spec.residual and blocks[index].downsamples:
        shapes = "x".join(map(str, blocks[index].in_shape)), "x".join(map(str, blocks[index].out_shape))
        raise ValueError(f"{block} cannot be deleted: in a plain net it changes the shape ({shapes[0]} to "
                         f"{shapes[1]}), so its input cannot stand in for its output (a residual net keeps "
                         "its shortcut there)")
    return index


@functools.lru_cache(maxsize=32)
def _deletion(path: str, stamp: int, samples: int, source, index: int) -> tuple[float, float, int]:
    """(accuracy with the block, without its residual branch, images): the lesion's code and images."""
    model = load(path)
    data = load_cifar10(source)
    x, y = data.x_test[:samples], data.y_test[:samples]
    intact, without = lesioned_accuracy(model, x, y, ()), lesioned_accuracy(model, x, y, (index,))
    return round(intact, 4), round(without, 4), len(y)


def delete_block(checkpoint_path, block, samples=OVERLAY_SAMPLES, source=None, budget=True) -> dict:
    """A checkpoint's test accuracy with and without one block's residual branch.

    The numbers are the lesion study's (`lesion.lesion`) for the same images: taken from it
    when it has been measured for this checkpoint and these images, with its median beside.

    Args:
        checkpoint_path: a `.keras` checkpoint (the app's come from `pretrained.resolve`).
        block: the block's name, "stage2_block3" (see `check_block`).
        samples: test images (the first ones), see `limits.lesion_samples`.
        source: the data source of the test split; None for the default.
        budget: refuse a request over this host's budget; False for the command line.

    Returns:
        {"block", "accuracy_with", "accuracy_without", "cost", "n", "model", "net"}, and where the
        lesion study is known, "lesion_median_without" and "lesion_median_cost": the median
        accuracy over every block deleted in turn, and what it costs.

    Raises:
        ValueError: the block is unknown or cannot be deleted, `samples` is out of range or
            over budget, or the checkpoint cannot be loaded.
    """
    spec = checkpoint_net(checkpoint_path)
    index = check_block(spec, block)
    samples = lesion_samples(samples)
    if budget:
        check_budget(2 * samples * relative_cost([spec]), LESION_BUDGET_CPU,
                     f"deleting {block} of {spec.name} on {samples} images", "use fewer images")
    path, stamp = file_stamp(checkpoint_path)
    study = measured_lesion(path, stamp, samples, source, compute=False)
    if study is None:
        with_block, without, n = _deletion(path, stamp, samples, source, index)
    else:
        with_block, without, n = study["baseline"], study["accuracy"][index], study["n"]
    out = {"block": block, "accuracy_with": with_block, "accuracy_without": without,
           "cost": round(with_block - without, 4), "n": n, "model": spec.name,
           "net": spec.to_config()}
    if study is not None:
        median = float(np.median([a for a in study["accuracy"] if a is not None]))
        out.update(lesion_median_without=round(median, 4), lesion_median_cost=round(with_block - median, 4))
    return out
