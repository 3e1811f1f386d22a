"""A job prepared ahead (`training.prepare`, a training worker holds the page's default job):
it trains exactly as the same job built on the spot, and only that job takes it."""

import dataclasses
import json
import time

import numpy as np
import pytest

from explorer.compute import job_task
from explorer.compute.engine import Engine
from explorer.compute.jobs import JobManager
from explorer.train import training
from explorer.train.config import PAGE_DEFAULTS, PREPARE_STAGES, TrainConfig, page_request

pytestmark = pytest.mark.slow

JOB = TrainConfig(depth=8, epochs=1, subset=256, test_subset=64, batch_size=32, data="synthetic",
                  steps_per_execution=1, grad_every=2, log_points=8)


def _steps(out):
    history = json.loads((out / "history.json").read_text())
    return history["steps"], history["grad_norms"]["norms"], history["epochs"]


def test_a_prepared_job_trains_as_the_same_job_built_on_the_spot(tmp_path):
    # as the engine sends it: one stage a task, the worker's precision reset after each
    ready = [job_task.prepare_job(JOB.to_dict(), 1) for _ in PREPARE_STAGES]
    assert ready == [False] * (len(PREPARE_STAGES) - 1) + [True]
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


def test_a_job_that_comes_between_stages_builds_its_own_and_the_preparation_goes_on(tmp_path):
    assert not training.prepare(JOB, stages=2)
    assert training._take_prepared(JOB) is None  # half prepared: not taken
    lines = []
    training.train(JOB, tmp_path / "between", verbose=0, log=lines.append)
    assert not any("traced ahead" in line for line in lines)
    assert training.prepare(JOB)  # the stages left, on what the first two kept
    assert training._take_prepared(JOB)["model"].traced_ahead


def test_the_manager_sends_the_default_job_to_the_worker_that_prepared_it(tmp_path):
    engine = Engine.start(address="", workers=0, trainers=2, wait=True)
    try:
        engine.start_trainers()
        engine.client.wait_for_workers(2, timeout=120)
        manager = JobManager(tmp_path / "runs", engine=engine, prepare=JOB)
        deadline = time.time() + 120
        while time.time() < deadline and manager._prepared is None:
            time.sleep(0.5)
        assert manager._prepared is not None, "no worker prepared the job"
        for _ in range(2):  # the second time: no worker holds it any more; built on the spot
            job_id = manager.start(JOB, owner="alice")
            _wait(manager, job_id)
        logs = [(tmp_path / "runs" / job / "train.log").read_text() for job in
                [entry["id"] for entry in reversed(manager.list("alice"))]]
        assert "traced ahead" in logs[0] and "traced ahead" not in logs[1]
    finally:
        engine.close()


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
