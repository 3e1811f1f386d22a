"""A job prepared ahead (`training.prepare`, the spare that holds the page's default job):
it trains exactly as the same job built on the spot, and only that job takes it."""

import dataclasses
import json
import time

import numpy as np
import pytest

from explorer.compute.jobs import JobManager
from explorer.compute.spare import SparePool
from explorer.train import training
from explorer.train.config import PAGE_DEFAULTS, TrainConfig, page_request

pytestmark = pytest.mark.slow

JOB = TrainConfig(depth=8, epochs=1, subset=256, test_subset=64, batch_size=32, data="synthetic",
                  steps_per_execution=1, grad_every=2, log_points=8)


def _steps(out):
    history = json.loads((out / "history.json").read_text())
    return history["steps"], history["grad_norms"]["norms"], history["epochs"]


def test_a_prepared_job_trains_as_the_same_job_built_on_the_spot(tmp_path):
    assert training.prepare(JOB)
    lines = []
    prepared = training.train(JOB, tmp_path / "prepared", verbose=0, log=lines.append)
    assert any("traced ahead" in line for line in lines)  # it took the prepared model
    assert training._PREPARED == {}  # taken once
    fresh = training.train(JOB, tmp_path / "fresh", verbose=0)
    (steps_p, grads_p, epochs_p), (steps_f, grads_f, epochs_f) = (_steps(tmp_path / "prepared"),
                                                                  _steps(tmp_path / "fresh"))
    # the step that traced fit's function was undone: the same losses from the first step on
    assert steps_p["step"] == steps_f["step"] and len(steps_p["step"]) == 8
    np.testing.assert_allclose(steps_p["loss"], steps_f["loss"], rtol=1e-5)
    np.testing.assert_allclose(steps_p["accuracy"], steps_f["accuracy"], rtol=1e-5)
    np.testing.assert_allclose(grads_p, grads_f, rtol=1e-4)
    assert epochs_p[0]["val_accuracy"] == pytest.approx(epochs_f[0]["val_accuracy"])
    assert prepared["test_accuracy"] == fresh["test_accuracy"]


def test_only_the_same_job_takes_it():
    assert training.prepare(JOB)
    assert training._take_prepared(dataclasses.replace(JOB, epochs=2)) is None  # another job
    assert training._take_prepared(dataclasses.replace(JOB, seed=1)) is None
    taken = training._take_prepared(dataclasses.replace(JOB, max_seconds=60.0))  # the manager's cap: the same
    assert taken is not None and taken["model"].spec.depth == 8
    assert training._take_prepared(JOB) is None


def test_a_job_that_comes_stops_the_preparation():
    calls = []
    assert not training.prepare(JOB, interrupted=lambda: calls.append(1) or len(calls) > 1)
    assert training._PREPARED == {} and len(calls) == 2


def test_the_manager_hands_the_default_job_to_the_spare_that_prepared_it(tmp_path):
    manager = JobManager(tmp_path / "runs", max_running=1, spares=1, prepare=JOB)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any(
                manager._spares.state(process) == "ready" for process in manager._spares.processes):
            time.sleep(0.5)
        assert manager._spares.processes, "no spare"
        assert manager._spares.state(manager._spares.processes[0]) == "ready", (
            "the spare did not prepare the job")
        first = manager.start(JOB, owner="alice")
        _wait(manager, first)
        assert "traced ahead" in (tmp_path / "runs" / first / "train.log").read_text()
    finally:
        manager.shutdown()


class FakeSpare:
    def __init__(self, pid):
        self.stdin, self.written, self.pid = self, b"", pid

    def poll(self):
        return None

    def write(self, data):
        self.written += data

    def close(self):
        pass


def test_each_job_goes_to_the_best_spare(tmp_path):
    pool = SparePool(tmp_path, 3, tmp_path, prepare=JOB)
    importing, warm, prepared = FakeSpare(1), FakeSpare(2), FakeSpare(3)
    same_job = dataclasses.replace(JOB, max_seconds=9.0)  # the manager's cap: the same job
    (tmp_path / "spare-2.state").write_text("warm")
    (tmp_path / "spare-3.state").write_text("preparing")
    pool.processes = [importing, prepared, warm]
    assert pool.take(["train"], tmp_path / "a.log", same_job) is warm  # not ready yet: a warm one
    assert not (tmp_path / "spare-2.state").exists()
    assert pool.take(["train"], tmp_path / "b.log", same_job) is prepared  # preparing: sooner than importing
    (tmp_path / "spare-3.state").write_text("ready")
    (tmp_path / "spare-2.state").write_text("warm")
    pool.processes = [prepared, warm, importing]
    assert pool.take(["train"], tmp_path / "c.log", dataclasses.replace(JOB, epochs=3)) is warm  # another job
    pool.processes = [importing, warm, prepared]
    assert pool.take(["train"], tmp_path / "d.log", same_job) is prepared
    assert json.loads(prepared.written.decode().splitlines()[-1])["argv"] == ["train"]
    pool.mark_busy(True)
    assert (tmp_path / "jobs-running").exists()
    pool.mark_busy(False)
    assert not (tmp_path / "jobs-running").exists()


def test_the_page_default_job():
    config = page_request(**PAGE_DEFAULTS)
    assert ((config.depth, config.version, config.residual, config.epochs, config.subset)
            == (20, 1, True, 2, 4000))
    assert ((config.batch_size, config.steps_per_execution, config.test_subset, config.seed)
            == (128, 1, 2000, 0))


def _wait(manager, job_id, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = manager.status(job_id)
        if status["state"] in ("done", "stopped", "failed"):
            assert status["state"] == "done", status["error"]
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {status['state']}")
