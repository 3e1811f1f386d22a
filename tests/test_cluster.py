"""A cluster run on one machine: two workers on loopback ports, started as a user starts them
(`TF_CONFIG` and `python -m explorer train`), one killed mid-run, both restarted."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.train import cluster

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, "-m", "explorer", "train", "--depth", "8", "--version", "1", "--epochs", "2",
         "--subset", "512", "--test-subset", "64", "--data", "synthetic", "--precision", "float32"]
SHARD = re.compile(r"worker (\d) of 2, epoch (\d+): shard starts with training images ([\d, ]+)")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(out: Path, ports: list[int], scratch: Path, launch: int) -> list[subprocess.Popen]:
    workers = [f"127.0.0.1:{port}" for port in ports]
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    # the non-chief's copy of the run goes under its launch's folder, where the test looks
    # for it (a killed worker leaves its copy behind; one that ends removes it)
    (scratch / f"tmp{launch}").mkdir()
    env["TMPDIR"] = str(scratch / f"tmp{launch}")
    # compiling is most of a launch's time on two cores: the restart reads the steps and
    # initializers the first launch compiled from JAX's persistent cache
    env["JAX_COMPILATION_CACHE_DIR"] = str(scratch / "jax-cache")
    procs = []
    for index in range(len(workers)):
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers},
                                       "task": {"type": "worker", "index": index}})
        log = open(scratch / f"launch{launch}-worker{index}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(TRAIN + ["--out", str(out)], cwd=ROOT, env=dict(env), stdout=log,
                                      stderr=subprocess.STDOUT, text=True))
    return procs


def _wait_for_backup(out: Path, procs, deadline: float) -> None:
    meta = out / "backup" / "training_metadata.json"
    while time.time() < deadline:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1:
            return
        assert all(p.poll() is None for p in procs), "a worker ended before the first epoch's backup"
        time.sleep(0.1)
    raise AssertionError("no backup of the first epoch in time")


def _logs(scratch: Path, launch: int) -> list[str]:
    return [(scratch / f"launch{launch}-worker{i}.log").read_text() for i in range(2)]


@pytest.mark.slow
def test_two_workers_train_one_run_and_resume_after_a_kill(tmp_path):
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    ports = _free_ports(2)
    first = _start_workers(out, ports, scratch, 1)
    try:
        _wait_for_backup(out, first, time.time() + 600)  # minutes on two busy cores
        first[1].send_signal(signal.SIGKILL)  # a worker lost mid-run; the chief is stopped too
        first[0].send_signal(signal.SIGKILL)
    finally:
        for proc in first:
            proc.kill()
            proc.wait()
    assert [p.returncode for p in first] == [-signal.SIGKILL] * 2, _logs(scratch, 1)

    second = _start_workers(out, _free_ports(2), scratch, 2)
    try:
        codes = [proc.wait(timeout=600) for proc in second]
    finally:
        for proc in second:
            proc.kill()
    logs = _logs(scratch, 2)
    assert codes == [0, 0], [log[-3000:] for log in logs]
    results = [json.loads(log.strip().splitlines()[-1]) for log in logs]
    assert all("resumed from epoch 1" in log for log in logs)
    # one run's files, in the shared folder only; the other worker's copy is gone
    assert not list((scratch / "tmp2").iterdir())
    for name in ("model.keras", "history.json", "status.json"):  # tmp1: the killed worker's copy
        assert [p.relative_to(tmp_path) for p in tmp_path.rglob(name) if "tmp1" not in p.parts] \
            == [Path("run") / name]
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 2
    assert [r["worker"] for r in results] == [0, 1] and results[0]["path"] and results[1]["path"] is None
    assert results[0]["weights_digest"] and results[0]["weights_digest"] == results[1]["weights_digest"]
    # each worker read its own rows of the same batches, in both launches
    shards = {}
    for log in _logs(scratch, 1) + logs:
        for worker, epoch, images in SHARD.findall(log):
            shards[int(epoch), int(worker)] = {int(i) for i in images.split(",")}
    assert {1, 2} <= {epoch for epoch, _ in shards}
    for epoch in (1, 2):
        assert len(shards[epoch, 0]) == 4 and not shards[epoch, 0] & shards[epoch, 1]


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "only"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}', "twice"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "from 0 to 1"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', '"type": "worker"'),
])
def test_tf_config_is_checked(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cluster.parse(text)


def test_tf_config_names_the_cluster_and_the_global_batch_splits():
    found = cluster.from_env({"TF_CONFIG": '{"cluster": {"worker": ["h1:5", "h2:5"]}, '
                                           '"task": {"type": "worker", "index": 1}}'})
    assert (found.coordinator, found.size, found.chief) == ("h1:5", 2, False)
    assert cluster.from_env({}) is None
    assert cluster.per_worker_batch(128, 2) == 64
    with pytest.raises(ValueError, match="global batch"):
        cluster.per_worker_batch(127, 2)


@pytest.mark.parametrize("tf_config, extra, message", [
    ('{"cluster": {"worker": ["a:1"]}, "task": {"index": 5}}', {}, "error: TF_CONFIG"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}',
     {"KERAS_BACKEND": "tensorflow"}, "error: a cluster run (TF_CONFIG set) trains under Keras' JAX"),
])
def test_a_bad_cluster_exits_with_status_2(tmp_path, tf_config, extra, message):
    env = {**os.environ, "TF_CONFIG": tf_config, **extra}
    out = subprocess.run(TRAIN + ["--out", str(tmp_path / "run")], check=False, cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith(message), out.stderr[-2000:]
    assert not (tmp_path / "run").exists()  # refused before the run folder is made
