"""Weight averaging, and the held-out images that decide whether a run keeps it.

With `TrainConfig.ema_momentum` set, Keras' optimizer keeps an exponential moving average of
the trainable weights (`use_ema`; Polyak averaging). Whether the average beats the weights
themselves is a question for data the run does not train on and the report is not measured
on: `TrainConfig.holdout` keeps the last images of the training set out of training
(`pipeline.split_training`). `HoldoutEvaluation` measures both on them after every epoch,
into the history; `keep_better_weights` decides at the end of the run.

The average covers the trainable weights only (Keras' choice): batch normalization's moving
statistics stay those of the raw weights. The held-out comparison measures the model as it
would be shipped, statistics included.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from explorer.train.callbacks import save_model_atomic, write_json_atomic

EVALUATION_BATCH = 500


class HoldoutEvaluation(keras.callbacks.Callback):
    """After each epoch, the accuracy on the held-out training images of the weights
    (`holdout_accuracy`) and, with an averaging optimizer, of their average
    (`holdout_accuracy_ema`, measured through Keras' `SwapEMAWeights`), put into the epoch's
    logs so the history keeps them. Runs before the history writer.

    Args:
        images: the held-out uint8 images (N, 32, 32, 3).
        labels: their integer labels (N,).
        num_classes: the model's number of classes, for the one-hot targets.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int):
        super().__init__()
        self.images = images
        self.targets = np.eye(num_classes, dtype=np.float32)[labels]

    def _accuracy(self, callbacks=()) -> float:
        result = self.model.evaluate(self.images, self.targets, batch_size=EVALUATION_BATCH, verbose=0,
                                     callbacks=list(callbacks), return_dict=True)
        return round(float(result["accuracy"]), 4)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs["holdout_accuracy"] = self._accuracy()
        if getattr(self.model.optimizer, "use_ema", False):
            # swaps the average in for the evaluation and back after it
            logs["holdout_accuracy_ema"] = self._accuracy([keras.callbacks.SwapEMAWeights()])


def keep_better_weights(model, out: Path, history: dict, finished: bool) -> dict | None:
    """After `fit`, keeps the weight average as model.keras where it was better on the
    held-out images at the last epoch; writes the decision to `weights.json`.

    Keras' `fit` ends by writing the average over the weights (`finalize_variable_values`),
    so `model` holds the average here, while model.keras holds the last epoch's raw weights.

    Args:
        model: the trained model, as `fit` left it.
        out: the run's folder.
        history: the run's history (its last epoch holds both held-out accuracies).
        finished: whether the run trained all its epochs: a stopped run keeps its raw
            weights, which its backup resumes from.

    Returns:
        The decision {"weights": "ema" or "raw", "holdout_accuracy",
        "holdout_accuracy_ema", "epoch"}, or None when the run averaged nothing or held
        nothing out.
    """
    if not getattr(model.optimizer, "use_ema", False) or not history.get("epochs"):
        return None
    last = history["epochs"][-1]
    raw, averaged = last.get("holdout_accuracy"), last.get("holdout_accuracy_ema")
    if raw is None or averaged is None or not finished:
        return None
    choice = {"weights": "ema" if averaged > raw else "raw", "holdout_accuracy": raw,
              "holdout_accuracy_ema": averaged, "epoch": last["epoch"]}
    if choice["weights"] == "ema":
        save_model_atomic(model, out / "model.keras")
    write_json_atomic(out / "weights.json", choice)
    return choice
