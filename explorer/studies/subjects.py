"""The net a measurement of paths, signals or gradients looks at: a checkpoint, or a fresh net
at initialization (seeded, shared with the gradient lab's twins), and how it is run.

A checkpoint runs as it would serve, in inference mode (batch norm with its moving averages);
a fresh net runs in training mode (batch statistics), since its moving averages have not been
estimated yet, as the papers measured theirs at initialization. Both run inside a
`keras.StatelessScope`, so a measurement never moves a batch-norm average of a shared model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from explorer.core.checks import checkpoint_file, one_of
from explorer.core.specs import MAX_DEPTH, MAX_SEED, MAX_VERSION, ResNetSpec, make_spec, whole_number

KINDS = ("checkpoint", "init")  # what a request measures: a checkpoint, or a fresh net at initialization


@dataclass(frozen=True)
class Subject:
    """One net to measure.

    Args:
        spec: its architecture.
        checkpoint: the `.keras` file it is loaded from; None for a fresh net at initialization.
        seed: seed of a fresh net's initial weights (see `twins.twins`).
    """

    spec: ResNetSpec
    checkpoint: Path | None = None
    seed: int = 0

    @property
    def at_init(self) -> bool:
        return self.checkpoint is None

    @property
    def name(self) -> str:
        """"ResNet-56 v1" for a checkpoint, "ResNet-56 v1 at initialization" for a fresh net."""
        return self.spec.name + (" at initialization" if self.at_init else "")

    def model(self):
        """The built `ResNet`: the shared cached copy of a checkpoint (see `checkpoints.load`),
        or the seeded fresh net (see `twins.twins`, which builds a residual net and its plain
        twin with the same weights)."""
        if self.checkpoint is not None:
            from explorer.nets.checkpoints import load  # deferred: importing this module must not load PIL

            return load(self.checkpoint)
        from explorer.studies.twins import twins  # deferred: importing this module must not load TensorFlow

        residual, plain = twins(self.spec.depth, self.spec.version, self.seed, self.spec.shortcut)
        return residual if self.spec.residual else plain

    def twin(self) -> Subject:
        """The fresh net's twin with the shortcuts flipped, with the same initial weights."""
        return Subject(self.spec.twin(), None, self.seed)


def subject_kind(kind) -> str:
    """`kind` if it is one of `KINDS` ("checkpoint" or "init"); raises ValueError otherwise."""
    return one_of(kind, KINDS, "net")


def fresh(depth, version=1, seed=0, plain=False) -> Subject:
    """A fresh CIFAR-10 net at initialization, from a request's raw values.

    Args:
        depth: weighted layers (int, float or text), 1 to `specs.MAX_DEPTH`, valid for `version`.
        version: 1 or 2.
        seed: seed of the initial weights, 0 to `specs.MAX_SEED`.
        plain: the plain twin instead of the residual net.

    Raises:
        ValueError: a value is malformed or out of range.
    """
    depth = whole_number(depth, "depth", 1, MAX_DEPTH)
    version = whole_number(version, "version", 1, MAX_VERSION)
    return Subject(make_spec(depth, version, residual=not plain), None,
                   whole_number(seed, "seed", 0, MAX_SEED))


def trained(path) -> Subject:
    """The net of a `.keras` checkpoint, read from its config without loading it.

    Raises:
        ValueError: there is no such file, or it is not a ResNet checkpoint of this app.
    """
    # deferred: importing this module must not load TensorFlow
    from explorer.nets.models import checkpoint_spec

    path = checkpoint_file(path)
    return Subject(checkpoint_spec(path), path)


def run(subject: Subject, model, pixels, **forward):
    """`model.forward(pixels, **forward)` in the subject's mode (training mode at
    initialization), inside a `keras.StatelessScope`."""
    import keras  # deferred: importing this module must not load Keras

    with keras.StatelessScope():
        return model.forward(pixels, training=subject.at_init, **forward)


def test_images(samples: int, source: str | None = None):
    """(images, labels, source, notice): the first `samples` test images of a source (see
    `data.load_cifar10`; None for the default), uint8 and int64."""
    from explorer.data.cifar import load_cifar10  # deferred: importing this module must not load PIL

    data = load_cifar10(source)
    return data.x_test[:samples], data.y_test[:samples], data.source, data.notice
