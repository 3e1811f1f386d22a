"""Benchmark: the Train tab's race at its defaults, the plain net against its residual twin,
each with the page's job config (`config.page_job`: ResNet-56 v1, 5,000 images, 2 epochs,
tested on 2,000 images), trained alone one after the other by `python -m explorer train`.
Prints each net's per-epoch training and test accuracy and seconds. What the race should
show (issue #18): the plain net falls behind within a few minutes.

    python bench/race.py [--depth 56] [--epochs 2] [--subset 5000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ARCHIVE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from explorer.train.config import TrainConfig, page_job


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=56)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--subset", type=int, default=5000)
    args = parser.parse_args()
    data = str(ARCHIVE) if ARCHIVE.exists() else "synthetic"
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for residual in (False, True):
            config = page_job(TrainConfig(depth=args.depth, version=1, residual=residual, epochs=args.epochs,
                                          subset=args.subset, test_subset=2000, seed=0, data=data))
            out = Path(scratch) / ("residual" if residual else "plain")
            out.mkdir()
            (out / "config.json").write_text(json.dumps(config.to_dict()))
            subprocess.run([sys.executable, "-m", "explorer", "train", "--config", str(out / "config.json"),
                            "--out", str(out)], cwd=ROOT, check=True, capture_output=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            epochs = json.loads((out / "history.json").read_text())["epochs"]
            name = config.spec().name
            results[name] = [{key: round(epoch[key], 4)
                              for key in ("epoch", "accuracy", "val_accuracy", "seconds")}
                             for epoch in epochs]
            print(name, results[name], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
