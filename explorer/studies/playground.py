"""The residual playground's trainer: a plain net and its residual twin (issue #34) trained side
by side on points in the plane, from the same initial weights on the same batches, in one
XLA-compiled TensorFlow step; and the snapshot a page draws (losses, accuracies, per-block
gradient norms, the decision boundary over the plane).

A caller (the command line, a test, an engine task that streams snapshots to the page) makes a
`PairTrainer`, then asks it for snapshots: `run(steps)` trains that many steps and returns one,
`run_for(seconds)` trains for that long, `live` yields a snapshot every half second;
`reset()` goes back to step 0 (the same initial weights, the same batches again) without
compiling again. A snapshot is a plain dict of numbers and small NumPy arrays: it pickles, so
it crosses Dask unchanged. One trainer serves one caller at a time.

Why one step for both twins: one optimizer over both nets' weights is two optimizers (SGD's
momentum and Adam's moments are per weight), the batch is gathered once, and one compiled call
a step halves the per-call overhead. Why XLA: Keras' `fit` leaves it off on a CPU, and these
tiny layers gain most from fusing. `python bench/playground.py`: a 32-block, width-16 pair,
a snapshot every 25 steps, ran 2.5 to 3.6 times the pair steps a second of `fit` on the two
nets here (two runs, a shared and busy 2-core machine).
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from explorer.core.playground_settings import SGD_MOMENTUM, PlaygroundSettings, read_steps
from explorer.data.points import GRID_EXTENT, GRID_SIZE, features, grid_points, make_points
from explorer.nets.playground_net import build_net

NETS = ("residual", "plain")  # a snapshot's keys of the twins, the residual net first


def make_optimizer(settings: PlaygroundSettings):
    """The settings' optimizer: SGD with momentum `SGD_MOMENTUM`, or Adam."""
    if settings.optimizer == "sgd":
        return keras.optimizers.SGD(settings.learning_rate, momentum=SGD_MOMENTUM)
    return keras.optimizers.Adam(settings.learning_rate)


def twins(settings: PlaygroundSettings, nets=NETS) -> dict:
    """The nets named in `nets` ("residual", "plain"), built with the settings' seed: the same
    initial weights, checked (the plain twin has the residual net's weights, no more)."""
    built = {name: build_net(len(settings.features), settings.blocks, settings.width, settings.norm,
                             residual=name == "residual", zero_init=settings.init == "zero",
                             seed=settings.seed) for name in nets}
    first = built[nets[0]].get_weights()
    for name in nets[1:]:
        if any(not np.array_equal(a, b) for a, b in zip(first, built[name].get_weights())):
            raise RuntimeError("the twins' initial weights differ")  # a seeded initializer ignored its seed
    return built


def _logistic_loss(labels, logits):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


