"""Benchmark: the `build_architecture` endpoint for ResNet-1202 v1 (raw REST, app running)
against the tutorial's flat functional code constructing the same net (recursion limit
raised, or it dies with RecursionError). Target: the endpoint takes at most half.

    python bench/architecture.py [--pairs 3] [--depth 1202]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import alternate, app_server, call, tutorial_module


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--depth", type=int, default=1202)
    args = parser.parse_args()
    tutorial = tutorial_module()
    sys.setrecursionlimit(100_000)

    def baseline():
        import keras

        keras.backend.clear_session()
        tutorial.resnet_v1((32, 32, 3), args.depth)

    with app_server() as url:
        def endpoint():
            out = call(url, "build_architecture", [args.depth, 1, "cifar", True, "projection", "none", False])
            assert "1202" in str(out[3]) or args.depth != 1202

        result = alternate("endpoint_s", endpoint, "tutorial_construct_s", baseline, pairs=args.pairs)
    share = result["endpoint_s"] / result["tutorial_construct_s"]
    print(f"endpoint takes {share:.3f} of the tutorial's construction time "
          f"(target <= 0.5): {'met' if share <= 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
