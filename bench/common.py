"""Shared benchmark plumbing: the tutorial baseline, the app as a server, raw REST calls,
and alternating-pair timing (this machine's speed drifts up to 2x within minutes, so every
figure is a median over pairs measured side by side, never a single timing)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "tutorial_recipe.py"
ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
sys.path.insert(0, str(ROOT))


def tutorial_module():
    """The tutorial's code, imported as is from ../shared/reference (never copied here)."""
    if not REFERENCE.exists():
        raise SystemExit(f"baseline missing: {REFERENCE}")
    spec = importlib.util.spec_from_file_location("tutorial_recipe", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alternate(name_a, fn_a, name_b, fn_b, pairs=3, warmup=True):
    """Runs fn_a and fn_b alternately `pairs` times; prints each pair and the median ratio b/a
    (how many times slower b is than a). Each fn returns seconds (or None to time it here)."""
    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return out if isinstance(out, float) else time.perf_counter() - start

    if warmup:
        fn_a(), fn_b()
    ratios, times_a, times_b = [], [], []
    for i in range(pairs):
        a, b = (timed(fn_a), timed(fn_b)) if i % 2 == 0 else tuple(reversed((timed(fn_b), timed(fn_a))))
        times_a.append(a)
        times_b.append(b)
        ratios.append(b / a)
        print(f"pair {i + 1}: {name_a} {a:.3f} s   {name_b} {b:.3f} s   ratio {b / a:.2f}", flush=True)
    result = {name_a: statistics.median(times_a), name_b: statistics.median(times_b),
              "median_ratio": statistics.median(ratios), "pairs": pairs,
              "ratios": [a / b for a, b in zip(times_a, times_b)]}  # a over b, pair by pair
    print(json.dumps(result), flush=True)
    return result


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def app_server(log_path=None, cwd=ROOT, app=ROOT / "app.py", **env):
    """Runs `python app.py` on a free port with `env` added; yields its URL once it answers.

    Shared by the benchmarks and the tests (tests/conftest.py). The app's output goes to
    `log_path` when given, and is quoted if the app dies while starting. `cwd` is its working
    folder (the fuzz gives it an empty one, to see any file a request leaves there); `app` the
    app to run (bench/load.py runs an earlier commit's checkout beside this one).
    """
    port = _free_port()
    with open(log_path or os.devnull, "w") as log:
        proc = subprocess.Popen([sys.executable, str(app)], cwd=cwd,
                                env={**os.environ, "EXPLORER_PORT": str(port), **env},
                                stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(url, timeout=1)
                    break
                except OSError:
                    if proc.poll() is not None:
                        tail = Path(log_path).read_text()[-2000:] if log_path else ""
                        raise RuntimeError(f"the app exited while starting: {tail}") from None
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def untrained_checkpoints(folder: Path) -> Path:
    """Writes an untrained ResNet-20 and its plain twin with their manifest into `folder`, for
    an app that needs no shipped file (EXPLORER_PRETRAINED); returns `folder`."""
    from explorer.core.specs import make_spec
    from explorer.nets.models import build_model

    entries = []
    for name, residual in (("r20_untrained", True), ("plain20_untrained", False)):
        build_model(make_spec(20, 1, residual=residual)).save(folder / f"{name}.keras")
        entries.append({"name": name, "file": f"{name}.keras", "test_accuracy": None, "depth": 20,
                        "version": 1, "residual": residual, "shortcut": "projection"})
    (folder / "manifest.json").write_text(json.dumps({"checkpoints": entries}))
    return folder


def call(url, api_name, data):
    """One call over Gradio's raw REST API (POST, then read the event stream)."""
    body = json.dumps({"data": data}).encode()
    req = urllib.request.Request(f"{url}/gradio_api/call/{api_name}", body,
                                 {"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(req).read())["event_id"]
    stream = urllib.request.urlopen(f"{url}/gradio_api/call/{api_name}/{event_id}").read().decode()
    kind, payload = None, None
    for line in stream.splitlines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            payload = line.split(":", 1)[1].strip()
    if kind != "complete":
        raise RuntimeError(f"{api_name} failed: {kind} {payload}")
    return json.loads(payload)


def upload(url, path):
    """Uploads a file to the app (Gradio's /gradio_api/upload); returns the path it is served at."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() \
        + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{url}/gradio_api/upload", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return json.loads(urllib.request.urlopen(req).read())[0]


def image_variants(image: Path, count: int) -> list[Path]:
    """`count` copies of `image`, each with one pixel changed (so each has other bytes)."""
    from PIL import Image

    folder = Path(tempfile.mkdtemp())
    original = Image.open(image).convert("RGB")
    paths = []
    for i in range(count):
        copy = original.copy()
        copy.putpixel((i % copy.width, (i // copy.width) % copy.height), (i % 256, 7, 7))
        paths.append(folder / f"variant{i}.png")
        copy.save(paths[-1])
    return paths


@contextmanager
def external_cluster(folder: Path, trains=(True,)):
    """A cluster started as another machine would start one: `dask scheduler` and a worker per
    entry of `trains` (whether it takes training jobs), each by the command
    `local_cluster.worker_command` prints, in `folder` and with a run folder of their own, the
    package importable (the scheduler unpickles tasks too). Yields the scheduler's address; their
    output goes to `folder`/scheduler.log and worker-<i>.log (`cluster_logs` reads their tails)."""
    from explorer.compute import local_cluster  # deferred: a benchmark that needs no cluster loads no Dask

    port_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXPLORER_RUNS": str(folder / "their-runs")}

    def logged(command, name):
        with open(folder / f"{name}.log", "wb") as log:  # the child keeps its own copy of the handle
            return subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)

    scheduler = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                 "--scheduler-file", str(port_file), "--no-dashboard"]
    processes = [logged(scheduler, "scheduler")]
    try:
        for _ in range(200):
            if port_file.exists() and port_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(port_file.read_text())["address"]
        for i, takes_jobs in enumerate(trains):
            processes.append(logged(local_cluster.worker_command(address, trains=takes_jobs), f"worker-{i}"))
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)


def cluster_logs(folder: Path, lines: int = 30) -> str:
    """The last `lines` of each log `external_cluster` wrote in `folder`: what a failed test shows."""
    return "\n".join(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                     for log in sorted(folder.glob("*.log")))