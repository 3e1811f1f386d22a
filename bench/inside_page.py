"""Benchmark: the Look inside tab through the page's own endpoint (issue #33). One block's
maps for an image on ResNet-56 v1 once the checkpoint is loaded (target: at most 0.5 s),
timed as a visitor's request: upload, `/inside` over Gradio's REST API (the net's pass and its
plain twin's, Plain-56 v1, the maps, the chart over the depth, the reading), the answer read.

The first request loads both checkpoints on a worker (and sends the warm-up: load and trace);
the next `settle` requests are timed one by one (the warm-up lands among them), then `calls`
requests (a new image and the next block each) alternate in pairs with Classify's endpoint on
the same images (its top 5: one forward pass of ResNet-56): the baseline of a page request.

    nice python bench/inside_page.py [--calls 20] [--pairs 3] [--settle 10]
"""

import argparse
import itertools
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ROOT, alternate, app_server, call, image_variants, upload

CHECKPOINT = "resnet56_v1"
BLOCKS = [f"stage{stage}_block{block}" for stage in (1, 2, 3) for block in range(1, 10)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="requests per timing")
    parser.add_argument("--pairs", type=int, default=3, help="alternating pairs")
    parser.add_argument("--settle", type=int, default=10, help="requests timed after the first, one by one")
    args = parser.parse_args()
    # a distinct file per call: the app keeps its last few decodes (explorer/data/images.py)
    variants = iter(image_variants(ROOT / "examples" / "red_car.png",
                                   1 + args.settle + args.calls * (2 * args.pairs + 2)))
    blocks = itertools.cycle(BLOCKS)

    with app_server() as url:
        def file_data():
            return {"path": upload(url, next(variants)), "meta": {"_type": "gradio.FileData"}}

        def look():
            block = next(blocks)
            answer = call(url, "inside", [CHECKPOINT, file_data(), block])
            if answer[-1]["block"] != block:
                raise SystemExit(f"asked for {block}, the page drew {answer[-1]['block']}")

        def classify():
            call(url, "classify", [file_data(), CHECKPOINT, "none"])

        def timed(fn):
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        first = timed(look)
        print(f"first request (both checkpoints loaded on a worker): {first:.2f} s", flush=True)
        settling = [timed(look) for _ in range(args.settle)]
        print("next requests, one by one (the warm-up's trace lands among them): "
              + " ".join(f"{s:.2f}" for s in settling), flush=True)

        def median_of(fn):
            return lambda: statistics.median(timed(fn) for _ in range(args.calls))

        result = alternate("inside_one_block_s", median_of(look), "classify_s", median_of(classify),
                           pairs=args.pairs)
    print(json.dumps({"checkpoint": CHECKPOINT, "first_s": round(first, 2),
                      "settling_s": [round(s, 2) for s in settling],
                      "inside_median_s": round(result["inside_one_block_s"], 3),
                      "classify_median_s": round(result["classify_s"], 3), "target_s": 0.5,
                      "met": result["inside_one_block_s"] <= 0.5}))


if __name__ == "__main__":
    main()
