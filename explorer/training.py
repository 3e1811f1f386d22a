"""The one training recipe, used by the CLI, the background jobs and the app alike.

`train(config, out_dir)` writes into `out_dir`:
    model.keras      the model after the last finished epoch (final, not best: picking the
                     best epoch on the test set would flatter the reported accuracy)
    config.json      the TrainConfig, so the run can be repeated and its model rebuilt
    history.json     per epoch: loss, accuracy, val_accuracy, learning_rate, seconds; plus the
                     per-layer gradient norms logged every `grad_every` steps
    status.json      live progress (epoch, step, ETA) for the job manager
    tb/              TensorBoard event files (scalars and per-layer gradient norms)
    backup/          BackupAndRestore state; rerunning the same command resumes from it
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import Dataset, load_cifar10
from .specs import from_dict, make_spec

MAX_EPOCHS = 500  # refuse absurd requests at the boundary


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
    epochs: int = 30
    batch_size: int = 128  # the paper's batch
    optimizer: str = "sgd"  # "sgd" (Nesterov momentum) or "adam" (the tutorial's)
    schedule: str = "cosine"  # "cosine" (linear warm-up, then cosine to 0) or "step"
    learning_rate: float = 0.1  # peak rate for SGD; the tutorial's Adam uses 1e-3
    warmup_epochs: float = 2.0  # linear warm-up length for the cosine schedule
    momentum: float = 0.9
    weight_decay: float = 0.0  # decoupled decay on top of the model's L2 1e-4 kernel penalty
    label_smoothing: float = 0.1
    precision: str = "auto"  # "auto" (GPU: fp16; CPU with bf16 instructions: bf16; else fp32)
    steps_per_execution: int = 10  # fewer Python round trips per step
    # --- bookkeeping
    grad_every: int = 50  # steps between per-layer gradient-norm logs (0: off)
    seed: int = 0
    max_seconds: float = 0.0  # stop at the first epoch end after this wall time (0: none)

    def spec(self):
        return make_spec(self.depth, self.version, residual=self.residual, shortcut=self.shortcut)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return from_dict(cls, values, "training options")

    def validate(self) -> TrainConfig:
        """Raises ValueError before any work for anything out of range."""
        self.spec()
        checks = [
            (_whole(self.epochs) and 1 <= self.epochs <= MAX_EPOCHS,
             f"epochs must be between 1 and {MAX_EPOCHS}, got {self.epochs!r}"),
            (_whole(self.subset) and 0 <= self.subset <= 10_000_000,
             f"subset must be 0 (all) or a positive number of images, got {self.subset!r}"),
            (_whole(self.batch_size) and 1 <= self.batch_size <= 4096,
             f"batch size must be between 1 and 4096, got {self.batch_size!r}"),
            (self.optimizer in ("sgd", "adam"), f"optimizer must be sgd or adam, got {self.optimizer!r}"),
            (self.schedule in ("cosine", "step"), f"schedule must be cosine or step, got {self.schedule!r}"),
            (self.normalization in ("per_channel", "per_pixel_mean"),
             f"normalization must be per_channel or per_pixel_mean, got {self.normalization!r}"),
            (_real(self.learning_rate) and 0 < self.learning_rate < 10, f"learning rate out of range: {self.learning_rate!r}"),
            (_real(self.label_smoothing) and 0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (self.precision in ("auto", "float32", "mixed_bfloat16", "mixed_float16"),
             f"unknown precision {self.precision!r}"),
            (_whole(self.test_subset) and self.test_subset >= 0,
             f"test subset must be 0 (all) or a positive number, got {self.test_subset!r}"),
            (_whole(self.grad_every) and self.grad_every >= 0, "grad_every must be 0 or more steps"),
            (_whole(self.cutout) and 0 <= self.cutout < 32, "cutout must be 0 to 31 pixels"),
            (_whole(self.seed) and 0 <= self.seed < 2**32, f"seed must be a whole number from 0 to {2**32 - 1}"),
            (_whole(self.steps_per_execution) and 1 <= self.steps_per_execution <= 1000,
             "steps_per_execution must be between 1 and 1000"),
            (_real(self.max_seconds) and 0 <= self.max_seconds < 1e7, f"max seconds must be 0 (none) or positive, got {self.max_seconds}"),
            (_real(self.warmup_epochs) and 0 <= self.warmup_epochs <= MAX_EPOCHS, "warm-up epochs must be 0 or more (capped at a fifth of the run)"),
            (_real(self.momentum) and 0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (_real(self.weight_decay) and 0 <= self.weight_decay < 1, "weight decay must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real(value) -> bool:
    # a number, not text or a bool: a config file's "0.1" must be refused, not compared
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Fields that describe how long to run, not what is trained: a resumed run may change them.
BOOKKEEPING = ("max_seconds",)


# ----------------------------------------------------------------------------- pipeline


def augment(images, crop_padding: int = 4, cutout: int = 0, seed=None):
    """Random crop, horizontal flip and optional cutout, vectorized over a uint8 batch.

    Random crop with `crop_padding` zero pixels each side, horizontal flip (half the images)
    and, when `cutout` > 0, one grey square of that side per image; one op per batch, not
    per image.

    Args:
        images: a (batch, size, size, channels) uint8 tensor.
        crop_padding: zero pixels added on each side before a random size x size window is cut.
        cutout: side of the mid-grey (128) square put at a random center of each image,
            clipped at the border; 0 for none.
        seed: a shape-[2] integer tensor: the same seed gives the same crops, flips and
            squares (stateless random ops); None draws one from the global generator.

    Returns:
        A tensor of the same shape and dtype.
    """
    import tensorflow as tf

    if seed is None:
        seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)
    crop_seed, flip_seed, cutout_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    batch = tf.shape(images)[0]
    size = images.shape[1]
    padded = tf.pad(images, [[0, 0], [crop_padding] * 2, [crop_padding] * 2, [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], crop_seed, 0, 2 * crop_padding + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(size)[None]
    cols = offsets[:, 1:] + tf.range(size)[None]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([batch, 1, 1, 1], flip_seed) < 0.5
    out = tf.where(flip, tf.reverse(out, axis=[2]), out)
    if cutout:
        # DeVries & Taylor (2017): a cutout x cutout square at a random center, clipped at the
        # border; filled with mid-grey, near the data mean, as their zeros after normalization
        starts = tf.random.stateless_uniform([batch, 2], cutout_seed, 0, size, dtype=tf.int32) - cutout // 2
        grid = tf.range(size)[None]
        in_rows = (grid >= starts[:, :1]) & (grid < starts[:, :1] + cutout)
        in_cols = (grid >= starts[:, 1:]) & (grid < starts[:, 1:] + cutout)
        hole = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])[..., None]
        out = tf.where(hole, tf.fill(tf.shape(out), tf.constant(128, out.dtype)), out)
    return out


def augment_numpy(images: np.ndarray, crop_padding: int = 4, cutout: int = 0,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """`augment` in NumPy, for Keras backends other than TensorFlow (see `make_datasets`).

    The same operations with the same distributions (crop offsets uniform in
    [0, 2 * crop_padding], flip with probability 1/2, the cutout square's corner uniform in
    [-cutout // 2, size - cutout // 2)); the draws come from `rng`, not TensorFlow's
    generators, so the two give different (equally likely) batches for one seed.

    Args:
        images: a (batch, size, size, channels) uint8 array.
        crop_padding: zero pixels added on each side before a random size x size window is cut.
        cutout: side of the mid-grey (128) square; 0 for none.
        rng: the generator to draw from; None for a fresh, unseeded one.

    Returns:
        A new array of the same shape and dtype.
    """
    rng = rng if rng is not None else np.random.default_rng()
    batch, size = images.shape[0], images.shape[1]
    pad = crop_padding
    padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    offsets = rng.integers(0, 2 * pad + 1, size=(batch, 2))
    rows = offsets[:, :1] + np.arange(size)[None]
    cols = offsets[:, 1:] + np.arange(size)[None]
    out = padded[np.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(batch) < 0.5
    out[flip] = out[flip, :, ::-1]
    if cutout:
        starts = rng.integers(0, size, size=(batch, 2)) - cutout // 2
        grid = np.arange(size)[None]
        in_rows = (grid >= starts[:, :1]) & (grid < starts[:, :1] + cutout)
        in_cols = (grid >= starts[:, 1:]) & (grid < starts[:, 1:] + cutout)
        out[in_rows[:, :, None] & in_cols[:, None, :]] = 128
    return out


def _tensorflow_backend() -> bool:
    import keras

    return keras.backend.backend() == "tensorflow"


def _numpy_datasets(x_train, y_train, x_test, y_test, num_classes, config, initial_epoch):
    """`make_datasets` for Keras backends without tf.data: a generator over the same
    epochs, each drawn from NumPy generators seeded by (seed, epoch) and (seed, epoch, batch),
    so a resumed run again sees what an uninterrupted one does."""
    eye = np.eye(num_classes, dtype=np.float32)
    size = config.batch_size
    drop_remainder = len(x_train) >= size

    def stream():
        for epoch in range(initial_epoch, config.epochs):
            order = np.random.default_rng([config.seed, epoch]).permutation(len(x_train))
            stop = len(order) - len(order) % size if drop_remainder else len(order)
            for step, start in enumerate(range(0, stop, size)):
                index = order[start: start + size]
                rng = np.random.default_rng([config.seed, epoch, step + 1])
                yield augment_numpy(x_train[index], 4, config.cutout, rng), eye[y_train[index]]

    return stream(), (x_test, eye[y_test]), len(x_train)


def make_datasets(data: Dataset, config: TrainConfig, initial_epoch: int = 0):
    """tf.data pipelines of (uint8 images, one-hot labels); the model normalizes its input.

    Every random draw of the training stream (shuffle, crop, flip, cutout) is a stateless
    function of (`config.seed`, epoch, batch), so a run resumed at `initial_epoch` sees the
    very batches an uninterrupted run sees from there on. A stateful shuffle and stateful
    random ops restart their sequences in a new process: a resumed run replayed its first
    epochs' images instead (BackupAndRestore restores weights and optimizer, not the
    pipeline's generators).

    Args:
        data: the loaded dataset.
        config: the run's options; uses `subset`, `test_subset`, `batch_size`, `cutout`,
            `seed` and `epochs`.
        initial_epoch: epochs already done; the stream starts with the next one.

    Returns:
        (train, test, number of training images): train yields the batches of epochs
        `initial_epoch + 1` to `config.epochs` in turn, each a new shuffle of all training
        images in batches of `batch_size` (the last partial batch dropped when there is a
        full one), augmented; test is in order, in batches of 500, unaugmented. Under a
        Keras backend other than TensorFlow (JAX on a GPU machine without TensorFlow, say),
        train is a Python generator and test a tuple of arrays (see `_numpy_datasets`).
    """
    num_classes = len(data.classes)
    x_train, y_train = data.x_train, data.y_train
    if config.subset:
        x_train, y_train = x_train[: config.subset], y_train[: config.subset]
    x_test, y_test = data.x_test, data.y_test
    if config.test_subset:
        x_test, y_test = x_test[: config.test_subset], y_test[: config.test_subset]
    if not _tensorflow_backend():
        return _numpy_datasets(x_train, y_train, x_test, y_test, num_classes, config, initial_epoch)
    import tensorflow as tf

    onehot = lambda x, y: (x, tf.one_hot(y, num_classes))
    images, labels = tf.constant(x_train), tf.constant(y_train)
    run_seed = tf.constant([config.seed, 0], tf.int64)
    drop_remainder = len(x_train) >= config.batch_size

    def epoch_batches(epoch):
        seed = tf.random.experimental.stateless_fold_in(run_seed, epoch)
        order = tf.argsort(tf.random.stateless_uniform([len(x_train)], seed))

        def load(step, index):
            batch_seed = tf.random.experimental.stateless_fold_in(seed, step + 1)
            return augment(tf.gather(images, index), 4, config.cutout, batch_seed), tf.gather(labels, index)

        return (tf.data.Dataset.from_tensor_slices(order)
                .batch(config.batch_size, drop_remainder=drop_remainder).enumerate()
                .map(load, num_parallel_calls=tf.data.AUTOTUNE))

    train = (tf.data.Dataset.range(initial_epoch, config.epochs).flat_map(epoch_batches)
             .map(onehot).prefetch(tf.data.AUTOTUNE))
    test = (tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(500)
            .map(onehot).prefetch(tf.data.AUTOTUNE))
    return train, test, len(x_train)


def input_stats(x_train: np.ndarray, normalization: str) -> dict:
    """Statistics of the training images in pixel units, stored inside the model.

    Args:
        x_train: the (N, H, W, 3) training images.
        normalization: "per_pixel_mean" (the tutorial's: subtract the mean image, no
            scaling); anything else gives the per-channel mean and std.

    Returns:
        {"mean", "std"} as lists rounded to 3 places: one value per channel in each; for
        "per_pixel_mean", an H x W x 3 nested mean and a std of [1.0, 1.0, 1.0].
    """
    x = x_train.astype(np.float32)
    if normalization == "per_pixel_mean":  # the tutorial: subtract the mean image, no scaling
        return {"mean": x.mean(axis=0).round(3).tolist(), "std": [1.0, 1.0, 1.0]}
    return {"mean": x.mean(axis=(0, 1, 2)).round(3).tolist(),
            "std": x.std(axis=(0, 1, 2)).round(3).tolist()}


# ----------------------------------------------------------------------------- devices


def choose_strategy():
    """TF_CONFIG set: MultiWorkerMirroredStrategy; several GPUs (or several logical CPU
    devices, for tests): MirroredStrategy; otherwise the default strategy. None under other
    Keras backends (one device)."""
    if not _tensorflow_backend():
        return None
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    return tf.distribute.get_strategy()


def device_name() -> str:
    """What trains here, for the page and the logs: "GPU: <name>" (x N for several) or
    "CPU (<n> cores)"; under another Keras backend, its name in brackets after that."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if gpus:
            return f"GPU: {gpus[0].device_kind}" + (f" x{len(gpus)}" if len(gpus) > 1 else "") + " (jax)"
        return f"CPU ({os.cpu_count()} cores) (jax)"
    if backend != "tensorflow":
        return f"{backend}"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}" + (f" x{len(gpus)}" if len(gpus) > 1 else "")
    return f"CPU ({os.cpu_count()} cores)"


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """"auto": fp16 mixed precision on a GPU; bf16 on a CPU with native bf16 instructions
    (with the fused batch norm, bench/train_throughput.py measured bf16 at 1.48x fp32
    here, where it had been no faster with Keras' unfused batch norm); fp32 otherwise."""
    if precision != "auto":
        return precision
    from .models import has_gpu

    if has_gpu():
        return "mixed_float16"
    return "mixed_bfloat16" if _cpu_has_bf16() else "float32"


# ----------------------------------------------------------------------------- recipe


def make_optimizer(config: TrainConfig, steps_per_epoch: int):
    """The recipe's optimizer with its learning-rate schedule.

    Args:
        config: the run's options; uses `optimizer`, `schedule`, `learning_rate`,
            `warmup_epochs`, `momentum`, `weight_decay` and `epochs`.
        steps_per_epoch: optimizer steps per epoch, to turn epochs into steps.

    Returns:
        Nesterov SGD (Adam for `optimizer="adam"`) with decoupled weight decay when set, on
        a cosine schedule to 0 after a linear warm-up from a tenth of the rate (at most a
        fifth of the run), or on the tutorial's steps (x0.1 at 40%, 60% and 80% of the run,
        x0.5 at 90%).
    """
    import keras

    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "cosine":
        # Short runs (the app's) warm up for at most a fifth of their steps.
        warmup = min(int(config.warmup_epochs * steps_per_epoch), int(0.2 * total))
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate * (0.1 if warmup else 1.0),
            decay_steps=total - warmup, warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup)
    else:  # the tutorial's steps at 80, 120, 160, 180 of 200 epochs, scaled to `epochs`
        bounds = [int(f * total) for f in (0.4, 0.6, 0.8, 0.9)]
        values = [config.learning_rate * f for f in (1, 1e-1, 1e-2, 1e-3, 0.5e-3)]
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(bounds, values)
    decay = config.weight_decay or None
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=decay)
    return keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=True, weight_decay=decay)


