"""Benchmark: wall time of the loss landscape at the app's default resolution (a 9x9 plane
and a 17-point slice, 128 test images), for ResNet-56 and its plain twin, the comparison the
Insight lab draws. The issue asks for about a minute on the CPU. Weights do not change the
cost, so untrained nets stand in when no trained checkpoints are given.

    python bench/landscape.py [--steps 9] [--samples 128] [--data SRC] [CHECKPOINT ...]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import common  # noqa: F401 - puts the repository on sys.path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="*")
    parser.add_argument("--steps", type=int, default=9)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--data", default="synthetic")
    args = parser.parse_args()
    from explorer.core.specs import make_spec
    from explorer.nets.models import build_model
    from explorer.studies import landscape
    from explorer.train.devices import device_name

    checkpoints = args.checkpoints
    if not checkpoints:
        folder = Path(tempfile.mkdtemp())
        for residual in (True, False):
            spec = make_spec(56, 1, residual=residual)
            build_model(spec).save(folder / f"{spec.slug}.keras")
            checkpoints.append(folder / f"{spec.slug}.keras")
    print(f"device: {device_name()}; {args.steps}x{args.steps} plane + {2 * args.steps - 1}-point slice, "
          f"{args.samples} images")
    total = 0.0
    for checkpoint in checkpoints:
        start = time.perf_counter()
        result = landscape.loss_landscape(checkpoint, args.data, args.samples, args.steps)
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{result['model']}: {seconds:.1f} s")
    print(f"both, as the Insight lab computes them: {total:.1f} s")


if __name__ == "__main__":
    main()
