"""Benchmark: the playground's training speed (issue #34). The pair trainer (both twins in one
XLA-compiled step, a snapshot with the boundary grid, losses and gradient norms every
--snapshot-every steps, as the page draws them) against a bare Keras `model.fit` of the same
two nets on the same points (each net fitted in turn, Keras' defaults: on a CPU no XLA),
steps per second of the pair, alternating pairs; target: at least 0.8x. Also `fit` with XLA
turned on (once, not alternated), the same net
written with one Keras layer per block (the issue's own measurement, 134-151 steps/s for one
32-block, width-16 net), fitted alone, and the compile times.

    nice python bench/playground.py [--blocks 32] [--width 16] [--steps 400] [--pairs 5]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import alternate

from explorer.core.playground_settings import PlaygroundSettings


def fit_rate_of(nets, stream, steps) -> float:
    """Pair steps per second of `fit` on each net in turn, after a first call that traces."""
    for model in nets:
        model.fit(stream, steps_per_epoch=5, epochs=1, verbose=0)
    start = time.perf_counter()
    for model in nets:
        model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def fitted(settings, jit_compile="auto"):
    """The two nets compiled for `fit` as Keras' defaults have it, and the training points as
    a shuffled, repeated tf.data stream of the settings' batches. `jit_compile`: Keras' default
    ("auto": XLA off on a CPU), or True (the extra line, XLA as the trainer has it)."""
    import keras
    import tensorflow as tf

    from explorer.data.points import features
    from explorer.studies.playground import PairTrainer, make_optimizer

    trainer = PairTrainer(settings)  # the same nets, built the same way
    for model in trainer.nets.values():
        model.compile(make_optimizer(settings), keras.losses.BinaryCrossentropy(from_logits=True),
                      jit_compile=jit_compile)
    x = features(trainer.points.x_train, settings.features)
    y = trainer.points.y_train[:, None].astype("float32")
    stream = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).repeat().batch(
        settings.batch_size, drop_remainder=True)
    return list(trainer.nets.values()), stream


def layered_net(settings):
    """The 32-block net as the issue measured it: one Keras layer per dense, norm and ReLU."""
    import keras

    inputs = keras.Input((len(settings.features),))
    h = keras.layers.Dense(settings.width, activation="relu")(inputs)
    for _ in range(settings.blocks):
        y = keras.layers.Dense(settings.width, use_bias=False)(h)
        y = keras.layers.ReLU()(keras.layers.BatchNormalization()(y))
        y = keras.layers.BatchNormalization()(keras.layers.Dense(settings.width, use_bias=False)(y))
        h = keras.layers.ReLU()(keras.layers.Add()([y, h]))
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    model.compile(keras.optimizers.Adam(settings.learning_rate),
                  keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=32)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400, help="pair steps per timing")
    parser.add_argument("--snapshot-every", type=int, default=25,
                        help="steps between snapshots (the page draws about 2 a second)")
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    settings = PlaygroundSettings(data="spiral", blocks=args.blocks, width=args.width,
                                  batch_size=args.batch_size)
    from explorer.studies.playground import PairTrainer

    start = time.perf_counter()
    trainer = PairTrainer(settings)
    built = time.perf_counter() - start
    compiled = trainer.prepare()
    print(f"pair trainer: built in {built:.2f} s, compiled (XLA: step and snapshot) in {compiled:.2f} s",
          flush=True)
    nets, stream = fitted(settings)
    start = time.perf_counter()
    for model in nets:
        model.fit(stream, steps_per_epoch=5, epochs=1, verbose=0)
    print(f"fit: first call of both nets (tracing) {time.perf_counter() - start:.2f} s", flush=True)

    def ours():
        trainer.reset()
        for _ in range(args.steps // args.snapshot_every):
            trainer.run(args.snapshot_every)

    def fit():
        for model in nets:
            model.fit(stream, steps_per_epoch=args.steps, epochs=1, verbose=0)

    result = alternate("keras_fit_pair", fit, "pair_trainer", ours, pairs=args.pairs)
    fit_rate = args.steps / result["keras_fit_pair"]
    ours_rate = args.steps / result["pair_trainer"]
    xla_nets, _ = fitted(settings, jit_compile=True)
    xla_rate = fit_rate_of(xla_nets, stream, args.steps)
    layered_rate = fit_rate_of([layered_net(settings)], stream, args.steps)
    summary = {"blocks": args.blocks, "width": args.width, "batch_size": args.batch_size,
               "snapshot_every": args.snapshot_every,
               "pair_trainer_steps_per_s": round(ours_rate, 1),
               "keras_fit_pair_steps_per_s": round(fit_rate, 1),
               "speed_ratio_median": round(1 / result["median_ratio"], 2),
               "keras_fit_xla_pair_steps_per_s": round(xla_rate, 1),
               "layered_net_fit_steps_per_s": round(layered_rate, 1)}
    print(json.dumps(summary))
    print(f"{args.blocks}-block, width-{args.width} pair: trainer {ours_rate:.0f} pair steps/s (snapshot "
          f"every {args.snapshot_every} steps) against Keras fit of the two nets {fit_rate:.0f}: "
          f"{1 / result['median_ratio']:.2f}x (target >= 0.8x); fit with jit_compile=True: {xla_rate:.0f} "
          f"pair steps/s; one layer-per-block net, fit: {layered_rate:.0f} steps/s")


if __name__ == "__main__":
    main()
