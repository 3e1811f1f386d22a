"""Benchmark: batches per second of the training input stream (`pipeline.make_datasets`:
stateless shuffle and augmentation, a function of seed, epoch and batch, so a resumed run
continues exactly) against the stateful stream it replaced in session 5 (`Dataset.shuffle`
with a seed and `tf.random.uniform` augmentation, which a resumed run restarted from its
first epoch), alternating the two and reporting the median ratio. The stream only has to
outpace the model: ResNet-20 trains at about 6 batches a second on this machine's 2 cores.

    python bench/input_pipeline.py [--pairs 5] [--batches 390] [--data ARCHIVE]
"""

import argparse
import time

from common import ARCHIVE, alternate


def stateful_stream(data, config):
    """The session-4 training stream, kept here as the baseline."""
    import tensorflow as tf

    from explorer.train.pipeline import augment

    return (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
            .shuffle(len(data.x_train), seed=config.seed, reshuffle_each_iteration=True)
            .batch(config.batch_size, drop_remainder=True)
            .map(lambda x, y: (augment(x, 4, config.cutout), tf.one_hot(y, 10)),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--batches", type=int, default=390, help="batches per timing (390: one epoch)")
    parser.add_argument("--data", default=str(ARCHIVE))
    args = parser.parse_args()

    from explorer.data.cifar import load_or_synthetic
    from explorer.train.config import TrainConfig
    from explorer.train.pipeline import make_datasets

    data = load_or_synthetic(args.data)
    print(f"data: {data.source} {data.notice}".strip(), flush=True)
    config = TrainConfig(cutout=16, epochs=1000)
    ours, _, _ = make_datasets(data, config)
    before = stateful_stream(data, config).repeat()
    streams = {"stateless": iter(ours), "stateful": iter(before)}

    def run(name):
        def pull():
            start = time.perf_counter()
            for _ in range(args.batches):
                next(streams[name])
            return time.perf_counter() - start
        return pull

    result = alternate("stateful", run("stateful"), "stateless", run("stateless"), pairs=args.pairs)
    for name in ("stateful", "stateless"):
        print(f"{name}: {args.batches / result[name]:.1f} batches/s (median)")
    print(f"stateless takes {result['median_ratio']:.2f}x the time of stateful per batch")


if __name__ == "__main__":
    main()
