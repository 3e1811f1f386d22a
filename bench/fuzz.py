"""The endpoint fuzz of tests/test_fuzz_endpoints.py, larger: the same strategies and checks,
more examples per endpoint, not derandomized (each run draws new calls).

    python bench/fuzz.py [--examples 100] [--url http://127.0.0.1:7860 --log app.log]

Without --url it starts the app as the test does (generated data, untrained checkpoints of
its own, a private temporary folder). Prints the calls made, the outcomes by kind (ok, clear
error, unclear error, traceback), each endpoint's first failure, the seconds taken, whether
the app still answers, and any file that appeared outside its runs and scratch folders.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, app_server, untrained_checkpoints
from tests.test_fuzz_endpoints import Fuzzer, fuzz_all, fuzz_app_env, snapshot, strays, upload_folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="calls per endpoint")
    parser.add_argument("--url", help="fuzz a running app instead of starting one")
    parser.add_argument("--log", type=Path, help="the running app's log, read for tracebacks")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="resnet-explorer-fuzz-app-"))
    env = fuzz_app_env(base)
    if args.url:
        server, log_path = nullcontext(args.url), args.log
    else:
        log_path = base / "app.log"
        (base / "pretrained").mkdir()
        server = app_server(log_path=log_path, cwd=base / "cwd", EXPLORER_DATA="synthetic",
                            EXPLORER_PRETRAINED=str(untrained_checkpoints(base / "pretrained")), **env)
    with server as url:
        fuzzer = Fuzzer(url, log_path)
        before = snapshot(base, ROOT)
        start = time.perf_counter()
        failures = fuzz_all(fuzzer, args.examples, derandomize=False)
        seconds = time.perf_counter() - start
        healthy = fuzzer.healthy()
        stray = strays(before, snapshot(base, ROOT), base)
    shutil.rmtree(upload_folder(), ignore_errors=True)
    print(f"endpoints: {len(fuzzer.endpoints)}   calls: {sum(fuzzer.counts.values())}   "
          f"seconds: {seconds:.0f}   healthy afterwards: {healthy}")
    print("outcomes:", json.dumps(dict(fuzzer.counts)))
    for endpoint, failure in failures.items():
        print(f"\nFAILED {endpoint}:\n{failure}")
    print("files outside the runs and scratch folders:", stray or "none")
    shutil.rmtree(base, ignore_errors=True)
    return 1 if failures or stray or not healthy else 0


if __name__ == "__main__":
    raise SystemExit(main())
