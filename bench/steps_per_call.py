"""Benchmark: steps per compiled call for the Train tab's default job (ResNet-20 v1, 5,000
images, batch 128, the page's config), 3 against 1: seconds from `fit`'s start to the end of
the first compiled call (when a page job logs its first curve point) and the seconds per step
of the calls after it. Each run is a fresh process (as a job is), in alternating order;
prints each run and the medians.

    python bench/steps_per_call.py [--rounds 2] [--calls 4]
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

ONE_RUN = """
import dataclasses, json, sys, time
import keras
from explorer.cli import commands
from explorer.train.config import TrainConfig, page_job
from explorer.data.cifar import load_cifar10
from explorer.train.training import compile_model, make_datasets

per_call, calls, data = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
config = dataclasses.replace(page_job(TrainConfig(depth=20, version=1, epochs=2, subset=5000, data=data)),
                             steps_per_execution=per_call)
dataset = load_cifar10(config.data)
train_ds, _, images = make_datasets(dataset, config)
steps_per_epoch = images // config.batch_size
model = compile_model(config, dataset, steps_per_epoch)
ends = []

class Ends(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        ends.append(time.perf_counter())
        self.model.stop_training = len(ends) > calls

start = time.perf_counter()
model.fit(train_ds, epochs=1, steps_per_epoch=steps_per_epoch, callbacks=[Ends()], verbose=0)
later = [(b - a) / per_call for a, b in zip(ends, ends[1:])]
print(json.dumps({"first_call_s": ends[0] - start, "step_s": statistics.median(later)}))
"""


def one_run(per_call: int, calls: int) -> dict:
    data = str(ARCHIVE) if ARCHIVE.exists() else "synthetic"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "1"}  # as a job's process
    result = subprocess.run([sys.executable, "-c", "import statistics\n" + ONE_RUN, str(per_call),
                             str(calls), data], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="pairs of fresh processes, alternating")
    parser.add_argument("--calls", type=int, default=4, help="calls timed after the first")
    args = parser.parse_args()
    runs = {3: [], 1: []}
    for round_ in range(args.rounds):
        for per_call in ((3, 1) if round_ % 2 == 0 else (1, 3)):
            run = one_run(per_call, args.calls)
            runs[per_call].append(run)
            print(f"{per_call} step(s) a call: first call ends {run['first_call_s']:.1f} s "
                  f"after fit's start; then {run['step_s']:.2f} s a step", flush=True)
    for per_call, results in runs.items():
        print(f"{per_call} step(s) a call, median of {args.rounds}: first call "
              f"{statistics.median(r['first_call_s'] for r in results):.1f} s, "
              f"{statistics.median(r['step_s'] for r in results):.2f} s a step")


if __name__ == "__main__":
    main()
