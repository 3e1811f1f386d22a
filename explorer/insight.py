"""Insight lab: the lesion study (Veit et al. 2016) on a trained checkpoint.

Deleting a block at test time means removing its residual branch F(x): a residual block
keeps its shortcut (identity, or the projection where shapes change), a plain block passes
its input straight through, which is only possible where the block keeps the shape.
"""

from __future__ import annotations

import numpy as np

from .data import load_cifar10


def _accuracy(model, x, y, drop, batch_size=250) -> float:
    import tensorflow as tf

    correct = 0
    for i in range(0, len(x), batch_size):
        probs = model.forward(tf.constant(x[i: i + batch_size]), training=False, drop_blocks=drop)
        correct += int(np.sum(np.argmax(probs, -1) == y[i: i + batch_size]))
    return correct / max(len(x), 1)


def lesion(checkpoint, source: str | None = None, samples: int = 1000, progress=None) -> dict:
    """Test accuracy with each block deleted in turn.

    Returns {"baseline", "blocks", "accuracy", "downsampling", "residual", "n"}; accuracy is
    None for plain downsampling blocks, whose input cannot pass through.
    """
    from .training import load_checkpoint

    if not 1 <= int(samples) <= 100_000:
        raise ValueError(f"samples must be between 1 and 100000, got {samples}")
    report = progress or (lambda fraction, text: None)
    model = load_checkpoint(checkpoint)
    data = load_cifar10(source)
    x, y = data.x_test[: int(samples)], data.y_test[: int(samples)]
    baseline = _accuracy(model, x, y, ())
    residual = model.spec.residual
    names, accuracy, downsampling = [], [], []
    for i, block in enumerate(model.blocks):
        report(i / len(model.blocks), f"deleting {block.name}")
        names.append(block.name)
        downsampling.append(block.plan.downsamples)
        if block.plan.downsamples and not residual:
            accuracy.append(None)
            continue
        accuracy.append(round(_accuracy(model, x, y, (i,)), 4))
    return {"baseline": round(baseline, 4), "blocks": names, "accuracy": accuracy,
            "downsampling": downsampling, "residual": residual, "n": len(y),
            "model": model.spec.name}
