"""Benchmark: the ResNet-1202 whole-net view on the `build_architecture` endpoint (raw REST,
app running) against the strip it replaced: the graph modules as committed at `FLAT_REV` (the
last commit of the flat `explorer/` layout) imported from a temporary copy and run in-process
on the same request (figure, summary, table, notes, JSON).
Target: the endpoint draws the whole net in under 1 s. Then switching between two overlays
already computed (ResNet-110) on the `graph_overlay` endpoint: target under 0.3 s.

With --tutorial, also the endpoint against the tutorial's flat functional code constructing the
same net (recursion limit raised, or it dies with RecursionError).

    python bench/architecture.py [--pairs 5] [--depth 1202] [--tutorial]
"""

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ROOT, alternate, app_server, call, tutorial_module

TARGET_S = 1.0
HEAD_MODULES = ("__init__.py", "specs.py", "plans.py", "numbers.py", "graph_layout.py", "graph_figure.py",
                "graph.py")


FLAT_REV = "70a49ec"  # the last commit before explorer/ moved into subpackages (#31)


def head_graph(folder: Path, rev: str = FLAT_REV):
    """explorer/graph.py as committed at `rev`, with what it imports, as package `explorer_head`."""
    package = folder / "explorer_head"
    package.mkdir()
    for name in HEAD_MODULES:
        source = subprocess.run(["git", "show", f"{rev}:explorer/{name}"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
        (package / name).write_text(source if name != "__init__.py" else "")
    sys.path.insert(0, str(folder))
    return importlib.import_module("explorer_head.graph"), importlib.import_module("explorer_head.specs")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--depth", type=int, default=1202)
    parser.add_argument("--tutorial", action="store_true", help="also against the tutorial's construction")
    args = parser.parse_args()
    request = [args.depth, 1, "cifar", True, "projection", "none", False]
    with tempfile.TemporaryDirectory() as folder:
        old_graph, old_specs = head_graph(Path(folder))

        def old_strip():  # what the endpoint computed before, minus the HTTP round trip
            spec = old_specs.make_spec(args.depth, 1)
            summary = old_graph.summarize(spec)
            old_graph.stage_rows(summary)
            old_graph.figure(spec, "none").to_json()
            old_graph.explain(spec)

        with app_server() as url:
            def endpoint():
                out = call(url, "build_architecture", request)
                assert f"ResNet-{args.depth} v1" in str(out[3])

            result = alternate("endpoint_whole_net_s", endpoint, "old_strip_in_process_s", old_strip,
                               pairs=args.pairs)
            best = min(_timed(endpoint) for _ in range(3))
            print(f"ResNet-{args.depth} whole-net view on the endpoint: median "
                  f"{result['endpoint_whole_net_s']:.3f} s (best {best:.3f} s) against the old strip's "
                  f"{result['old_strip_in_process_s']:.3f} s in-process (old/new median ratio "
                  f"{result['median_ratio']:.2f}); target < {TARGET_S:g} s: "
                  f"{'met' if result['endpoint_whole_net_s'] < TARGET_S else 'MISSED'}")
            _overlay_switch(url, args.pairs)
            if args.tutorial:
                _against_tutorial(endpoint, args)


def _overlay_switch(url, pairs, depth=110):
    """Switching between two overlays already computed on the `graph_overlay` endpoint
    (ResNet-110 at initialization: its gradient norms, then their ratio). Target: under 0.3 s."""
    start = time.perf_counter()
    for kind in ("gradient", "ratio"):
        call(url, "graph_overlay", [depth, 1, kind, None, None, "none"])
    print(f"ResNet-{depth} overlays computed once in {time.perf_counter() - start:.1f} s", flush=True)
    switch = {kind: (lambda kind=kind: call(url, "graph_overlay", [depth, 1, kind, None, None, "none"])
                     and None)
              for kind in ("gradient", "ratio")}
    result = alternate("to_gradient_s", switch["gradient"], "to_ratio_s", switch["ratio"], pairs=pairs)
    worst = max(result["to_gradient_s"], result["to_ratio_s"])
    print(f"switching to a computed overlay of ResNet-{depth} on the endpoint: median {worst:.3f} s "
          f"(target < 0.3 s): {'met' if worst < 0.3 else 'MISSED'}")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _against_tutorial(endpoint, args):
    tutorial = tutorial_module()
    sys.setrecursionlimit(100_000)

    def baseline():
        import keras

        keras.backend.clear_session()
        tutorial.resnet_v1((32, 32, 3), args.depth)

    result = alternate("endpoint_s", endpoint, "tutorial_construct_s", baseline, pairs=args.pairs)
    share = result["endpoint_s"] / result["tutorial_construct_s"]
    print(f"endpoint takes {share:.3f} of the tutorial's construction time "
          f"(target <= 0.5): {'met' if share <= 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
