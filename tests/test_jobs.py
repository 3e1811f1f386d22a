"""The background job manager: lifecycle, queue, ownership, failures, restarts."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {status['state']}")


@pytest.fixture
def manager(tmp_path):
    manager = JobManager(tmp_path / "runs", max_running=1, max_epochs=5, max_seconds=300)
    yield manager
    manager.shutdown()


def test_job_runs_to_done_and_a_restarted_manager_lists_it(manager, tmp_path):
    job_id = manager.start(TrainConfig(**TINY), owner="alice")
    status = _wait(manager, job_id)
    assert status["state"] == "done", status["error"]
    assert len(status["history"]["epochs"]) == 1 and status["has_checkpoint"]
    assert status["device"].startswith(("CPU", "GPU"))
    assert manager.checkpoint(job_id).name == "model.keras"
    again = JobManager(tmp_path / "runs")
    assert [j["id"] for j in again.list("alice")] == [job_id]
    assert again.status(job_id)["state"] == "done"
    assert again.list("bob") == []


def test_a_job_takes_the_warm_spare_and_a_new_one_warms_up(tmp_path):
    manager = JobManager(tmp_path / "runs", max_running=1, spares=1)
    try:
        _takes_the_spare(manager)
    finally:
        manager.shutdown()
    time.sleep(1.0)  # four rounds of the pump: none may warm a spare behind the ones killed
    assert manager._spares.processes == []
    spares = subprocess.run(["pgrep", "-f", f"explorer.compute.spare {tmp_path / 'runs'}"],
                            capture_output=True, check=False)
    assert spares.returncode != 0, "a spare outlived its manager's shutdown"


def _takes_the_spare(manager):
    deadline = time.time() + 60
    while not manager._spares.processes and time.time() < deadline:
        time.sleep(0.1)
    assert len(manager._spares.processes) == 1, "no spare process was started"  # max_running=1: one
    spare = manager._spares.processes[0]
    time.sleep(8)  # warm: Python, TensorFlow and the training code loaded
    job_id = manager.start(TrainConfig(**TINY), owner="alice")
    while manager.status(job_id)["state"] == "queued":
        time.sleep(0.05)
    assert manager._jobs[job_id].process is spare  # the job runs in the spare, not a new process
    status = _wait(manager, job_id)
    assert status["state"] == "done", status["error"]
    # its output: the job's log
    assert "\"test_accuracy\"" in (manager.root / job_id / "train.log").read_text()
    assert spare.returncode == 0
    deadline = time.time() + 10
    while not manager._spares.processes and time.time() < deadline:
        time.sleep(0.1)
    assert (len(manager._spares.processes) == 1 and manager._spares.processes[0] is not spare
            and manager._spares.processes[0].poll() is None)


def test_no_spare_where_no_job_can_run(tmp_path):
    manager = JobManager(tmp_path / "runs", max_running=0, spares=2)
    try:
        time.sleep(1)
        assert manager._spares.processes == []
    finally:
        manager.shutdown()


def test_queue_position_and_ownership(manager):
    first = manager.start(TrainConfig(**{**TINY, "epochs": 5}), owner="alice")
    _wait(manager, first, states=("running",))
    second = manager.start(TrainConfig(**TINY), owner="alice")
    assert manager.status(second)["state"] == "queued"
    assert manager.status(second)["queue_position"] == 1
    with pytest.raises(ValueError, match="another session"):
        manager.stop(first, owner="mallory")
    started = time.time()
    assert manager.stop(first, owner="alice")["state"] == "stopped"
    assert time.time() - started < 12
    assert manager.stop(second, owner="alice")["state"] == "stopped"


def test_failing_job_ends_failed_with_its_reason_and_frees_its_slot(manager, tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not a tar archive")
    job_id = manager.start(TrainConfig(**{**TINY, "data": str(bad)}), owner="alice")
    status = _wait(manager, job_id)
    assert status["state"] == "failed"
    assert "not a readable tar archive" in status["error"]
    ok = manager.start(TrainConfig(**TINY), owner="alice")
    assert _wait(manager, ok)["state"] == "done"


def test_bad_requests_are_refused_before_any_work(manager, tmp_path):
    with pytest.raises(ValueError, match="unknown job id"):
        manager.status("../../etc/passwd")
    with pytest.raises(ValueError, match="at most 5 epochs"):
        manager.start(TrainConfig(**{**TINY, "epochs": 6}), owner="alice")
    with pytest.raises(ValueError, match="nearest valid depths"):
        manager.start(TrainConfig(**{**TINY, "depth": 9}), owner="alice")


def test_unwritable_run_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    manager = JobManager(blocker / "runs")
    with pytest.raises(ValueError, match="cannot create the run folder"):
        manager.start(TrainConfig(**TINY), owner="alice")


KILLED_APP = """
import sys, time
from explorer.compute.jobs import JobManager, time_limit
from explorer.train.config import TrainConfig
manager = JobManager(sys.argv[1])
config = dict(depth=8, epochs=50, subset=64, test_subset=32, batch_size=32, data="synthetic",
              steps_per_execution=1, grad_every=1)
