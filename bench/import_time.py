"""How long importing the tutorial's ResNet-56 v1 `.keras` file takes, the proof included (issue 35:
at most 10 s on 2 cores): the command as a user runs it (`python -m explorer import`, Python and
TensorFlow starting included), and `nets.importer.import_model` in a process that has Keras loaded;
wall seconds and CPU seconds of each (on a busy machine the wall time grows, the CPU time much less).
The file is the tutorial's own model (`../shared/reference/tutorial_recipe.py`'s `resnet_v1`, as
its ModelCheckpoint saves it); the mean and the proof's images come from generated data.

    python bench/import_time.py [--rounds 3] [--cores 2]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ROOT, tutorial_module

from explorer.core.runtime import thread_safe_tensorflow


def save_tutorial_resnet56(folder: Path) -> Path:
    import keras

    model = tutorial_module().resnet_v1((32, 32, 3), 56)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3),
                  metrics=["accuracy"])
    path = folder / "cifar10_ResNet56v1_model.001.keras"
    model.save(path)
    return path


def command_seconds(path: Path, out: Path) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds, the printed summary) of one `python -m explorer import`."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    command = [sys.executable, "-m", "explorer", "import", str(path), "--data", "synthetic",
               "--out", str(out), "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(done.stderr)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    return seconds, used, json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="the cores this process and its command use")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))[: args.cores]
    os.sched_setaffinity(0, cores)  # the command inherits it
    thread_safe_tensorflow()  # as the command and the app's process run it: oneDNN off
    from explorer.nets.importer import import_model

    folder = Path(tempfile.mkdtemp(prefix="import-time-"))
    try:
        path = save_tutorial_resnet56(folder)
        commands, calls, cpus = [], [], []
        for i in range(args.rounds):  # alternated, as this machine's speed drifts
            seconds, used, summary = command_seconds(path, folder / f"command{i}")
            commands.append(seconds)
            cpus.append(used)
            start, cpu = time.perf_counter(), time.process_time()
            import_model(path, folder / f"call{i}", data="synthetic")
            calls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            print(f"round {i + 1}: command {commands[-1]:.2f} s ({cpus[-2]:.1f} CPU s)   import_model "
                  f"{calls[-1]:.2f} s ({cpus[-1]:.1f} CPU s)", flush=True)
        print(json.dumps({"model": "ResNet-56 v1 (the tutorial's)", "cores": len(cores),
                          "file_mb": round(path.stat().st_size / 2**20, 1),
                          "command_s_median": round(statistics.median(commands), 2),
                          "import_model_s_median": round(statistics.median(calls), 2),
                          "import_model_s_first": round(calls[0], 2),
                          # CPU seconds over the cores: the wall time of an idle machine, at best
                          "command_cpu_s_median": round(statistics.median(cpus[0::2]), 2),
                          "import_model_cpu_s_median": round(statistics.median(cpus[1::2]), 2),
                          "summary": summary}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
