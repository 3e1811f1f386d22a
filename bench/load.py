"""Load test (not a timed test): 16 concurrent clients each send 20 `classify` requests over
raw REST while a training job runs in the app; prints lost requests, p50 and p99 latency,
and the web process's memory before and after.

With `--baseline TREE` (a checkout of an earlier commit, for instance the last one before the
engine: `git worktree add /tmp/pre-engine 3f1c7fc^`), the same load is sent to that app and
to this one in alternating pairs, each app started fresh: a comparison on one machine in one
run, since this machine's speed drifts from session to session.

    python bench/load.py [--clients 16] [--requests 20] [--baseline TREE --pairs 2] [--settle S]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ROOT, app_server, call, upload


def rss_mb(port) -> float:
    """Resident memory of the app process listening on `port` (Linux /proc)."""
    out = subprocess.run(["pgrep", "-f", "app.py"], capture_output=True, text=True, check=False).stdout
    for pid in out.split():
        environ = Path(f"/proc/{pid}/environ")
        try:
            if f"EXPLORER_PORT={port}".encode() in environ.read_bytes():
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            continue
    return float("nan")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--baseline", type=Path, help="an earlier checkout whose app.py gets the same load")
    parser.add_argument("--pairs", type=int, default=2, help="alternating pairs with --baseline")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="seconds between the app's first answer (its start-up warm-ups) and the load")
    args = parser.parse_args()
    if args.baseline is None:
        print(json.dumps(measure(ROOT / "app.py", args)))
        return
    runs = {"this": [], "baseline": []}
    for pair in range(args.pairs):
        order = ("this", "baseline") if pair % 2 == 0 else ("baseline", "this")
        for which in order:
            app = ROOT / "app.py" if which == "this" else args.baseline / "app.py"
            runs[which].append(measure(app, args))
            print(json.dumps({"pair": pair + 1, "app": which, **runs[which][-1]}), flush=True)
    keys = ("lost", "p50_s", "p99_s", "throughput_per_s", "rss_mb_before", "rss_mb_after")
    print(json.dumps({which: {key: statistics.median(r[key] for r in found) for key in keys}
                      for which, found in runs.items()}))


def measure(app: Path, args) -> dict:
    """The load sent to a fresh `app` (its own untrained ResNet-20, generated data)."""
    from explorer.core.specs import get_spec
    from explorer.nets.models import build_model

    folder = Path(tempfile.mkdtemp())
    build_model(get_spec("resnet20_v1")).save(folder / "r20.keras")
    (folder / "manifest.json").write_text(json.dumps({"checkpoints": [
        {"name": "r20_untrained", "file": "r20.keras", "test_accuracy": None}]}))
    image = ROOT / "examples" / "red_car.png"
    env = {"EXPLORER_PRETRAINED": str(folder), "EXPLORER_DATA": "synthetic",
           "EXPLORER_RUNS": tempfile.mkdtemp()}
    with app_server(app=app, cwd=app.parent, **env) as url:
        port = url.rsplit(":", 1)[1]
        time.sleep(args.settle)
        job = call(url, "train_start", [20, 1, False, 3, 2000])[0]
        served = upload(url, image)
        call(url, "classify", [{"path": served, "meta": {"_type": "gradio.FileData"}}, None, "none"])  # warm
        before = rss_mb(port)
        latencies, failures, lock = [], [], threading.Lock()

        def client():
            for _ in range(args.requests):
                start = time.perf_counter()
                try:
                    uploaded = {"path": upload(url, image), "meta": {"_type": "gradio.FileData"}}
                    call(url, "classify", [uploaded, None, "none"])
                    with lock:
                        latencies.append(time.perf_counter() - start)
                except Exception as err:  # noqa: BLE001 - every failure counts as lost
                    with lock:
                        failures.append(repr(err)[:200])

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        status = call(url, "train_status", [job])[0]
        after = rss_mb(port)
    latencies.sort()
    total = args.clients * args.requests
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    return {
        "requests": total, "lost": total - len(latencies), "errors": failures[:3],
        "p50_s": round(statistics.median(latencies), 3) if latencies else None, "p99_s": round(p99, 3),
        "throughput_per_s": round(len(latencies) / wall, 1), "training_job_state": status["state"],
        "training_job_epoch": status["epoch"], "rss_mb_before": round(before, 1),
        "rss_mb_after": round(after, 1), "rss_growth_mb": round(after - before, 1)}


if __name__ == "__main__":
    main()
