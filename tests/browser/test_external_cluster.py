"""The app as a client of a cluster started elsewhere (issue #32): `dask scheduler` and two
workers started with the engine's own commands in another folder (one trains, one answers
studies), the app pointed at it by `EXPLORER_SCHEDULER`. In a browser: a job trains there to
the end (curves on the page, the machine named, the model downloadable), the model classifies
on the Classify tab and a study of it runs on the cluster's worker (its file carried there by
the engine); the training worker killed during a second job gives a clear message, and the
app still answers."""

import os
import re
import signal
import socket
import urllib.request

import pytest
from conftest import ARTIFACTS, architecture_on_resnet20, classify_example
from playwright.sync_api import Error as PlaywrightError

from bench.common import cluster_logs, external_cluster

pytestmark = [pytest.mark.browser, pytest.mark.slow]



def _kill_the_training_worker(address: str) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        trainers = [worker for worker, info in client.scheduler_info(n_workers=-1)["workers"].items()
                    if (info.get("resources") or {}).get("JOB")]
        pids = client.run(os.getpid, workers=trainers)
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _train(page, epochs: str, subset: str) -> None:
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-depth input").fill("8")
    page.locator("#train-epochs input").fill(epochs)
    page.locator("#train-subset input").fill(subset)
    page.locator("#train-subset input").blur()
    page.wait_for_timeout(500)
    page.locator("#train-start").click()


def test_a_job_and_a_study_on_a_cluster_started_elsewhere(browser, start_app, tmp_path):
    with external_cluster(tmp_path, trains=(True, False)) as address, \
            start_app(EXPLORER_SCHEDULER=address) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.locator("#arch-plot .js-plotly-plot").wait_for(timeout=120_000)
        _train(page, "2", "256")
        page.locator("#train-progress").get_by_text("done").first.wait_for(timeout=300_000)
        progress = page.locator("#train-progress").inner_text()
        assert f"on {socket.gethostname()}" in progress, progress  # the machine it trained on, named
        page.wait_for_function(
            "() => document.querySelectorAll('#train-curves .scatterlayer .point').length >= 2")
        page.locator("#train-download").click()
        page.locator("#train-model-file").get_by_text(".keras").first.wait_for(timeout=60_000)
        _shot(page, "cluster_job_done")

        # the job's model on Classify (the web process reads the file the engine brought back)
        page.get_by_role("tab", name="Classify").click()
        page.get_by_role("button", name="Refresh list").click()
        page.locator("#cls-checkpoint input").click()
        page.get_by_role("option", name=re.compile(r"job")).first.click()
        classify_example(page)

        # a study on the cluster's worker: deleting a block of the app's ResNet-20 checkpoint, whose
        # file travels with the task (the worker's copy: `compute.shipping`)
        architecture_on_resnet20(page)
        page.locator("#arch-delete").click()
        page.locator("#arch-deleted").get_by_text("without stage1_block1's residual branch").wait_for(
            timeout=180_000)
        _shot(page, "cluster_study_on_its_worker")

        # the training worker killed during a second job: a clear message, the app still up
        _train(page, "30", "4096")
        # this job's epoch (of 30): the first job's line, "epoch 2/2", may still be on the page
        this_job = page.locator("#train-progress").get_by_text(re.compile(r"epoch \d+/30"))
        this_job.first.wait_for(timeout=300_000)
        _kill_the_training_worker(address)
        # the engine reruns the task once on the worker its nanny starts again (TensorFlow loaded
        # anew: a minute under CI's load, over four when other work shares its two cores), and the
        # rerun reports the death; the seconds to a message are `tests/test_engine.py`'s
        try:
            page.locator("#train-progress").get_by_text("died").first.wait_for(timeout=360_000)
        except PlaywrightError:
            _shot(page, "failed_cluster_worker_killed")
            progress = page.locator("#train-progress").inner_text()
            raise AssertionError(f"no \"died\" on the page; its progress: {progress}\n"
                                 f"{cluster_logs(tmp_path)}") from None
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert answer.status == 200
        _shot(page, "cluster_worker_killed")
        page.close()
