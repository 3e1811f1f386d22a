"""The background job manager on the engine: lifecycle, queue, ownership, failures, restarts.

The jobs run on a local Dask cluster of this module's own (one worker that answers studies,
one that trains), started with the engine's own commands; the caps and records are tested
against an engine that never runs anything (`NeverRuns`)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.compute.engine import Engine
from explorer.compute.job_task import DIED
from explorer.compute.jobs import JobManager, time_limit
from explorer.train.config import TrainConfig

pytestmark = pytest.mark.slow

TINY = dict(depth=8, epochs=1, subset=64, test_subset=32, batch_size=32, data="synthetic",
            steps_per_execution=1, grad_every=1)


def _wait(manager, job_id, states=("done", "stopped", "failed"), timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = manager.status(job_id)
        if status["state"] in states:
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {status['state']}")


@pytest.fixture(scope="module")
def engine():
    engine = Engine.start(address="", workers=1, trainers=1, wait=True)
    engine.start_trainers()
    engine.client.wait_for_workers(2, timeout=120)
    yield engine
    engine.close()


@pytest.fixture
def manager(tmp_path, engine):
    manager = JobManager(tmp_path / "runs", engine=engine, max_epochs=5, max_seconds=300)
    yield manager
    manager.shutdown()


class _Future:
    def add_done_callback(self, callback):
        pass  # never done

    def cancel(self):
        pass


class _Client:
    def subscribe_topic(self, topic, handler):
        pass

    def unsubscribe_topic(self, topic):
        pass


class NeverRuns:
    """An engine with a training worker that never takes a job: every job stays queued."""

    client = _Client()

    def can_train(self):
        return True

    def start_trainers(self):
        pass

    def has_gpu(self):
        return False

    def submit(self, *args, **kwargs):
        return _Future()

    def forget(self, topic):
        pass


def test_job_runs_to_done_and_a_restarted_manager_lists_it(manager, tmp_path):
    job_id = manager.start(TrainConfig(**TINY), owner="alice")
    status = _wait(manager, job_id)
    assert status["state"] == "done", status["error"]
    assert len(status["history"]["epochs"]) == 1 and status["has_checkpoint"]
    assert status["device"].startswith(("CPU", "GPU"))
    assert status["machine"]  # the worker's host, sent by the task
    assert manager.checkpoint(job_id).name == "model.keras"
    again = JobManager(tmp_path / "runs")  # listing starts no engine
    assert [j["id"] for j in again.list("alice")] == [job_id]
    assert again.status(job_id)["state"] == "done"
    assert again.list("bob") == []


def test_a_job_shows_its_progress_while_it_trains_though_its_worker_writes_elsewhere(manager, engine):
    from explorer.nets.models import load_model

    job_id = manager.start(TrainConfig(**{**TINY, "epochs": 3, "subset": 512}), owner="alice")
    seen = []
    while (status := manager.status(job_id))["state"] in ("queued", "running"):
        seen.append((status["epoch"], status["step"], status["has_checkpoint"]))
        time.sleep(0.1)
    assert status["state"] == "done", status["error"]
    assert any(step and not epoch for epoch, step, _ in seen), "no step shown before the first epoch's end"
    assert any(checkpoint for epoch, _, checkpoint in seen if epoch < 3), "no checkpoint came before the end"
    # the worker trained in its own folder, which it removed: the page's copy came through the engine
    folders = engine.client.run(
        lambda dask_worker: [path.name for path in (Path(dask_worker.local_directory) / "jobs").glob("*")])
    assert all(job_id not in names for names in folders.values())
    assert load_model(manager.checkpoint(job_id)).spec.depth == 8


def test_queue_position_and_ownership(manager):
    first = manager.start(TrainConfig(**{**TINY, "epochs": 5, "subset": 2048}), owner="alice")
    _wait(manager, first, states=("running",))
    second = manager.start(TrainConfig(**TINY), owner="alice")
    assert manager.status(second)["state"] == "queued"
    assert manager.status(second)["queue_position"] == 1
    with pytest.raises(ValueError, match="another session"):
        manager.stop(first, owner="mallory")
    started = time.time()
    assert manager.stop(first, owner="alice")["state"] == "stopped"
    assert time.time() - started < 3
    assert manager.stop(second, owner="alice")["state"] == "stopped"


def test_a_job_stuck_in_one_step_is_ended_within_three_seconds(manager):
    # a ResNet-218's build and first trace take longer than Stop waits: its worker is restarted
    job_id = manager.start(TrainConfig(**{**TINY, "depth": 218}), owner="alice")
    _wait(manager, job_id, states=("running",))
    started = time.time()
    assert manager.stop(job_id, owner="alice")["state"] == "stopped"
    assert time.time() - started < 3.5
    after = manager.start(TrainConfig(**TINY), owner="alice")
    assert _wait(manager, after)["state"] == "done"  # the restarted worker trains again


def test_a_worker_killed_during_a_job_gives_a_clear_message_and_the_next_job_runs(manager, engine):
    job_id = manager.start(TrainConfig(**{**TINY, "epochs": 5, "subset": 2048}), owner="alice")
    _wait(manager, job_id, states=("running",))
    worker = manager._jobs[job_id].worker
    pid = engine.client.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    status = _wait(manager, job_id, timeout=60)
    assert status["state"] == "failed" and status["error"] == DIED
    assert time.time() - killed < 10
    after = manager.start(TrainConfig(**TINY), owner="alice")
    assert _wait(manager, after)["state"] == "done"


def test_failing_job_ends_failed_with_its_reason_and_frees_its_slot(manager, tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not a tar archive")
    job_id = manager.start(TrainConfig(**{**TINY, "data": str(bad)}), owner="alice")
    status = _wait(manager, job_id)
    assert status["state"] == "failed"
    assert "not a readable tar archive" in status["error"]
    ok = manager.start(TrainConfig(**TINY), owner="alice")
    assert _wait(manager, ok)["state"] == "done"


def test_bad_requests_are_refused_before_any_work(tmp_path):
    manager = JobManager(tmp_path / "runs", engine=NeverRuns(), max_epochs=5)
    with pytest.raises(ValueError, match="unknown job id"):
        manager.status("../../etc/passwd")
    with pytest.raises(ValueError, match="at most 5 epochs"):
        manager.start(TrainConfig(**{**TINY, "epochs": 6}), owner="alice")
    with pytest.raises(ValueError, match="nearest valid depths"):
        manager.start(TrainConfig(**{**TINY, "depth": 9}), owner="alice")


def test_unwritable_run_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    manager = JobManager(blocker / "runs", engine=NeverRuns())
    with pytest.raises(ValueError, match="cannot create the run folder"):
        manager.start(TrainConfig(**TINY), owner="alice")


def test_no_worker_that_trains_fails_the_job_with_how_to_add_one(tmp_path):
    class NoTrainer(NeverRuns):
        def can_train(self):
            return False

    manager = JobManager(tmp_path / "runs", engine=NoTrainer())
    status = manager.status(manager.start(TrainConfig(**TINY), owner="alice"))
    assert status["state"] == "failed" and "--resources JOB=1" in status["error"]


KILLED_APP = """
import sys, time
from explorer.compute.engine import Engine
from explorer.compute.jobs import JobManager
from explorer.train.config import TrainConfig
engine = Engine.start(address="", workers=0, trainers=1)
manager = JobManager(sys.argv[1], engine=engine)
config = dict(depth=8, epochs=50, subset=64, test_subset=32, batch_size=32, data="synthetic",
              steps_per_execution=1, grad_every=1)
