"""Benchmark: p50 latency of the `classify` endpoint over Gradio's raw REST API (upload, call,
read the result) against an in-process `model.predict` on one image, alternating the two.
Floor: no slower; aim: a third.

Uses the first shipped checkpoint in pretrained/ when there is one, else an untrained
ResNet-20 v1 saved to a temporary folder (latency does not depend on the weights).

    python bench/classify_latency.py [--calls 50] [--pairs 3]
    python bench/classify_latency.py --tta    # the endpoint with flips against without
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ROOT, alternate, app_server, call, image_variants, upload


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--tta", action="store_true",
                        help="time the endpoint with flip test-time augmentation against without it")
    args = parser.parse_args()

    from explorer.core.specs import get_spec
    from explorer.data import images
    from explorer.nets.models import build_model, load_model
    from explorer.shipped import pretrained

    env = {}
    shipped = pretrained.manifest()
    if shipped:
        checkpoint = pretrained.pretrained_path(shipped[0]["name"])
    else:
        folder = Path(tempfile.mkdtemp())
        checkpoint = folder / "resnet20_v1.keras"
        build_model(get_spec("resnet20_v1")).save(checkpoint)
        (folder / "manifest.json").write_text(json.dumps({"checkpoints": [
            {"name": "resnet20_v1_untrained", "file": checkpoint.name, "test_accuracy": None}]}))
        env["EXPLORER_PRETRAINED"] = str(folder)
    image = ROOT / "examples" / "red_car.png"
    model = load_model(checkpoint)
    pixels = images.prepare(str(image))[None]

    def p50(fn):
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    # a distinct file per call: the app keeps its last few decodes (explorer/data/images.py, for the
    # page's label-then-view click), and the same bytes uploaded again would be served from there
    variants = iter(image_variants(image, args.calls * (2 * args.pairs + 2)))

    with app_server(**env) as url:
        def endpoint(tta="none"):
            served = upload(url, next(variants))
            call(url, "classify", [{"path": served, "meta": {"_type": "gradio.FileData"}}, None, tta])

        if args.tta:
            result = alternate("none_p50_s", lambda: p50(endpoint), "flip_p50_s",
                               lambda: p50(lambda: endpoint("flip")), pairs=args.pairs)
            print(f"endpoint p50 with flips / without = {result['median_ratio']:.2f}")
            return
        result = alternate("endpoint_p50_s", lambda: p50(endpoint), "model_predict_p50_s",
                           lambda: p50(lambda: model.predict(pixels, verbose=0)), pairs=args.pairs)
    print(f"endpoint p50 / in-process model.predict p50 = {1 / result['median_ratio']:.2f} "
          "(floor <= 1, aim <= 0.33)")


if __name__ == "__main__":
    main()
