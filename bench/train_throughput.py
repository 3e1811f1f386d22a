"""Benchmark: training throughput of the project's recipe (`python -m explorer bench train`)
against the tutorial's recipe (../shared/reference/tutorial_recipe.py: batch 32,
ImageDataGenerator), alternating the runs and reporting the median of pairwise ratios,
for fp32 and bf16. Floor 1.3x, aim 2x.

Our training processes turn TensorFlow's oneDNN kernels on (`explorer/cli/commands.py`,
`fast_training`); the tutorial runs as TensorFlow comes, which on CPUs without AVX-512 leaves
them off. `--tutorial-onednn` turns them on for the tutorial too: the recipes alone compared.

    python bench/train_throughput.py [--rounds 3] [--steps 100] [--depth 20]
                                     [--precisions float32,mixed_bfloat16] [--tutorial-onednn]
"""

import argparse
import json
import os
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


def tutorial(depth, steps, onednn=False):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"} if onednn else None
    out = subprocess.run([sys.executable, str(REFERENCE), str(ARCHIVE), "--n", str((depth - 2) // 6),
                          "--steps", str(steps * 4)],  # batch 32 against our 128: same images
                         capture_output=True, text=True, check=True, env=env)
    return float(re.search(r"tutorial_train_img_per_s ([\d.]+)", out.stdout).group(1))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16", help="ours, comma-separated")
    parser.add_argument("--tutorial-onednn", action="store_true",
                        help="oneDNN kernels on for the tutorial too")
    args = parser.parse_args()
    if not ARCHIVE.exists():
        raise SystemExit(f"needs the CIFAR-10 archive at {ARCHIVE}")
    precisions = args.precisions.split(",")
    ratios = {precision: [] for precision in precisions}
    for i in range(args.rounds):
        base = tutorial(args.depth, args.steps, args.tutorial_onednn)
        rates = {precision: ours(args.depth, args.steps, precision) for precision in precisions}
        # bracket ours between two baseline runs
        after = tutorial(args.depth, args.steps, args.tutorial_onednn)
        ref = (base + after) / 2
        for precision, rate in rates.items():
            ratios[precision].append(rate / ref)
        print(f"round {i + 1}: tutorial {base:.0f}/{after:.0f} img/s"
              + "".join(f", ours {p} {r:.0f} img/s ({r / ref:.2f}x)" for p, r in rates.items()), flush=True)
    summary = {k: round(statistics.median(v), 3) for k, v in ratios.items()}
    print(json.dumps({"median_ratio": summary, "rounds": args.rounds, "tutorial_onednn": args.tutorial_onednn,
                      "floor": 1.3, "aim": 2.0}))


if __name__ == "__main__":
    main()