print(engine.address, flush=True)
print(manager.start(TrainConfig(**config), owner="alice"), flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_app_ends_its_jobs_and_keeps_finished_checkpoints(tmp_path):
    from explorer.nets.models import load_model

    root = tmp_path / "runs"
    app = subprocess.Popen([sys.executable, "-c", KILLED_APP, str(root)], stdout=subprocess.PIPE,
                           text=True, cwd=Path(__file__).resolve().parents[1])
    address = app.stdout.readline().strip()
    job_id = app.stdout.readline().strip()
    history = root / job_id / "history.json"
    deadline = time.time() + 180
    while time.time() < deadline:
        if history.exists() and len(json.loads(history.read_text())["epochs"]) >= 2:
            break
        time.sleep(0.5)
    else:
        app.kill()
        raise AssertionError("the job never finished two epochs")
    app.kill()  # SIGKILL: no cleanup code runs in the app
    app.wait()
    pattern = f"dask_worker {address}"  # the app's training worker
    deadline = time.time() + 20
    while time.time() < deadline and subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                                                    check=False).returncode == 0:
        time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False).returncode != 0
    assert load_model(root / job_id / "model.keras").spec.depth == 8
    restarted = JobManager(root)
    status = restarted.status(job_id)
    assert status["state"] == "stopped" and "restarted" in status["error"]
    assert len(status["history"]["epochs"]) >= 2


def test_a_race_is_queued_all_or_none(tmp_path):
    manager = JobManager(tmp_path / "runs", engine=NeverRuns(), max_queued=3)  # nothing ever launches
    manager.start(TrainConfig(**TINY), owner="alice")
    manager.start(TrainConfig(**TINY), owner="alice")
    with pytest.raises(ValueError, match="busy"):
        manager.start_group([TrainConfig(**TINY), TrainConfig(**{**TINY, "residual": False})],
                            owner="alice", group="race")
    assert len(manager.list("alice")) == 2  # neither twin of the refused race was queued
    ids = manager.start_group([TrainConfig(**TINY)], owner="alice", group="race")
    assert manager.status(ids[0])["group"] == "race"


@pytest.mark.parametrize("job_seconds, manager_seconds, limit", [
    (0, 3600, 3600), (600, 3600, 600), (7200, 3600, 3600),
    (600, 0, 600),  # EXPLORER_JOB_SECONDS=0 (no cap) once dropped the job's own limit
    (0, 0, 0)])
def test_a_job_runs_under_the_tighter_time_limit(job_seconds, manager_seconds, limit):
    assert time_limit(job_seconds, manager_seconds) == limit


def test_one_session_cannot_hold_every_slot(tmp_path):
    manager = JobManager(tmp_path / "runs", engine=NeverRuns(), max_queued=8, max_per_owner=3)
    for _ in range(3):
        manager.start(TrainConfig(**TINY), owner="greedy")
    with pytest.raises(ValueError, match="you have 3 jobs queued or running"):
        manager.start(TrainConfig(**TINY), owner="greedy")
    manager.start(TrainConfig(**TINY), owner="other")  # the others still get in
    manager.stop(manager.list("greedy")[0]["id"], owner="greedy")
    manager.start(TrainConfig(**TINY), owner="greedy")  # a stopped job frees its place


def test_ended_jobs_beyond_the_kept_number_are_removed(tmp_path):
    manager = JobManager(tmp_path / "runs", engine=NeverRuns(), max_per_owner=10, max_kept=2)
    old = [manager.start(TrainConfig(**TINY), owner="alice") for _ in range(4)]
    for job_id in old:
        manager.stop(job_id, owner="alice")  # queued -> stopped: ended
    newest = manager.start(TrainConfig(**TINY), owner="alice")
    kept = {job["id"] for job in manager.list("alice")}
    assert kept == {newest, *old[-2:]}
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(kept)
    with pytest.raises(ValueError, match="unknown job id"):
        manager.status(old[0])