class PairTrainer:
    """The twins of `settings` and their training, step by step.

    Args:
        settings: the points, the nets and the training (`PlaygroundSettings`).
        nets: which twins to train, ("residual", "plain") by default; one of them alone trains
            that net exactly as the pair trains it (same weights, same batches), at twice the
            speed (the command line's single net).

    Attributes:
        settings, points (the `PointSet`), nets (name -> Keras model), step (steps trained).
    """

    def __init__(self, settings: PlaygroundSettings, nets=NETS):
        if not nets or any(name not in NETS for name in nets) or len(set(nets)) != len(nets):
            raise ValueError(f"nets must be some of {', '.join(NETS)}, each once; got {nets!r}")
        self.settings = settings
        self.points = make_points(settings.data, settings.points, settings.noise, settings.train_fraction,
                                  settings.seed)
        self.nets = twins(settings, tuple(nets))
        self._models = list(self.nets.values())
        self._trained = [v for model in self._models for v in model.trainable_variables]
        # where each net's blocks' weights are in `_trained`: their gradients' norms per block
        self._block_positions = [[i for i, v in enumerate(self._trained)
                                  if any(v is w for w in model.get_layer("blocks").trainable_variables)]
                                 for model in self._models]
        self._x_train = tf.constant(features(self.points.x_train, settings.features))
        self._y_train = tf.constant(self.points.y_train[:, None].astype(np.float32))
        seen = [features(xy, settings.features)
                for xy in (self.points.x_train, self.points.x_test, grid_points())]
        self._x_all = tf.constant(np.concatenate(seen))  # what a snapshot looks at: training, test, grid
        self._y_all = np.concatenate([self.points.y_train, self.points.y_test]).astype(np.float32)
        self.optimizer = make_optimizer(settings)
        self.optimizer.build(self._trained)
        self._start = [model.get_weights() for model in self._models]
        self._optimizer_start = [v.numpy() for v in self.optimizer.variables]
        self._step_fn = tf.function(self._train_step, jit_compile=True)
        self._look_fn = tf.function(self._look, jit_compile=True)
        self.compile_seconds = 0.0
        self.capacity = settings.blocks  # the most blocks `use_blocks` may ask for
        self.reset()

    # ------------------------------------------------------------------------- state

    def reset(self) -> None:
        """Back to step 0: the initial weights, the optimizer's initial state, the first batch
        again. Nothing is compiled again."""
        for model, weights in zip(self._models, self._start):
            model.set_weights(weights)
            model.get_layer("blocks").use_blocks(self.settings.blocks)
        for variable, value in zip(self.optimizer.variables, self._optimizer_start):
            variable.assign(value)
        self._rng = np.random.default_rng([self.settings.seed, 1])  # the batches' own stream
        self._order, self._next = np.empty(0, np.int32), 0
        self.step, self.seconds = 0, 0.0
        self._losses, self._norms = [], []

    def use_blocks(self, blocks: int) -> None:
        """Makes the twins `blocks`-block nets (1 to `capacity`) and resets: the same program
        runs them, nothing is compiled again (the depth sweep's way through its depths). The
        first blocks start from the same weights at any depth (`playground_net.BlockwiseGlorot`),
        so the nets are those `PairTrainer(settings.replace(blocks=blocks))` would build."""
        if not 1 <= int(blocks) <= self.capacity:
            raise ValueError(f"blocks must be from 1 to {self.capacity} here, got {blocks}")
        self.settings = self.settings.replace(blocks=int(blocks))
        self.reset()

    def prepare(self) -> float:
        """Compiles the training step and the snapshot (XLA, a few seconds), then resets: later
        steps run at full speed. Returns and keeps the seconds it took (`compile_seconds`)."""
        start = time.perf_counter()
        self.run(1)
        self.reset()
        self.compile_seconds = time.perf_counter() - start
        return self.compile_seconds

    def batch_indices(self) -> np.ndarray:
        """The next batch: indices into the training points, an epoch's shuffled order cut into
        batches (a last short batch is left for the next epoch's order)."""
        size = self.settings.batch_size
        if self._next + size > len(self._order):
            self._order, self._next = self._rng.permutation(len(self.points.x_train)).astype(np.int32), 0
        self._next += size
        return self._order[self._next - size:self._next]

    # ------------------------------------------------------------------------- compiled

    def _train_step(self, index):
        """One step of every net on the batch at `index`; returns each net's batch loss and its
        per-block gradient norms (nets, blocks)."""
        x, y = tf.gather(self._x_train, index), tf.gather(self._y_train, index)
        with tf.GradientTape() as tape:
            losses = [_logistic_loss(y, model(x, training=True)) for model in self._models]
            total = tf.add_n(losses)
        gradients = tape.gradient(total, self._trained)
        self.optimizer.apply(gradients, self._trained)
        norms = [tf.sqrt(tf.add_n([tf.reduce_sum(tf.reshape(gradients[i], (self.capacity, -1)) ** 2, 1)
                                   for i in positions])) for positions in self._block_positions]
        return tf.stack(losses), tf.stack(norms)

    def _look(self):
        """Every net in inference mode on the training points, the test points and the grid."""
        return tf.stack([model(self._x_all, training=False)[:, 0] for model in self._models])

    # ------------------------------------------------------------------------- running

    def run(self, steps) -> dict:
        """Trains `steps` steps (1 to `MAX_STEPS`; 0 only looks) and returns a snapshot."""
        steps = 0 if steps == 0 else read_steps(steps)
        start = time.perf_counter()
        for _ in range(steps):
            self._one_step()
        self.seconds += time.perf_counter() - start
        return self.snapshot()

    def run_for(self, seconds: float, most: int | None = None) -> dict:
        """Trains for about `seconds` (at least one step, at most `most` steps) and returns a
        snapshot: the page's cadence (two snapshots a second, say) whatever the speed."""
        start = time.perf_counter()
        done = 0
        while done < (most if most is not None else float("inf")):
            self._one_step()
            done += 1
            if time.perf_counter() - start >= seconds:
                break
        self.seconds += time.perf_counter() - start
        return self.snapshot()

    def _one_step(self) -> None:
        losses, norms = self._step_fn(tf.constant(self.batch_indices()))
        self._losses.append(losses)
        self._norms.append(norms)
        self.step += 1

    def snapshot(self) -> dict:
        """Where the twins are now.

        Returns:
            {"step", "seconds" (training time so far, compiling included unless `prepare`
            ran), "steps_per_s", "extent" and "grid_size" (the grid: `grid_axis`), and per net
            ("residual", "plain": those trained) a dict: "train_loss", "test_loss",
            "train_accuracy", "test_accuracy" (the whole splits, inference mode), "batch_loss"
            (mean of the batches' losses since the last snapshot, training mode; None when no
            step ran since), "gradient_norms" (float32 (blocks,): the norm of the gradient of
            each block's own weights, mean over the steps since the last snapshot; None when
            none ran) and "boundary" (float32 (grid_size, grid_size): the net's probability of
            class 1 at grid point (x = axis[j], y = axis[i]) in [i, j])}.
        """
        logits = self._look_fn().numpy()
        n_train, n_test = len(self.points.x_train), len(self.points.x_test)
        losses = np.stack(self._losses).mean(0) if self._losses else None
        norms = np.stack(self._norms).mean(0) if self._norms else None
        self._losses, self._norms = [], []
        out = {"step": self.step, "seconds": round(self.seconds, 4),
               "steps_per_s": self.step / self.seconds if self.seconds else 0.0,
               "extent": GRID_EXTENT, "grid_size": GRID_SIZE}
        for k, name in enumerate(self.nets):
            out[name] = _readings(logits[k], self._y_all, n_train, n_test)
            out[name]["batch_loss"] = None if losses is None else float(losses[k])
            out[name]["gradient_norms"] = (None if norms is None
                                           else norms[k, :self.settings.blocks].astype(np.float32))
        return out