print(manager.start(TrainConfig(**config), owner="alice"), flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_app_ends_its_jobs_and_keeps_finished_checkpoints(tmp_path):
    from explorer.nets.models import load_model

    root = tmp_path / "runs"
    app = subprocess.Popen([sys.executable, "-c", KILLED_APP, str(root)], stdout=subprocess.PIPE,
                           text=True, cwd=Path(__file__).resolve().parents[1])
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
    pattern = str(root)  # the job (`--out ROOT/<id>`) and the warm spare (`explorer.compute.spare ROOT`)
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
    restarted.shutdown()


def test_a_race_is_queued_all_or_none(tmp_path):
    manager = JobManager(tmp_path / "runs", max_running=0, max_queued=3)  # nothing ever launches
    try:
        manager.start(TrainConfig(**TINY), owner="alice")
        manager.start(TrainConfig(**TINY), owner="alice")
        with pytest.raises(ValueError, match="busy"):
            manager.start_group([TrainConfig(**TINY), TrainConfig(**{**TINY, "residual": False})],
                                owner="alice", group="race")
        assert len(manager.list("alice")) == 2  # neither twin of the refused race was queued
        ids = manager.start_group([TrainConfig(**TINY)], owner="alice", group="race")
        assert manager.status(ids[0])["group"] == "race"
    finally:
        manager.shutdown()


def test_a_job_that_cannot_launch_fails_and_the_queue_keeps_moving(manager):
    import shutil

    first = manager.start(TrainConfig(**{**TINY, "epochs": 5}), owner="alice")
    _wait(manager, first, states=("running",))
    doomed = manager.start(TrainConfig(**TINY), owner="alice")
    shutil.rmtree(manager.status(doomed) and manager.root / doomed)  # its folder vanishes while queued
    manager.stop(first, owner="alice")
    status = _wait(manager, doomed)
    assert status["state"] == "failed" and "could not start training" in status["error"]
    after = manager.start(TrainConfig(**TINY), owner="alice")
    assert _wait(manager, after)["state"] == "done"


@pytest.mark.parametrize("job_seconds, manager_seconds, limit", [
    (0, 3600, 3600), (600, 3600, 600), (7200, 3600, 3600),
    (600, 0, 600),  # EXPLORER_JOB_SECONDS=0 (no cap) once dropped the job's own limit
    (0, 0, 0)])
def test_a_job_runs_under_the_tighter_time_limit(job_seconds, manager_seconds, limit):
    assert time_limit(job_seconds, manager_seconds) == limit


def test_one_session_cannot_hold_every_slot(tmp_path):
    manager = JobManager(tmp_path / "runs", max_running=0, max_queued=8, max_per_owner=3)
    try:
        for _ in range(3):
            manager.start(TrainConfig(**TINY), owner="greedy")
        with pytest.raises(ValueError, match="you have 3 jobs queued or running"):
            manager.start(TrainConfig(**TINY), owner="greedy")
        manager.start(TrainConfig(**TINY), owner="other")  # the others still get in
        manager.stop(manager.list("greedy")[0]["id"], owner="greedy")
        manager.start(TrainConfig(**TINY), owner="greedy")  # a stopped job frees its place
    finally:
        manager.shutdown()


def test_ended_jobs_beyond_the_kept_number_are_removed(tmp_path):
    manager = JobManager(tmp_path / "runs", max_running=0, max_per_owner=10, max_kept=2)
    try:
        old = [manager.start(TrainConfig(**TINY), owner="alice") for _ in range(4)]
        for job_id in old:
            manager.stop(job_id, owner="alice")  # queued -> stopped: ended
        newest = manager.start(TrainConfig(**TINY), owner="alice")
        kept = {job["id"] for job in manager.list("alice")}
        assert kept == {newest, *old[-2:]}
        assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(kept)
        with pytest.raises(ValueError, match="unknown job id"):
            manager.status(old[0])
    finally:
        manager.shutdown()
