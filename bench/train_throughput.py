"""Benchmark: training throughput of the project's recipe (`python -m explorer bench train`)
against the tutorial's recipe (../shared/reference/tutorial_recipe.py: batch 32,
ImageDataGenerator), alternating the runs and reporting the median of pairwise ratios,
for fp32 and bf16. Floor 1.3x, aim 2x.

    python bench/train_throughput.py [--rounds 3] [--steps 100] [--depth 20]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys

from common import ARCHIVE, REFERENCE, ROOT


def ours(depth, steps, precision):
    out = subprocess.run(
        [sys.executable, "-m", "explorer", "bench", "train", "--depth", str(depth), "--version", "1",
         "--steps", str(steps), "--precision", precision, "--data", str(ARCHIVE), "--json"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["img_per_s"]


def tutorial(depth, steps):
    out = subprocess.run([sys.executable, str(REFERENCE), str(ARCHIVE), "--n", str((depth - 2) // 6),
                          "--steps", str(steps * 4)],  # batch 32 against our 128: same images
                         capture_output=True, text=True, check=True)
    return float(re.search(r"tutorial_train_img_per_s ([\d.]+)", out.stdout).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--depth", type=int, default=20)
    args = parser.parse_args()
    if not ARCHIVE.exists():
        raise SystemExit(f"needs the CIFAR-10 archive at {ARCHIVE}")
    ratios = {"float32": [], "mixed_bfloat16": []}
    for i in range(args.rounds):
        base = tutorial(args.depth, args.steps)
        fp32 = ours(args.depth, args.steps, "float32")
        bf16 = ours(args.depth, args.steps, "mixed_bfloat16")
        after = tutorial(args.depth, args.steps)  # bracket ours between two baseline runs
        ref = (base + after) / 2
        ratios["float32"].append(fp32 / ref)
        ratios["mixed_bfloat16"].append(bf16 / ref)
        print(f"round {i + 1}: tutorial {base:.0f}/{after:.0f} img/s, ours fp32 {fp32:.0f} img/s "
              f"({fp32 / ref:.2f}x), ours bf16 {bf16:.0f} img/s ({bf16 / ref:.2f}x)", flush=True)
    summary = {k: round(statistics.median(v), 3) for k, v in ratios.items()}
    print(json.dumps({"median_ratio": summary, "rounds": args.rounds, "floor": 1.3, "aim": 2.0}))


if __name__ == "__main__":
    main()
