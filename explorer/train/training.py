"""The one training recipe, used by the CLI, the background jobs and the app alike.

Its parts, in the order a run uses them: `config.TrainConfig` (what the run does),
`pipeline` (the batches it reads), this module (devices and precision, the optimizer and
its schedule, the compiled model, the run and its resume), `callbacks` (what it writes).

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
import time
from pathlib import Path

import keras

from explorer.data.cifar import Dataset, load_cifar10
from explorer.nets.checkpoints import evaluate
from explorer.nets.gradient_probe import kernel_gradient_norms
from explorer.nets.models import ResNet
from explorer.train.averaging import HoldoutEvaluation, keep_better_weights
from explorer.train.callbacks import make_callbacks, save_model_atomic, write_json_atomic, write_phase
from explorer.train.config import PREPARE_STAGES, TrainConfig, steps_per_call
from explorer.train.devices import choose_strategy, device_name, resolve_precision
from explorer.train.pipeline import input_stats, make_datasets, split_training
from explorer.train.run_folder import backup_epoch, check_same_run, run_lock

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
    # Polyak averaging by Keras' own optimizer EMA (see averaging.py)
    average = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum else {}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr, weight_decay=decay, **average)
    return keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=True, weight_decay=decay, **average)


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


    keras.mixed_precision.set_global_policy(resolve_precision(config.precision))
    strategy = choose_strategy()
    replicas = strategy.num_replicas_in_sync if strategy else 1
    with strategy.scope() if strategy else contextlib.nullcontext():
        stats = input_stats(split_training(data, config)[0], config.normalization)
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


# ----------------------------------------------------------------------------- a job prepared ahead

_PREPARED: dict = {}  # the job `prepare` made ready: {"key", "data", "model"}; taken once
_PREPARING: dict = {}  # a preparation between its stages: {"key", "done", "data", "model", ...}


def prepare(config: TrainConfig, stages: int | None = None) -> bool:
    """Builds, compiles and traces the job expected next, so its first step costs only itself
    (a training worker of the engine prepares the page's default job: `compute.job_task`). It
    builds as `train` does
    (the seed set, the data and its streams made, then the model: the same initial weights),
    runs one training step and one test batch so that `fit` and its validation find their
    compiled functions traced, traces the gradient probe, and puts every variable back
    (weights, batch-norm averages, the optimizer's state). The next `train` of this job in
    this process, from scratch, takes the model and its data.

    The work is done in `PREPARE_STAGES`, each at most one pass; a call runs the next `stages`
    of them, so the engine sends a preparation as a warm-up of several short tasks, and a job
    that comes meanwhile waits for one stage, not for all (`Engine.warm_up`). A job that
    comes before the last stage builds its own model; the preparation goes on afterwards.

    Args:
        config: the job expected (its `max_seconds` and `log_points` may differ).
        stages: how many stages to run now; None: all that are left.

    Returns:
        Whether the job is ready.
    """
    key = config.run_fields()
    if _PREPARING.get("key") != key:
        _PREPARED.clear()
        _PREPARING.clear()
        _PREPARING.update(key=key, done=0)
    left = len(PREPARE_STAGES) - _PREPARING["done"]
    for _ in range(left if stages is None else max(0, min(int(stages), left))):
        _prepare_stage(config, _PREPARING, PREPARE_STAGES[_PREPARING["done"]])
        _PREPARING["done"] += 1
    if _PREPARING["done"] < len(PREPARE_STAGES):
        return False
    _PREPARED.update(key=key, data=_PREPARING["data"], model=_PREPARING["model"])
    _PREPARING.clear()
    return True


def _prepare_stage(config: TrainConfig, state: dict, stage: str) -> None:
    """One of `prepare`'s stages, on what the stages before it left in `state`."""
    if stage == "build":
        config.validate()
        keras.utils.set_random_seed(config.seed)
        data = load_cifar10(config.data or None)
        train_ds, test_ds, num_train = make_datasets(data, config)
        model = compile_model(config, data, max(1, num_train // config.batch_size))
        model.optimizer.build(model.trainable_variables)
        initial = [(variable, variable.numpy()) for variable in model.variables + model.optimizer.variables]
        state.update(data=data, model=model, train=train_ds, test=test_ds, initial=initial)
    elif stage == "training step":
        state["model"].fit(state["train"], epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
    elif stage == "test batch":
        state["model"].evaluate(state["test"], steps=1, verbose=0)
    else:
        data, model = state["data"], state["model"]
        kernel_gradient_norms(model, data.x_train[:64], data.y_train[:64])
        for variable, value in state["initial"]:
            variable.assign(value)
        model.traced_ahead = True  # RunLog: its first step is no longer "compiling"


def _take_prepared(config: TrainConfig) -> dict | None:
    """The prepared job's {"data", "model"} if `config` is that job (taken once), else None."""
    if _PREPARED.get("key") != config.run_fields():
        return None
    prepared = dict(_PREPARED)
    _PREPARED.clear()
    return prepared


def train(config: TrainConfig, out_dir, data: Dataset | None = None, verbose: int = 1,
          log=print, callbacks=()) -> dict:
    """Trains (or resumes) a run in `out_dir`.

    Rerunning the same config resumes from the backup; a finished run is only evaluated.

    Args:
        config: the run's options (validated here).
        out_dir: the run's folder (see the module docstring for what is written there).
        data: the dataset; None loads `config.data`.
        verbose: Keras `fit` verbosity.
        log: called with a line of text when the run resumes or was already finished.
        callbacks: Keras callbacks called before the run's own (the engine's Stop).

    Returns:
        {"test_accuracy", "n", ...}: the final model's accuracy on the run's test images
        (the whole test split, or its first `test_subset`; None before any finished epoch)
        and their number; when this call
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
    with run_lock(out):
        return _train_in(out, config, data, verbose, log, list(callbacks))


def _train_in(out: Path, config: TrainConfig, data, verbose, log, extra: list) -> dict:
    saved = out / "config.json"
    check_same_run(saved, config)
    resumed_epoch = backup_epoch(out)
    history_path = out / "history.json"
    finished = len(json.loads(history_path.read_text())["epochs"]) if history_path.exists() else 0
    done = (out / "model.keras").exists() and finished >= config.epochs
    if finished and not resumed_epoch and not done:
        # training from scratch here would cut the history back to nothing
        raise ValueError(f"{out} has a history of {finished} epochs but no backup/ to resume from; "
                         "restore backup/ or choose another --out")


    keras.utils.set_random_seed(config.seed)
    prepared = None if done or resumed_epoch else _take_prepared(config)
    if not done:
        write_phase(out, "loading data", config)
    if data is None:
        data = prepared["data"] if prepared else load_cifar10(config.data or None)
    # written once the data is had: a mistyped --data must not bind the folder to it
    write_json_atomic(saved, config.to_dict())
    train_ds, test_ds, num_train = make_datasets(data, config, initial_epoch=resumed_epoch)
    steps_per_epoch = max(1, num_train // config.batch_size)
    if done and resumed_epoch in (0, config.epochs):
        log(f"already finished ({finished} epochs); evaluating {out / 'model.keras'}")
        return evaluate(out / "model.keras", data=data, limit=config.test_subset or None)
    if resumed_epoch:
        log(f"resumed from epoch {resumed_epoch} (backup in {out / 'backup'})")

    if prepared and prepared["data"] is data:
        model = prepared["model"]  # built after the same seed and streams: the same initial weights
        log("model built and traced ahead by this process (training.prepare)")
    else:
        write_phase(out, "building the model", config)
        model = compile_model(config, data, steps_per_epoch)
    probe_batch = (data.x_train[:64], data.y_train[:64])
    callbacks = make_callbacks(config, out, probe_batch, steps_per_epoch, data.source, resumed_epoch,
                               device=device_name())
    if config.holdout:  # first: the history writer records what it measures
        _, _, x_holdout, y_holdout = split_training(data, config)
        callbacks.insert(0, HoldoutEvaluation(x_holdout, y_holdout, len(data.classes)))
    callbacks = extra + callbacks
    started = time.time()
    model.fit(train_ds, epochs=config.epochs, validation_data=test_ds, validation_batch_size=500,
              steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose,
              shuffle=False)  # the stream shuffles, by epoch (see make_datasets)
    if resumed_epoch >= config.epochs and not (out / "model.keras").exists():
        # a finished run whose model.keras was not kept (say, carried by its backup alone):
        # fit restored the last epoch's weights and trained nothing, so save those
        save_model_atomic(model, out / "model.keras")
    history = json.loads(history_path.read_text()) if history_path.exists() else {"epochs": []}
    finished = len(history["epochs"])
    keep_better_weights(model, out, history, finished=finished >= config.epochs)
    result = _final_test(out, config, data, history, trained=finished > resumed_epoch)
    result.update({"epochs_finished": finished, "epochs": config.epochs,
                   "seconds": round(time.time() - started, 1), "model": "final",
                   "path": str(out / "model.keras")})
    return result


def _final_test(out: Path, config: TrainConfig, data, history: dict, trained: bool) -> dict:
    """The final model's accuracy on the run's own test images (the whole split or its first
    `test_subset`: a page job tests on 2,000 each epoch, and the whole split would tell its
    page nothing more).

    Where this call trained and averaged nothing, model.keras holds the weights its last
    epoch was tested with, on these same images, so that figure is the answer; reloading
    the model to test it again cost 5-6 s of a one-and-a-half-minute page job on 2 cores.
    """
    if not (out / "model.keras").exists():
        return {"test_accuracy": None, "n": 0}
    last = history["epochs"][-1] if history["epochs"] else {}
    if trained and not config.ema_momentum and math.isfinite(last.get("val_accuracy", math.nan)):
        tested = len(data.x_test[: config.test_subset or None])
        return {"test_accuracy": round(last["val_accuracy"], 4), "n": tested}
    return evaluate(out / "model.keras", data=data, limit=config.test_subset or None)
