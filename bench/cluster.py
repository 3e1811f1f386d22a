"""Benchmark: training throughput (images/s) of a cluster run of one worker against two, both
on this machine's loopback, started as a user starts them (`TF_CONFIG` and `python -m explorer
train`, the JAX engine of explorer/train/cluster.py). An epoch's time comes from the run's
history.json; the first epoch (compilation) is left out. The runs alternate; the figure is the
median over pairs.

    python bench/cluster.py [--pairs 1] [--subset 2048] [--epochs 3] [--depth 8]

Reading: both workers share this machine's cores, so two processes do the same work as one
plus the exchange of gradients; a speed-up needs a second machine (or more cores than one
process uses).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, _free_port, alternate


def epoch_seconds(workers: int, args) -> float:
    """The median seconds of an epoch after the first, in a fresh run of `workers` workers."""
    out = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{workers}w-"))
    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(workers)]
    command = [sys.executable, "-m", "explorer", "train", "--depth", str(args.depth),
               "--epochs", str(args.epochs), "--subset", str(args.subset), "--test-subset", "64",
               "--data", "synthetic", "--precision", "float32", "--out", str(out / "run")]
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    procs = []
    for index in range(workers):
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(command, cwd=ROOT, env={**env, "TF_CONFIG": json.dumps(tf_config)},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = [proc.communicate()[1] for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"{workers} workers failed:\n" + "\n".join(e[-2000:] for e in errors))
    epochs = json.loads((out / "run" / "history.json").read_text())["epochs"]
    shutil.rmtree(out, ignore_errors=True)
    seconds = statistics.median(e["seconds"] for e in epochs[1:])
    print(f"{workers} worker(s): {args.subset / seconds:.1f} img/s ({seconds:.2f} s an epoch of "
          f"{args.subset} images, epochs after the first)", flush=True)
    return seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--subset", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--depth", type=int, default=8)
    args = parser.parse_args()
    result = alternate("one_worker", lambda: epoch_seconds(1, args), "two_workers",
                       lambda: epoch_seconds(2, args), pairs=args.pairs, warmup=False)
    print(json.dumps({"one_worker_img_per_s": round(args.subset / result["one_worker"], 1),
                      "two_workers_img_per_s": round(args.subset / result["two_workers"], 1),
                      "speedup": round(1 / result["median_ratio"], 2), "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