def _write_json_atomic(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def make_callbacks(config, out: Path, probe_batch, steps_per_epoch, data_source="", resumed_epoch=0):
    """The training callbacks: history/status writer, checkpoint, backup and TensorBoard.

    BackupAndRestore, an atomic ModelCheckpoint, TensorBoard, and the history/status
    writer; the history is written first, so a kill between the two never leaves the backup
    ahead of the history (on resume the history is cut back to the backup's epoch).

    Args:
        config: the run's options; uses `epochs`, `grad_every` and `max_seconds`.
        out: the run's folder, where history.json, status.json, model.keras, backup/ and tb/
            are written.
        probe_batch: (images, labels) the per-layer gradient norms are measured on, every
            `config.grad_every` steps.
        steps_per_epoch: training steps per epoch, for step counts and the ETA.
        data_source: what the data was loaded from, shown in status.json.
        resumed_epoch: epochs already finished according to the backup (0 for a new run).

    Returns:
        The list of Keras callbacks, in the order they must run.
    """
    import keras

    from .probes import kernel_gradient_norms

    tf = None
    if _tensorflow_backend():
        import tensorflow as tf

    class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
        """ModelCheckpoint writing to a temporary file, then renaming: a kill mid-write
        never leaves a broken model.keras behind."""

        def __init__(self, path: Path):
            super().__init__(str(path.with_name(path.stem + ".partial.keras")), save_freq="epoch")
            self.final = path

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            os.replace(self.filepath, self.final)

    class History(keras.callbacks.Callback):
        """history.json (per epoch plus gradient norms) and status.json (live progress)."""

        def __init__(self):
            super().__init__()
            path = out / "history.json"
            self.history = json.loads(path.read_text()) if path.exists() else {}
            self.history.setdefault("epochs", [])
            self.history.setdefault("grad_norms", {"layers": [], "steps": [], "norms": []})
            # per-layer gradient norms and TensorBoard need TensorFlow (see `logs_gradients`)
            self.writer = tf.summary.create_file_writer(str(out / "tb" / "gradients")) if tf else None
            self.started = time.time()
            self.last_status = 0.0
            self.last_grad_step = None

        def on_train_begin(self, logs=None):
            initial = resumed_epoch
            self.history["epochs"] = self.history["epochs"][:initial]
            steps = self.history["grad_norms"]["steps"]
            keep = sum(1 for s in steps if s <= initial * steps_per_epoch)
            for key in ("steps", "norms"):
                self.history["grad_norms"][key] = self.history["grad_norms"][key][:keep]
            self.epoch = initial

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epoch_start = time.time()
            self.status(0, "running")

        def on_train_batch_end(self, batch, logs=None):
            # Keras reports the last step of each steps_per_execution chunk, uncapped.
            step = self.epoch * steps_per_epoch + min(batch + 1, steps_per_epoch)
            if config.grad_every and self.writer and (self.last_grad_step is None
                                      or step - self.last_grad_step >= config.grad_every):
                self.last_grad_step = step
                names, norms = kernel_gradient_norms(self.model, *probe_batch)
                grads = self.history["grad_norms"]
                grads["layers"] = names
                grads["steps"].append(step)
                grads["norms"].append([round(float(n), 8) for n in norms])
                with self.writer.as_default(step=step):
                    for name, norm in zip(names, norms):
                        tf.summary.scalar(f"grad_norm/{name}", norm)
            if time.time() - self.last_status > 1.0:
                self.status(batch + 1, "running")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = self.model.optimizer.learning_rate
            self.history["epochs"].append({
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", math.nan)),
                "accuracy": float(logs.get("accuracy", math.nan)),
                "val_loss": float(logs.get("val_loss", math.nan)),
                "val_accuracy": float(logs.get("val_accuracy", math.nan)),
                "learning_rate": float(np.asarray(lr)),
                "seconds": round(time.time() - self.epoch_start, 2),
            })
            _write_json_atomic(out / "history.json", self.history)
            self.status(steps_per_epoch, "running", finished_epoch=epoch + 1)
            if config.max_seconds and time.time() - self.started > config.max_seconds:
                self.model.stop_training = True  # at an epoch end: nothing half-done is kept

        def on_train_end(self, logs=None):
            finished = len(self.history["epochs"])
            state = "done" if finished >= config.epochs else "stopped"
            self.status(steps_per_epoch if finished else 0, state, finished_epoch=finished)

        def status(self, step, state, finished_epoch=None):
            self.last_status = time.time()
            done = self.history["epochs"]
            per_epoch = np.median([e["seconds"] for e in done]) if done else None
            elapsed = time.time() - getattr(self, "epoch_start", time.time())
            if per_epoch is None and step:
                per_epoch = elapsed / step * steps_per_epoch
            epoch_done = finished_epoch if finished_epoch is not None else self.epoch
            remaining = (config.epochs - epoch_done) * per_epoch - (
                0 if finished_epoch is not None else min(elapsed, per_epoch or 0)) if per_epoch else None
            _write_json_atomic(out / "status.json", {
                "state": state, "device": device, "data": data_source, "epoch": epoch_done, "epochs": config.epochs,
                "step": step, "steps_per_epoch": steps_per_epoch,
                "eta_seconds": None if remaining is None else max(0.0, round(remaining, 1)),
                "time": time.time()})

    device = device_name()
    checkpoint = AtomicCheckpoint(out / "model.keras")
    return [
        History(),
        checkpoint,
        # kept after the end too: a stopped or capped run resumes from it later
        keras.callbacks.BackupAndRestore(str(out / "backup"), double_checkpoint=True,
                                         delete_checkpoint=False),
    ] + ([keras.callbacks.TensorBoard(str(out / "tb"), update_freq="epoch", profile_batch=0)] if tf else [])


def compile_model(config: TrainConfig, data: Dataset, steps_per_epoch: int):
    """The recipe's model, optimizer, loss and metrics, under the chosen tf.distribute strategy.

    Also sets Keras' global mixed-precision policy from `config.precision`.

    Args:
        config: the run's options (model, precision, normalization, subset, optimizer).
        data: the dataset; its training images give the input statistics, its classes the
            size and names of the head.
        steps_per_epoch: optimizer steps per epoch, for the learning-rate schedule.

    Returns:
        A built, compiled `ResNet`.
    """
    import keras

    from .models import ResNet

    keras.mixed_precision.set_global_policy(resolve_precision(config.precision))
    strategy = choose_strategy()
    replicas = strategy.num_replicas_in_sync if strategy else 1
    with strategy.scope() if strategy else contextlib.nullcontext():
        stats = input_stats(data.x_train[: config.subset or None], config.normalization)
        # own data may have any number of classes: the head and the names follow the data
        spec = dataclasses.replace(config.spec(), num_classes=len(data.classes))
        model = ResNet(spec, input_stats=stats, class_names=list(data.classes))
        model.build((None, 32, 32, 3))
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
            metrics=["accuracy"],
            # Keras 3.15's multi-step loop fails under MirroredStrategy ("You must feed a value
            # for placeholder tensor ... while/cond/Placeholder"): one step per call there.
            steps_per_execution=(steps_per_call(config.steps_per_execution, steps_per_epoch)
                                 if replicas == 1 else 1),
            # XLA measured slower on this CPU; JAX runs nothing uncompiled at speed
            jit_compile=keras.backend.backend() == "jax")
    return model


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


