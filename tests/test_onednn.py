"""oneDNN: off in processes that run eager passes from several threads (it corrupted their
heap on an AVX-512 CPU, where TensorFlow turns it on by itself), back on in training processes,
the app's engine workers (its jobs and studies) included, and the user's own setting kept everywhere."""

import os
from pathlib import Path

from explorer.cli import commands
from explorer.compute.local_cluster import worker_environment
from explorer.core import runtime


def test_the_app_turns_onednn_off_for_itself_and_its_workers_get_it_back(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv(runtime.THREADS_MARK, raising=False)
    runtime.thread_safe_tensorflow()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    job = worker_environment()
    monkeypatch.setattr(os, "environ", job)  # the worker's process: its preload turns them on
    runtime.fast_training()
    assert job["TF_ENABLE_ONEDNN_OPTS"] == "1"


def test_a_setting_made_outside_is_kept_in_the_app_and_its_jobs(monkeypatch):
    for value in ("0", "1"):
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", value)
        monkeypatch.delenv(runtime.THREADS_MARK, raising=False)
        runtime.thread_safe_tensorflow()
        job = worker_environment()
        assert job["TF_ENABLE_ONEDNN_OPTS"] == value and runtime.THREADS_MARK not in job


def test_the_app_makes_the_setting_before_anything_imports_tensorflow():
    source = (Path(__file__).resolve().parents[1] / "app.py").read_text()
    assert (source.index("thread_safe_tensorflow()") < source.index("import gradio")
            < source.index("from ui import"))


def test_a_training_command_turns_it_back_on_and_the_others_off(monkeypatch):
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    monkeypatch.setenv(runtime.THREADS_MARK, "1")  # as a test process or the app leaves it
    runtime.fast_training()  # `python -m explorer train`, started from such a process
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1" and runtime.THREADS_MARK not in os.environ
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    assert commands.main(["evaluate", "/nonexistent.keras"]) == 2  # refused before TensorFlow loads
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0" and os.environ[runtime.THREADS_MARK] == "1"
