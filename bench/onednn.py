"""Benchmark: TensorFlow's oneDNN kernels on and off for the recipe's training step
(`TF_ENABLE_ONEDNN_OPTS`, which `explorer/__init__.py` sets to 1 unless set outside).

TensorFlow enables them by itself only on CPUs with AVX-512 and similar; this measures what
they do here. Each round runs `python -m explorer bench train` once with them off and once on,
in alternating order, each in a fresh process; prints each run and the median ratio on/off.

`--precision float32` compares fp32 steps: the recipe's `auto` picks bf16 on a CPU with AVX512_BF16,
where the steps without oneDNN run bf16 convolutions without its kernels (39x slower in
session 19), not the comparison of the same step with and without them.
    python bench/onednn.py [--rounds 3] [--steps 30] [--precision auto]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import ARCHIVE

ROOT = Path(__file__).resolve().parents[1]


def images_per_second(onednn: str, steps: int, precision: str = "auto") -> float:
    data = str(ARCHIVE) if ARCHIVE.exists() else "synthetic"
    result = subprocess.run(
        [sys.executable, "-m", "explorer", "bench", "train", "--depth", "20", "--steps", str(steps),
         "--data", data, "--precision", precision, "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(result.stdout.strip().splitlines()[-1])["img_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps a run")
    parser.add_argument("--precision", default="auto", help="auto, float32, mixed_bfloat16")
    args = parser.parse_args()
    ratios = []
    for round_ in range(args.rounds):
        order = ("0", "1") if round_ % 2 == 0 else ("1", "0")
        speed = {flag: images_per_second(flag, args.steps, args.precision) for flag in order}
        ratios.append(speed["1"] / speed["0"])
        print(f"round {round_ + 1}: oneDNN off {speed['0']} img/s, on {speed['1']} img/s, "
              f"ratio {ratios[-1]:.2f}", flush=True)
    print(json.dumps({"precision": args.precision,
                      "onednn_on_over_off_median": round(statistics.median(ratios), 2),
                      "ratios": [round(r, 2) for r in ratios]}))


if __name__ == "__main__":
    main()
