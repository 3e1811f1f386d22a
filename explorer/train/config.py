"""The training config: everything one run does, as one frozen dataclass.

A `TrainConfig` is saved as the run's `config.json`, so a run can be repeated, resumed and its
model rebuilt. `validate` checks every field against its named bound below; `from_request`
reads the loosely typed values a page or an API call sends (numbers as text, flags as
"true") against the same bounds. Nothing else in the package checks a training option.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from explorer.core.specs import (
    MAX_DEPTH,
    MAX_SEED,
    MAX_VERSION,
    as_bool,
    from_dict,
    is_whole,
    make_spec,
    whole_number,
)

MAX_EPOCHS = 500  # refuse absurd requests at the boundary
# Training images a run may keep (`subset`) or test on per epoch (`test_subset`). Larger
# than CIFAR-10's 50,000 on purpose: an own data folder may hold more, and a subset larger
# than the data simply keeps all of it.
MAX_SUBSET = 10_000_000
MAX_BATCH_SIZE = 4096
MAX_CUTOUT = 31  # a cutout square must leave some of the 32x32 image
MAX_STEPS_PER_EXECUTION = 1000
MAX_GRAD_EVERY = 1_000_000  # steps between gradient-norm logs; more is the same as off
MAX_LOG_POINTS = 10_000  # per epoch; more than its steps is the same as every step
MAX_LEARNING_RATE = 10.0  # exclusive: a peak rate at or above it only diverges
MAX_RUN_SECONDS = 1e7  # exclusive; about 116 days

# The range of every whole-number field, both ends included: `validate` and `from_request`
# read their bounds here, and nowhere else.
WHOLE_BOUNDS = {
    "depth": (1, MAX_DEPTH), "version": (1, MAX_VERSION),
    "subset": (0, MAX_SUBSET), "test_subset": (0, MAX_SUBSET), "cutout": (0, MAX_CUTOUT),
    "epochs": (1, MAX_EPOCHS), "batch_size": (1, MAX_BATCH_SIZE),
    "steps_per_execution": (1, MAX_STEPS_PER_EXECUTION),
    "grad_every": (0, MAX_GRAD_EVERY), "seed": (0, MAX_SEED), "holdout": (0, MAX_SUBSET),
    "log_points": (0, MAX_LOG_POINTS),
}

# Fields that describe how long to run, not what is trained: a resumed run may change them.
BOOKKEEPING = ("max_seconds", "log_points")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run does, saved as the run's `config.json`: the network, the
    data and augmentation, the optimization and the bookkeeping. `validate` checks it;
    resuming a run requires the same values (bar `BOOKKEEPING`)."""

    # --- the model (see specs.ResNetSpec)
    depth: int = 20  # 6n+2 for v1, 9n+2 for v2
    version: int = 1  # 1: basic post-activation blocks, 2: pre-activation bottlenecks
    residual: bool = True  # False trains the plain twin (no shortcuts)
    shortcut: str = "projection"  # "projection" or "zeropad" where shapes change
    # --- data
    data: str = ""  # source for data.load_cifar10; "" means $EXPLORER_DATA, else keras
    subset: int = 0  # use only the first N training images (0: all)
    test_subset: int = 0  # evaluate on the first N test images each epoch (0: all)
    normalization: str = "per_channel"  # or "per_pixel_mean" (the tutorial's)
    cutout: int = 0  # side of a random square filled with grey (128) per image (0: off)
    # --- optimization
    epochs: int = 30  # passes over the training images
    batch_size: int = 128  # the paper's batch
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum) or "adam" (the tutorial's)
    schedule: str = "cosine"  # "cosine" (linear warm-up, then cosine to 0) or "step"
    learning_rate: float = 0.1  # peak rate for SGD; the tutorial's Adam uses 1e-3
    warmup_epochs: float = 2.0  # linear warm-up length for the cosine schedule
    momentum: float = 0.9  # SGD's Nesterov momentum (Adam ignores it)
    weight_decay: float = 0.0  # decoupled decay on top of the model's L2 1e-4 kernel penalty
    label_smoothing: float = 0.1  # share of each target spread evenly over all classes
    precision: str = "auto"  # "auto" (GPU: fp16; CPU with bf16 instructions: bf16; else fp32)
    steps_per_execution: int = 10  # fewer Python round trips per step
    # Polyak averaging: Keras' optimizer EMA of the weights (`use_ema`) with this decay per
    # step, 0 for off. At 0.999 the average spans about 1,000 steps (3 epochs of 45,000).
    ema_momentum: float = 0.0
    # The last N training images (after `subset`) are kept out of training: the run's own
    # validation set. Each epoch both the weights and their average are measured on it, and
    # the run keeps the average only where it is better there, never chosen on the test set.
    holdout: int = 0
    # --- bookkeeping
    # running means of the training loss and accuracy logged per epoch (0: per epoch only),
    # so a curve moves during an epoch; taken at the ends of compiled calls (Keras reports
    # nothing within one), so at most steps per epoch / the calls' steps (see steps_per_call)
    log_points: int = 20
    grad_every: int = 50  # steps between per-layer gradient-norm logs (0: off)
    seed: int = 0  # seeds the initial weights, the shuffle and every augmentation draw
    max_seconds: float = 0.0  # stop at the first epoch end after this wall time (0: none)

    def spec(self):
        return make_spec(self.depth, self.version, residual=self.residual, shortcut=self.shortcut)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def run_fields(self) -> dict:
        """The fields that make two configs the same run (all bar `BOOKKEEPING`)."""
        return {key: value for key, value in self.to_dict().items() if key not in BOOKKEEPING}

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return from_dict(cls, values, "training options")

    @classmethod
    def from_request(cls, **fields) -> TrainConfig:
        """A validated config from the raw values a page or an API call sends.

        Whole numbers may come as int, float or text ("56", 56.0) and are checked against
        `WHOLE_BOUNDS` as they are read; flags as bool or text ("true", "no"); decimals as
        numbers or text. Fields not given keep their defaults.

        Args:
            **fields: field name -> raw value, such as depth="56", residual="false", epochs=3.0.

        Returns:
            The validated `TrainConfig`.

        Raises:
            ValueError: an unknown field, or a value that is malformed or out of range; the
                message names the field (e.g. "epochs must be a whole number from 1 to 500").
        """
        kinds = {field.name: field.type for field in dataclasses.fields(cls)}
        unknown = set(fields) - set(kinds)
        if unknown:
            raise ValueError(f"unknown training options: {sorted(unknown)}")
        return cls(**{name: _read(name, kinds[name], value) for name, value in fields.items()}).validate()

    def _within(self, name: str) -> bool:
        low, high = WHOLE_BOUNDS[name]
        value = getattr(self, name)
        return is_whole(value) and low <= value <= high

    def validate(self) -> TrainConfig:
        """Raises ValueError before any work for anything out of range."""
        self.spec()  # depth, version, residual and shortcut, with the nearest valid depths
        checks = [
            (self._within("epochs"), f"epochs must be between 1 and {MAX_EPOCHS}, got {self.epochs!r}"),
            (self._within("subset"),
             (f"subset must be 0 (all) or a positive number of images up to {MAX_SUBSET}, "
              f"got {self.subset!r}")),
            (self._within("batch_size"),
             f"batch size must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size!r}"),
            (self.optimizer in ("sgd", "adam"), f"optimizer must be sgd or adam, got {self.optimizer!r}"),
            (self.schedule in ("cosine", "step"), f"schedule must be cosine or step, got {self.schedule!r}"),
            (self.normalization in ("per_channel", "per_pixel_mean"),
             f"normalization must be per_channel or per_pixel_mean, got {self.normalization!r}"),
            (_real(self.learning_rate) and 0 < self.learning_rate < MAX_LEARNING_RATE,
             f"learning rate out of range: {self.learning_rate!r}"),
            (_real(self.label_smoothing) and 0 <= self.label_smoothing < 1,
             "label smoothing must be in [0, 1)"),
            (self.precision in ("auto", "float32", "mixed_bfloat16", "mixed_float16"),
             f"unknown precision {self.precision!r}"),
            (self._within("test_subset"),
             (f"test subset must be 0 (all) or a positive number up to {MAX_SUBSET}, "
              f"got {self.test_subset!r}")),
            (self._within("grad_every"), f"grad_every must be 0 or more steps, at most {MAX_GRAD_EVERY}"),
            (self._within("log_points"), f"log points must be 0 to {MAX_LOG_POINTS} per epoch"),
            (self._within("cutout"), f"cutout must be 0 to {MAX_CUTOUT} pixels"),
            (self._within("seed"), f"seed must be a whole number from 0 to {MAX_SEED}"),
            (self._within("steps_per_execution"),
             f"steps_per_execution must be between 1 and {MAX_STEPS_PER_EXECUTION}"),
            (_real(self.max_seconds) and 0 <= self.max_seconds < MAX_RUN_SECONDS,
             f"max seconds must be 0 (none) or positive, got {self.max_seconds}"),
            (_real(self.warmup_epochs) and 0 <= self.warmup_epochs <= MAX_EPOCHS,
             "warm-up epochs must be 0 or more (capped at a fifth of the run)"),
            (_real(self.momentum) and 0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (_real(self.weight_decay) and 0 <= self.weight_decay < 1, "weight decay must be in [0, 1)"),
            (_real(self.ema_momentum) and 0 <= self.ema_momentum < 1,
             f"EMA momentum must be 0 (off) or in (0, 1), got {self.ema_momentum!r}"),
            (self._within("holdout"),
             (f"holdout must be 0 (none) or a number of training images up to {MAX_SUBSET}, "
              f"got {self.holdout!r}")),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self


def steps_per_call(most: int, steps_per_epoch: int) -> int:
    """The steps Keras runs per compiled call: the largest divisor of `steps_per_epoch` up
    to `most`.

    Keras runs whole calls. On the training stream, which runs on from one epoch into the
    next (see `make_datasets`), a call that crossed an epoch's end would take the next
    epoch's batches: 39 steps an epoch in calls of 10 trained 40, 40, 37 and left the last
    epoch with none.

    Args:
        most: `TrainConfig.steps_per_execution`.
        steps_per_epoch: training steps in one epoch.

    Returns:
        A divisor of `steps_per_epoch` between 1 and `most`.
    """
    return max(d for d in range(1, min(most, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


# A job started from the page shows at least this many points on its curves, and this many
# columns in its gradient heatmap, where its images allow it (see `page_job`).
PAGE_JOB_POINTS = 24
PAGE_GRADIENT_COLUMNS = 20
PAGE_POINTS_PER_EPOCH = 40  # at most about this many a long epoch: the page polls the history
MIN_PAGE_BATCH = 32  # a tiny subset trains in smaller batches, down to this, for more steps
CIFAR_TRAINING_IMAGES = 50_000  # what a subset of 0 (all) means for the page's jobs
# What preparing a job ahead does (`training.prepare`), one pass at most each: the engine sends
# them as the steps of a warm-up (`compute.jobs`), so a job that comes waits for one of them
PREPARE_STAGES = ("build", "training step", "test batch", "gradient probe")
# The Train tab's single job: about a minute on 2 CPU cores that learns (README, "Measured");
# a training worker of the engine prepares it ahead (`compute.job_task.prepare_job`)
PAGE_DEFAULTS = {"depth": 20, "version": 1, "plain": False, "epochs": 2, "subset": 4000}
PAGE_TEST_IMAGES = 2000  # a page's job tests on the first 2,000 test images each epoch


def page_request(depth, version, plain, epochs, subset, source: str = "") -> TrainConfig:
    """The job a page or an API call asks for, from its raw values, as the job manager runs it.

    Args:
        depth, version, plain, epochs, subset: the request's raw values (see
            `TrainConfig.from_request`); `plain` True trains the plain twin.
        source: the data source the job reads (see `data.resolve_source`); "" for the default.

    Returns:
        The validated config, sized for the page (see `page_job`), tested on the first
        `PAGE_TEST_IMAGES` test images, seed 0.

    Raises:
        ValueError: a value is malformed or out of range.
    """
    config = TrainConfig.from_request(depth=depth, version=version, residual=not as_bool(plain, "plain"),
                                      epochs=epochs, subset=subset, test_subset=PAGE_TEST_IMAGES, seed=0)
    return page_job(dataclasses.replace(config, data=source))


def page_job(config: TrainConfig) -> TrainConfig:
    """A page's job, so that a brief one is visibly alive, and soon.

    One step per compiled call: the first curve point is logged when the first call returns,
    and Keras traces its multi-step loop's step twice: for ResNet-20 on 2 cores a first call
    of 3 steps ended 16.4 s after `fit` started, one of 1 step 13.3 s, and a step cost about
    the same either way, 0.63 and 0.67 s (medians of 2, `python bench/steps_per_call.py`).
    The running means are logged at the first step, at every epoch's last step and every
    `steps_per_epoch // log_points` steps between (every step where an epoch has at most
    40); a subset too small
    for 24 steps of 128 images trains in smaller batches (down to 32). The gradient norms,
    a forward and backward pass of their own on 64 images, are measured at the first step
    and as seldom after it as still gives 20 columns. A default page job (4,000 images,
    2 epochs) keeps batches of 128: 62 steps, each logged, gradients every 3 steps.

    Args:
        config: the job as requested.

    Returns:
        The config with `batch_size`, `steps_per_execution`, `grad_every` and `log_points` set.
    """
    images = config.subset or CIFAR_TRAINING_IMAGES
    if config.holdout:
        images = max(1, images - config.holdout)
    batch = min(config.batch_size, max(MIN_PAGE_BATCH, images * config.epochs // PAGE_JOB_POINTS))
    steps_per_epoch = max(1, images // batch)
    total = steps_per_epoch * config.epochs
    # gradients at the first step and every `between` steps after it: 1 + (total - 1) // between
    between = max(1, (total - 1) // (PAGE_GRADIENT_COLUMNS - 1))
    return dataclasses.replace(config, batch_size=batch, steps_per_execution=1, grad_every=between,
                               log_points=min(steps_per_epoch, PAGE_POINTS_PER_EPOCH)).validate()


def _real(value) -> bool:
    # a number, not text or a bool: a config file's "0.1" must be refused, not compared
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read(name: str, kind: str, value):
    """One raw request value as the field's type (`kind`, the annotation's text)."""
    label = name.replace("_", " ")
    if kind == "int":
        return whole_number(value, label, *WHOLE_BOUNDS[name])
    if kind == "bool":
        return as_bool(value, label)
    if kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{label} must be a number, got {str(value)[:40]!r}")
        return number
    if not isinstance(value, str):
        raise ValueError(f"{label} must be text, got {str(value)[:40]!r}")
    return value
