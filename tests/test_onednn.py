"""oneDNN: off in the app's process (it corrupted the app's heap on an AVX-512 CPU, where
TensorFlow turns it on by itself), back on in the jobs it starts, and the user's own setting
kept everywhere."""

import os
from pathlib import Path

from explorer import cli
from explorer.spare import child_environment


def test_the_app_turns_onednn_off_for_itself_and_its_jobs_get_it_back(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.delenv(cli.SERVING_MARK, raising=False)
    cli.safe_serving()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"
    job = child_environment()
    assert "TF_ENABLE_ONEDNN_OPTS" not in job and cli.SERVING_MARK not in job
    monkeypatch.setattr(os, "environ", job)  # the job's process: `train` turns them on
    cli.fast_training()
    assert job["TF_ENABLE_ONEDNN_OPTS"] == "1"


def test_a_setting_made_outside_is_kept_in_the_app_and_its_jobs(monkeypatch):
    for value in ("0", "1"):
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", value)
        monkeypatch.delenv(cli.SERVING_MARK, raising=False)
        cli.safe_serving()
        job = child_environment()
        assert job["TF_ENABLE_ONEDNN_OPTS"] == value and cli.SERVING_MARK not in job


def test_the_app_makes_the_setting_before_anything_imports_tensorflow():
    source = (Path(__file__).resolve().parents[1] / "app.py").read_text()
    assert source.index("safe_serving()") < source.index("import gradio") < source.index("from ui import")
