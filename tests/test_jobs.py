"""The background job manager: lifecycle, queue, ownership, failures, restarts."""

import time

import pytest

from explorer.jobs import JobManager
from explorer.training import TrainConfig

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
    assert len(status["history"]["epochs"]) == 1 and status["checkpoint"]
    assert status["device"].startswith(("CPU", "GPU"))
    assert manager.checkpoint(job_id).name == "model.keras"
    again = JobManager(tmp_path / "runs")
    assert [j["id"] for j in again.list("alice")] == [job_id]
    assert again.status(job_id)["state"] == "done"
    assert again.list("bob") == []


def test_queue_position_and_ownership(manager):
    first = manager.start(TrainConfig(**{**TINY, "epochs": 5}), owner="alice")
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
