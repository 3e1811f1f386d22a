"""Benchmark: looking inside a net (explorer/studies/inside.py, explorer/studies/readout.py).

1. One block's maps and every block's numbers for one image on ResNet-56 once the checkpoint
   is loaded (target: at most 0.5 s): the first request (the sub-model built, an eager pass),
   later eager ones, the trace (a warm-up), then traced requests alternated with the baseline,
   the one forward pass Classify makes (`checkpoints.predict` of one image).
2. A live read-out of ResNet-20 with 5,000 training images (and the default test images),
   the data already decoded (target: at most 60 s on 2 cores); and the stored one's lookup.

    python bench/inside.py [--calls 20] [--pairs 3] [--train 5000] [--test 5000]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ARCHIVE, alternate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="requests per timing")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs")
    parser.add_argument("--train", type=int, default=5000, help="training images of the live read-out")
    parser.add_argument("--test", type=int, default=5000, help="test images of the live read-out")
    args = parser.parse_args()
    from explorer.core.runtime import thread_safe_tensorflow

    thread_safe_tensorflow()  # as the app's web process and the command line run it
    from explorer.data.cifar import load_cifar10
    from explorer.nets.checkpoints import load, predict
    from explorer.shipped import pretrained
    from explorer.studies.inside import inside, trace
    from explorer.studies.readout import readout, readout_study

    source = str(ARCHIVE) if ARCHIVE.exists() else "synthetic"
    data = load_cifar10(source)  # decoded once here, so the timings below are the work's
    image = data.x_test[0]
    model = load(pretrained.pretrained_path("resnet56_v1"))
    start = time.perf_counter()
    inside(model, image, "stage3_block5")
    first = time.perf_counter() - start

    def median_of(fn):
        def run():
            times = []
            for _ in range(args.calls):
                begin = time.perf_counter()
                fn()
                times.append(time.perf_counter() - begin)
            return statistics.median(times)
        return run

    one_block = median_of(lambda: inside(model, image, "stage3_block5"))
    eager = one_block()
    start = time.perf_counter()
    trace(model)
    traced_in = time.perf_counter() - start
    result = alternate("inside_one_block_s", one_block, "classify_pass_s",
                       median_of(lambda: predict(model, image[None])), pairs=args.pairs)
    print(f"ResNet-56 v1, one image, one block's maps and every block's numbers: first request {first:.2f} s "
          f"(sub-model built, eager pass), then {eager:.3f} s eager; traced in {traced_in:.1f} s "
          f"(a warm-up), "
          f"then {result['inside_one_block_s']:.3f} s per request (target 0.5 s); Classify's one pass "
          f"{result['classify_pass_s']:.3f} s")

    path = pretrained.pretrained_path("resnet20_v1")
    begin = time.perf_counter()
    live = readout(path, source, args.train, args.test)
    live_s = time.perf_counter() - begin
    print(f"ResNet-20 v1 read-out, live: {live['train_images']:,} training + {live['test_images']:,} test "
          f"images in {live_s:.1f} s (target 60 s), last block {live['accuracy'][-1]:.4f}, the checkpoint "
          f"{live['model_accuracy']:.4f}")
    begin = time.perf_counter()
    kept = readout_study([path], args.train, args.test, source)[0]
    print(f"ResNet-20 v1 read-out, stored: {'served' if 'stored' in kept else 'not stored: fitted'} in "
          f"{time.perf_counter() - begin:.2f} s")


if __name__ == "__main__":
    main()