def _readings(logits: np.ndarray, labels: np.ndarray, n_train: int, n_test: int) -> dict:
    """Losses and accuracies of one net's logits over [train, test, grid], and its boundary."""
    logits = logits.astype(np.float64)
    split = {"train": slice(0, n_train), "test": slice(n_train, n_train + n_test)}
    out = {}
    for name, part in split.items():
        z, y = logits[part], labels[part]
        # the logistic loss, written to stay finite for large logits
        out[f"{name}_loss"] = float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
        out[f"{name}_accuracy"] = float(np.mean((z > 0) == (y > 0.5)))
    grid = logits[n_train + n_test:]
    out["boundary"] = (0.5 + 0.5 * np.tanh(grid / 2)).astype(np.float32).reshape(GRID_SIZE, GRID_SIZE)
    return out


def live(trainer: PairTrainer, seconds: float = 0.5, stop=None, steps: int | None = None):
    """Snapshots as the twins train, for a page that redraws as they come (an engine task
    forwards each as an event): the first at once (the boundary before any step), then one
    about every `seconds` of training.

    Args:
        trainer: the `PairTrainer` (its step goes on from where it is).
        seconds: training time between snapshots (0.5: two redraws a second).
        stop: optional callable, checked between snapshots: True ends the stream (pause).
        steps: optional number of steps after which the stream ends (a "step" button: 1).

    Yields:
        `PairTrainer.snapshot` dicts.
    """
    yield trainer.snapshot()
    target = None if steps is None else trainer.step + read_steps(steps)
    while not (stop and stop()) and (target is None or trainer.step < target):
        yield trainer.run_for(seconds, most=None if target is None else target - trainer.step)