def bench_train(config: TrainConfig, steps: int, data: Dataset | None = None) -> dict:
    """Images per second of the recipe's real training step (pipeline included).

    Measured after a warm-up of two compiled calls (see `steps_per_call`) that covers tracing.

    Args:
        config: the run's options (validated here).
        steps: training steps to time, 1 to 100000; rounded down to a whole number of
            compiled calls (at least one).
        data: the dataset; None loads `config.data`.

    Returns:
        {"img_per_s", "steps", "batch_size", "seconds", "precision", "model", "spec",
        "device"}: "spec" is the spec's slug (shortcut included, as in `resnet20_v1_zeropad`).

    Raises:
        ValueError: `config` or `steps` is out of range, or the data cannot be had.
    """
    import keras

    config.validate()
    if not 1 <= steps <= 100_000:
        raise ValueError(f"steps must be between 1 and 100000, got {steps}")
    keras.utils.set_random_seed(config.seed)
    data = data if data is not None else load_cifar10(config.data or None)
    train_ds, _, num_train = make_datasets(data, config)
    steps_per_epoch = max(1, num_train // config.batch_size)
    model = compile_model(config, data, steps_per_epoch)
    stream = train_ds.repeat()
    per_call = model.steps_per_execution  # see steps_per_call
    model.fit(stream, steps_per_epoch=2 * per_call, epochs=1, verbose=0)
    steps = max(per_call, steps // per_call * per_call)
    start = time.perf_counter()
    model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return {"img_per_s": round(steps * config.batch_size / seconds, 1), "steps": steps,
            "batch_size": config.batch_size, "seconds": round(seconds, 2),
            "precision": resolve_precision(config.precision), "model": config.spec().name,
            "spec": config.spec().slug, "device": device_name()}


def train(config: TrainConfig, out_dir, data: Dataset | None = None, verbose: int = 1,
          log=print) -> dict:
    """Trains (or resumes) a run in `out_dir`.

    Rerunning the same config resumes from the backup; a finished run is only evaluated.

    Args:
        config: the run's options (validated here).
        out_dir: the run's folder (see the module docstring for what is written there).
        data: the dataset; None loads `config.data`.
        verbose: Keras `fit` verbosity.
        log: called with a line of text when the run resumes or was already finished.

    Returns:
        {"test_accuracy", "n", ...}: the final model's accuracy on the whole test split
        (None before any finished epoch) and the number of test images; when this call
        trained, also "epochs_finished", "epochs", "seconds", "model" and "path".

    Raises:
        ValueError: `config` is out of range, `out_dir` cannot be written, holds a
            different run, is being trained by another process, has a history but no
            backup or a damaged backup, or the data cannot be had.
    """
    config.validate()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".writable"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"cannot write to output folder {out}: {err.strerror or err}") from None
    with _run_lock(out):
        return _train_in(out, config, data, verbose, log)


@contextlib.contextmanager
def _run_lock(out: Path):
    """Holds an exclusive lock on the run folder: two trainers resuming one backup would
    overwrite each other's backup, model and history. The system drops it when the process
    dies, `kill -9` included."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(f"another process is training in {out}; stop it first or choose "
                             "another --out") from None
        yield


def _backup_epoch(out: Path) -> int:
    """Epochs finished according to BackupAndRestore's metadata (0 without a backup)."""
    meta = out / "backup" / "training_metadata.json"
    if not meta.exists():
        return 0
    try:
        epoch = json.loads(meta.read_text())["epoch"]
        if not _whole(epoch) or epoch < 0:
            raise TypeError
        return epoch
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{meta} is damaged ({type(err).__name__}); the run cannot resume from it: "
                         "copy backup/*.bkp over the files they back up (the epoch before), or "
                         "choose another --out") from None


