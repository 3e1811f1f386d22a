"""Soak: mixed traffic against the app for a while, then the request counts, the errors (0
expected), p50/p99 latency and the app's memory (RSS) at the start and the end.

    python bench/soak.py [--minutes 20] [--users 2] [--url http://127.0.0.1:7860]

Without --url it starts the app as the tests do (generated data, untrained checkpoints, private
runs). Each simulated user picks, at random: a page load, an architecture build, a gradient
flow, a classification, or a short training job (started, watched a few seconds, stopped).
The RSS is the app's process alone (training jobs run in processes of their own).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported

import argparse
import io
import random
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from common import app_server, untrained_checkpoints
from PIL import Image

WEIGHTS = {"page": 3, "architecture": 3, "gradients": 2, "classify": 4, "training": 1}


def app_rss_mb(port: int) -> float | None:
    """Resident memory of the app listening on `port` (found by its EXPLORER_PORT), in MB."""
    for proc in Path("/proc").iterdir():
        try:
            if f"EXPLORER_PORT={port}".encode() in (proc / "environ").read_bytes() \
                    and b"app.py" in (proc / "cmdline").read_bytes():
                status = (proc / "status").read_text()
                return int(status.split("VmRSS:")[1].split()[0]) / 1024
        except (OSError, IndexError, ValueError):
            continue
    return None


def _png(folder: Path, rng: random.Random) -> str:
    pixels = np.random.default_rng(rng.randrange(10**9)).integers(0, 255, (32, 32, 3), np.uint8)
    path = folder / f"upload-{rng.randrange(10**9)}.png"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return str(path)


def one_request(kind: str, client, url: str, rng: random.Random, folder: Path) -> None:
    """One user action of `kind`; raises on any error."""
    from gradio_client import handle_file

    if kind == "page":
        with urllib.request.urlopen(url, timeout=60) as page:
            page.read()
    elif kind == "architecture":
        client.predict(depth=rng.choice([20, 56, 110, 1202]), version=1, api_name="/build_architecture")
    elif kind == "gradients":
        client.predict(depth=rng.choice([20, 56]), version=1, batch_size=rng.choice([16, 32]),
                       seed=rng.randrange(3), api_name="/gradient_flow")
    elif kind == "classify":
        client.predict(image=handle_file(_png(folder, rng)), checkpoint="r20_untrained", api_name="/classify")
    elif kind == "training":
        job = client.predict(depth=20, version=1, epochs=1, subset=256, api_name="/train_start")
        for _ in range(3):
            time.sleep(1)
            client.predict(job_id=job, api_name="/train_status")
        client.predict(job_id=job, api_name="/train_stop")


def user(url: str, until: float, seed: int, record) -> None:
    """One simulated user: weighted random actions until `until`."""
    from gradio_client import Client

    rng = random.Random(seed)
    client = Client(url, verbose=False, download_files=False)
    folder = Path(tempfile.mkdtemp(prefix="resnet-explorer-soak-"))
    try:
        while time.time() < until:
            kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
            start = time.perf_counter()
            try:
                one_request(kind, client, url, rng, folder)
                record(kind, time.perf_counter() - start, None)
            except Exception as err:  # noqa: BLE001 (every failure is counted and reported)
                record(kind, time.perf_counter() - start, f"{type(err).__name__}: {str(err)[:200]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def soak(url: str, minutes: float, users: int) -> dict:
    """Runs the traffic; returns counts, errors, latencies and memory."""
    port = int(url.rsplit(":", 1)[1].strip("/"))
    latencies, counts, errors = defaultdict(list), Counter(), Counter()
    first_error = {}
    lock = threading.Lock()

    def record(kind, seconds, error):
        with lock:
            counts[kind] += 1
            latencies[kind].append(seconds)
            if error:
                errors[kind] += 1
                first_error.setdefault(kind, error)

    rss_start = app_rss_mb(port)
    until = time.time() + minutes * 60
    threads = [threading.Thread(target=user, args=(url, until, seed, record)) for seed in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"counts": counts, "errors": errors, "first_error": first_error, "latencies": latencies,
            "rss_start": rss_start, "rss_end": app_rss_mb(port)}


def _quantile(values, q):
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(result: dict, minutes: float) -> None:
    everything = [s for values in result["latencies"].values() for s in values]
    print(f"soak: {minutes:g} min, {sum(result['counts'].values())} requests, "
          f"{sum(result['errors'].values())} errors (expected 0)")
    for kind, values in sorted(result["latencies"].items()):
        print(f"  {kind:13s} {len(values):5d} requests  {result['errors'][kind]:3d} errors  "
              f"p50 {_quantile(values, 50):7.3f} s  p99 {_quantile(values, 99):7.3f} s")
    if everything:
        print(f"  {'all':13s} {len(everything):5d} requests  p50 {_quantile(everything, 50):.3f} s  "
              f"p99 {_quantile(everything, 99):.3f} s")
    for kind, error in result["first_error"].items():
        print(f"  first {kind} error: {error}")
    start, end = result["rss_start"], result["rss_end"]
    print(f"app RSS: start {start:.0f} MB, end {end:.0f} MB" if start and end else "app RSS: not readable")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--users", type=int, default=2, help="simulated users at once")
    parser.add_argument("--url", help="soak a running app instead of starting one")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="resnet-explorer-soak-app-"))
    if args.url:
        server = nullcontext(args.url)
    else:
        (base / "pretrained").mkdir()
        server = app_server(log_path=base / "app.log", EXPLORER_DATA="synthetic",
                            EXPLORER_RUNS=str(base / "runs"), EXPLORER_CACHE=str(base / "cache"),
                            EXPLORER_PRETRAINED=str(untrained_checkpoints(base / "pretrained")))
    try:
        with server as url:
            result = soak(url, args.minutes, args.users)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(result, args.minutes)
    return 1 if sum(result["errors"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
