"""The callbacks of a training run: what it writes while it trains.

`RunLog` keeps history.json (per epoch, plus per-layer gradient norms) and status.json (live
progress for the job manager); `AtomicCheckpoint` keeps model.keras; BackupAndRestore keeps
backup/, which a rerun of the same command resumes from; TensorBoard keeps tb/.
`make_callbacks` puts them in the order they must run: the history is written before the
backup, so a kill between the two never leaves the backup ahead of the history (on resume,
the history is cut back to the backup's epoch).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

from explorer.nets.gradient_probe import kernel_gradient_norms
from explorer.nets.models import tensorflow_backend

# what history.json keeps per logged step (see RunLog.log_step)
STEP_KEYS = ("step", "epoch", "loss", "accuracy", "learning_rate")


def write_json_atomic(path: Path, value) -> None:
    """Writes `value` as JSON to a temporary file, then renames it over `path`: a reader (the
    job manager, the app) never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def save_model_atomic(model, path: Path) -> None:
    """Saves `model` to a temporary .keras file beside `path`, then renames it over `path`:
    a kill mid-write never leaves a broken model behind."""
    partial = path.with_name(path.stem + ".partial.keras")
    model.save(partial)
    os.replace(partial, path)


class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint writing to a temporary file, then renaming: a kill mid-write never
    leaves a broken model.keras behind.

    Args:
        path: the model file kept after each epoch (model.keras).
    """

    def __init__(self, path: Path):
        super().__init__(str(path.with_name(path.stem + ".partial.keras")), save_freq="epoch")
        self.final = path

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        os.replace(self.filepath, self.final)


class RunLog(keras.callbacks.Callback):
    """history.json (per epoch, plus per-layer gradient norms) and status.json (live progress).

    Its arguments are `make_callbacks`'s. On resume it cuts the history back to the backup's
    epoch (`resumed_epoch`): a kill between the history and the backup leaves the history one
    epoch ahead, and that epoch is trained again.
    """

    def __init__(self, config, out: Path, probe_batch, steps_per_epoch: int, data_source: str = "",
                 resumed_epoch: int = 0, device: str = ""):
        super().__init__()
        self.config, self.out, self.probe_batch = config, out, probe_batch
        self.steps_per_epoch, self.data_source = steps_per_epoch, data_source
        self.resumed_epoch, self.device = resumed_epoch, device
        path = out / "history.json"
        self.history = json.loads(path.read_text()) if path.exists() else {}
        self.history.setdefault("epochs", [])
        self.history.setdefault("grad_norms", {"layers": [], "steps": [], "norms": []})
        # running means within the epoch, at the ends of compiled calls (config.log_points)
        self.history.setdefault("steps", {key: [] for key in STEP_KEYS})
        self.log_every = max(1, steps_per_epoch // config.log_points) if config.log_points else 0
        self.last_logged_step = None
        self.last_write = 0.0  # the first step point is written at once: the page is waiting
        self.writer = None  # per-layer gradient norms and TensorBoard need TensorFlow
        if tensorflow_backend():
            import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

            self.writer = tf.summary.create_file_writer(str(out / "tb" / "gradients"))
        self.started = time.time()
        self.last_status = 0.0
        self.last_grad_step = None

    def on_train_begin(self, logs=None):
        initial = self.resumed_epoch
        self.history["epochs"] = self.history["epochs"][:initial]
        steps = self.history["grad_norms"]["steps"]
        keep = sum(1 for s in steps if s <= initial * self.steps_per_epoch)
        for key in ("steps", "norms"):
            self.history["grad_norms"][key] = self.history["grad_norms"][key][:keep]
        points = self.history["steps"]
        keep = sum(1 for s in points["step"] if s <= initial * self.steps_per_epoch)
        for key in STEP_KEYS:
            points[key] = points.get(key, [])[:keep]
        self.epoch = initial

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_start = time.time()
        # until this process's first compiled call returns, its time goes to tracing
        traced = self.last_status or getattr(self.model, "traced_ahead", False)  # see training.prepare
        self.status(0, "running", phase="training" if traced else
                    "compiling: the first steps trace the training graph")

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the last step of each steps_per_execution chunk, uncapped.
        step = self.epoch * self.steps_per_epoch + min(batch + 1, self.steps_per_epoch)
        # the first step (the page is waiting), every `log_every`, and each epoch's last: the
        # running mean there is the epoch's own figure
        due = self.last_logged_step is None or step - self.last_logged_step >= self.log_every \
            or step % self.steps_per_epoch == 0
        if self.log_every and logs and due:
            self.last_logged_step = step
            self.log_step(step, logs)
        every = self.config.grad_every
        if every and self.writer and (self.last_grad_step is None or step - self.last_grad_step >= every):
            self.last_grad_step = step
            self.log_gradients(step)
        if time.time() - self.last_status > 1.0:
            self.status(batch + 1, "running")

    def log_step(self, step: int, logs: dict):
        """Keeps the epoch's running mean of loss and accuracy at `step` (Keras' batch logs
        average over the epoch so far), and writes the history at most once a second."""
        points = self.history["steps"]
        lr = self.model.optimizer.learning_rate
        for key, value in (("step", step), ("epoch", round(step / self.steps_per_epoch, 4)),
                           ("loss", round(float(logs.get("loss", math.nan)), 5)),
                           ("accuracy", round(float(logs.get("accuracy", math.nan)), 5)),
                           ("learning_rate", float(np.asarray(lr)))):
            points[key].append(value)
        if time.time() - self.last_write > 1.0:
            self.last_write = time.time()
            write_json_atomic(self.out / "history.json", self.history)

    def log_gradients(self, step: int):
        """Measures the per-layer gradient norms on the probe batch into the history and
        TensorBoard."""
        import tensorflow as tf  # deferred: Keras' JAX backend runs without TensorFlow installed

        names, norms = kernel_gradient_norms(self.model, *self.probe_batch)
        grads = self.history["grad_norms"]
        grads["layers"] = names
        grads["steps"].append(step)
        grads["norms"].append([round(float(n), 8) for n in norms])
        with self.writer.as_default(step=step):
            for name, norm in zip(names, norms):
                tf.summary.scalar(f"grad_norm/{name}", norm)

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
            # measured by averaging.HoldoutEvaluation when the run holds images out
            **{key: logs[key] for key in ("holdout_accuracy", "holdout_accuracy_ema") if key in logs},
        })
        write_json_atomic(self.out / "history.json", self.history)
        self.status(self.steps_per_epoch, "running", finished_epoch=epoch + 1)
        if self.config.max_seconds and time.time() - self.started > self.config.max_seconds:
            self.model.stop_training = True  # at an epoch end: nothing half-done is kept

    def on_train_end(self, logs=None):
        finished = len(self.history["epochs"])
        state = "done" if finished >= self.config.epochs else "stopped"
        self.status(self.steps_per_epoch if finished else 0, state, finished_epoch=finished)

    def on_test_begin(self, logs=None):
        if getattr(self, "epoch_start", None) is not None:  # the epoch's test pass, not a later one
            self.status(self.steps_per_epoch, "running", phase="testing")

    def status(self, step, state, finished_epoch=None, phase="training"):
        """Writes status.json: the state, what the run is doing (`phase`), the epoch and step,
        and the ETA from the median epoch so far (or, in the first epoch, from its steps so
        far)."""
        self.last_status = time.time()
        done = self.history["epochs"]
        per_epoch = np.median([e["seconds"] for e in done]) if done else None
        elapsed = time.time() - getattr(self, "epoch_start", time.time())
        if per_epoch is None and step:
            per_epoch = elapsed / step * self.steps_per_epoch
        epoch_done = finished_epoch if finished_epoch is not None else self.epoch
        remaining = (self.config.epochs - epoch_done) * per_epoch - (
            0 if finished_epoch is not None else min(elapsed, per_epoch or 0)) if per_epoch else None
        write_json_atomic(self.out / "status.json", {
            "state": state, "phase": phase, "device": self.device, "data": self.data_source,
            "epoch": epoch_done,
            # the epoch the step count belongs to (1-based): the one just finished at an epoch
            # end, else the one running, so a page never reads "epoch 2/2, step 7/7" for epoch 1
            "current_epoch": finished_epoch if finished_epoch is not None else self.epoch + 1,
            "epochs": self.config.epochs, "step": step, "steps_per_epoch": self.steps_per_epoch,
            "eta_seconds": None if remaining is None else max(0.0, round(remaining, 1)),
            "time": time.time()})


def write_phase(out: Path, phase: str, config) -> None:
    """status.json before the training loop starts: what the run is doing meanwhile
    ("loading data", "building the model"), so a page has more to say than "running"."""
    write_json_atomic(out / "status.json", {
        "state": "running", "phase": phase, "epoch": 0, "current_epoch": 1, "epochs": config.epochs,
        "step": 0, "steps_per_epoch": None, "eta_seconds": None, "time": time.time()})


def make_callbacks(config, out: Path, probe_batch, steps_per_epoch, data_source="", resumed_epoch=0,
                   device=""):
    """The training callbacks: history/status writer, checkpoint, backup and TensorBoard.

    Args:
        config: the run's options; uses `epochs`, `grad_every` and `max_seconds`.
        out: the run's folder, where history.json, status.json, model.keras, backup/ and tb/
            are written.
        probe_batch: (images, labels) the per-layer gradient norms are measured on, every
            `config.grad_every` steps.
        steps_per_epoch: training steps per epoch, for step counts and the ETA.
        data_source: what the data was loaded from, shown in status.json.
        resumed_epoch: epochs already finished according to the backup (0 for a new run).
        device: what trains, shown in status.json (see `devices.device_name`).

    Returns:
        The list of Keras callbacks, in the order they must run.
    """
    log = RunLog(config, out, probe_batch, steps_per_epoch, data_source, resumed_epoch, device)
    return [
        log,
        AtomicCheckpoint(out / "model.keras"),
        # kept after the end too: a stopped or capped run resumes from it later
        keras.callbacks.BackupAndRestore(str(out / "backup"), double_checkpoint=True,
                                         delete_checkpoint=False),
    ] + ([keras.callbacks.TensorBoard(str(out / "tb"), update_freq="epoch", profile_batch=0)]
         if tensorflow_backend() else [])