def _train_in(out: Path, config: TrainConfig, data, verbose, log) -> dict:
    saved = out / "config.json"
    if saved.exists():
        previous = TrainConfig.from_dict(json.loads(saved.read_text()))
        there, here = previous.to_dict(), config.to_dict()
        differ = [key for key in here if key not in BOOKKEEPING and there.get(key) != here[key]]
        if differ:  # name the fields: a relative --data from another folder reads as a new run
            details = "; ".join(f"{key}: {there.get(key)!r} there, {here[key]!r} here" for key in differ[:4])
            raise ValueError(f"{out} holds a different run ({saved}: {details}); resume it with the same "
                             "options or choose another --out")
    resumed_epoch = _backup_epoch(out)
    history_path = out / "history.json"
    finished = len(json.loads(history_path.read_text())["epochs"]) if history_path.exists() else 0
    done = (out / "model.keras").exists() and finished >= config.epochs
    if finished and not resumed_epoch and not done:
        # training from scratch here would cut the history back to nothing
        raise ValueError(f"{out} has a history of {finished} epochs but no backup/ to resume from; "
                         "restore backup/ or choose another --out")

    import keras

    keras.utils.set_random_seed(config.seed)
    data = data if data is not None else load_cifar10(config.data or None)
    # written once the data is had: a mistyped --data must not bind the folder to it
    _write_json_atomic(saved, config.to_dict())
    train_ds, test_ds, num_train = make_datasets(data, config, initial_epoch=resumed_epoch)
    steps_per_epoch = max(1, num_train // config.batch_size)
    if done and resumed_epoch in (0, config.epochs):
        log(f"already finished ({finished} epochs); evaluating {out / 'model.keras'}")
        return evaluate(out / "model.keras", data=data)
    if resumed_epoch:
        log(f"resumed from epoch {resumed_epoch} (backup in {out / 'backup'})")

    model = compile_model(config, data, steps_per_epoch)
    probe_batch = (data.x_train[:64], data.y_train[:64])
    callbacks = make_callbacks(config, out, probe_batch, steps_per_epoch, data.source, resumed_epoch)
    started = time.time()
    model.fit(train_ds, epochs=config.epochs, validation_data=test_ds, validation_batch_size=500,
              steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose,
              shuffle=False)  # the stream shuffles, by epoch (see make_datasets)
    if resumed_epoch >= config.epochs and not (out / "model.keras").exists():
        # a finished run whose model.keras was not kept (say, carried by its backup alone):
        # fit restored the last epoch's weights and trained nothing, so save those
        partial = out / "model.partial.keras"
        model.save(partial)
        os.replace(partial, out / "model.keras")
    history = json.loads(history_path.read_text()) if history_path.exists() else {"epochs": []}
    finished = len(history["epochs"])
    result = evaluate(out / "model.keras", data=data) if (out / "model.keras").exists() else \
        {"test_accuracy": None, "n": 0}
    result.update({"epochs_finished": finished, "epochs": config.epochs,
                   "seconds": round(time.time() - started, 1), "model": "final",
                   "path": str(out / "model.keras")})
    return result


def evaluate(checkpoint, source: str | None = None, data: Dataset | None = None,
             limit: int | None = None) -> dict:
    """Test accuracy of a `.keras` checkpoint on the test split of `source`.

    Args:
        checkpoint: path of the `.keras` file.
        source: the data source (see `data.load_cifar10`); None for the default. Not used
            when `data` is given.
        data: an already loaded dataset.
        limit: evaluate on the first `limit` test images only; None for all.

    Returns:
        {"test_accuracy", "n"}: the accuracy as a fraction rounded to 4 places, and the
        number of images.

    Raises:
        ValueError: there is no file at `checkpoint`, it is not a loadable ResNet
            checkpoint, or the data cannot be had.
    """
    if limit is not None and not (_whole(limit) and limit >= 1):
        raise ValueError(f"limit must be a positive number of test images, got {limit!r}")
    model = load_checkpoint(checkpoint)  # before the data: a missing file is refused at once
    data = data if data is not None else load_cifar10(source)
    x, y = data.x_test[:limit], data.y_test[:limit]
    probs = predict(model, x)
    return {"test_accuracy": round(float(np.mean(probs.argmax(-1) == y)), 4), "n": len(y)}


def load_checkpoint(path):
    """Loads a `.keras` checkpoint (see `models.load_model`).

    Args:
        path: the checkpoint file.

    Returns:
        The `ResNet` it holds.

    Raises:
        ValueError: there is no file at `path`, or it is not a loadable ResNet checkpoint.
    """
    from .models import load_model

    if not Path(path).is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        return load_model(path)
    except Exception as err:  # noqa: BLE001 - corrupt zip, foreign file, unknown classes...
        raise ValueError(f"{Path(path).name} is not a loadable ResNet checkpoint "
                         f"({type(err).__name__})") from None


def predict(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Probabilities for uint8 images, in batches, through a compiled call.

    The tf.function is kept on the model, so later calls reuse its trace.

    Args:
        model: a `ResNet`.
        images: raw pixels in [0, 255], (N, *spec.input_shape).
        batch_size: images per call.

    Returns:
        An (N, num_classes) float32 array of softmax probabilities.
    """
    if not _tensorflow_backend():
        import keras

        outs = [keras.ops.convert_to_numpy(model(images[i: i + batch_size], training=False))
                for i in range(0, len(images), batch_size)]
        return np.concatenate(outs).astype(np.float32) if outs else \
            np.zeros((0, model.spec.num_classes), np.float32)
    import tensorflow as tf

    fn = getattr(model, "_explorer_predict", None)
    if fn is None:
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        model._explorer_predict = fn
    outs = [fn(tf.constant(images[i: i + batch_size])).numpy()
            for i in range(0, len(images), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, model.spec.num_classes), np.float32)
