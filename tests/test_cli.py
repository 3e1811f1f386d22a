"""`python -m explorer ...` as a user runs it: a subprocess in the repository root; commands
that only read a checkpoint run `commands.main` in this process too (`run_main`), which spares
CI a TensorFlow start per call."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=120, **extra_env) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra_env}
    return subprocess.run([sys.executable, "-m", "explorer", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def run_main(*args) -> subprocess.CompletedProcess:
    """`python -m explorer *args` through `commands.main` in this process: the same parser, exit
    statuses and printing as `run_cli`, without starting Python and TensorFlow again."""
    from explorer.cli import commands

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = commands.main(list(map(str, args)))
        except SystemExit as exit_:  # argparse refusing its arguments
            code = exit_.code
    return subprocess.CompletedProcess(["explorer", *map(str, args)], code, out.getvalue(), err.getvalue())


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def assert_clean_failure(result, needle: str):
    assert result.returncode != 0
    assert needle in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_build_json():
    result = run_cli("build", "--depth", 56, "--version", 1, "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    totals = json.loads(lines[0])
    assert totals["params"] == 861_770
    assert totals["trainable_params"] == 857_706
    assert totals["depth"] == 56 and totals["version"] == 1 and totals["residual"] is True
    assert totals["layers"] == 196 and totals["flops"] > 0


def test_build_plain_json():
    totals = json.loads(run_cli("build", "--depth", 56, "--plain", "--json").stdout)
    assert totals["params"] == 859_114 and totals["residual"] is False


@pytest.mark.parametrize("args, params", [
    (["--depth", 20, "--shortcut", "zeropad"], 271_786),
    (["--depth", 164, "--version", 2], 4_972_682),
    (["--depth", 50, "--family", "imagenet"], 25_636_712),
])
def test_build_variants(args, params):
    result = run_cli("build", *args, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"] == params


def test_build_text_table():
    result = run_cli("build", "--depth", 20)
    assert result.returncode == 0
    assert result.stdout.startswith("ResNet-20 v1: 274,442 parameters")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [
        "stem", "stage1", "stage2", "stage3", "head"]


@pytest.mark.parametrize("args, needle", [
    (["--depth", 21], "nearest valid depths are 20 and 26"),
    (["--depth", 30, "--version", 2], "nearest valid depths are 29 and 38"),
    (["--depth", 3000], "too large"),
    (["--depth", 20, "--version", 3], "version must be 1 or 2"),
    (["--depth", 20, "--family", "imagenet"], "not an ImageNet ResNet"),
    (["--depth", 20, "--shortcut", "bogus"], "shortcut must be one of"),
])
def test_build_refuses_bad_arguments(args, needle):
    result = run_cli("build", *args)
    assert_clean_failure(result, needle)
    assert result.returncode == 2
    assert result.stdout == ""


@pytest.mark.parametrize("args, needle", [
    (["--epochs", 0], "epochs must be between 1 and"),
    (["--depth", 21], "nearest valid depths are 20 and 26"),
    (["--batch-size", 0], "batch size must be between"),
    (["--optimizer", "rmsprop"], "optimizer must be sgd or adam"),
])
def test_train_refuses_bad_arguments_before_any_work(args, needle, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--data", "synthetic", *args, "--out", out)
    assert_clean_failure(result, needle)
    assert not out.exists()


def test_evaluate_missing_checkpoint(tmp_path):
    assert_clean_failure(run_cli("evaluate", tmp_path / "none.keras", "--data", "synthetic"),
                         "no checkpoint at")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = run_cli("train", "--depth", 20, "--data", "synthetic", "--epochs", 1, "--subset", 256,
                     "--test-subset", 128, "--out", out, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_train_writes_a_complete_run(trained_run):
    out, result = trained_run
    final = json_lines(result.stdout)[-1]
    assert result.stdout.strip().splitlines()[-1].startswith("{")
    assert 0 <= final["test_accuracy"] <= 1 and final["epochs_finished"] == 1
    for name in ("model.keras", "history.json", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "tb").is_dir() and any((out / "tb").rglob("events.out.tfevents.*"))
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 1
    assert {"loss", "accuracy", "val_accuracy", "learning_rate", "seconds"} <= set(history["epochs"][0])
    grads = history["grad_norms"]
    assert {"layers", "steps", "norms"} <= set(grads)
    assert grads["layers"] and grads["steps"]
    assert all(len(row) == len(grads["layers"]) for row in grads["norms"])
    config = json.loads((out / "config.json").read_text())
    assert (config["depth"], config["epochs"], config["subset"], config["data"]) == (20, 1, 256, "synthetic")


@pytest.mark.slow
def test_evaluate_a_trained_checkpoint(trained_run):
    out, _ = trained_run
    result = run_main("evaluate", out / "model.keras", "--data", "synthetic", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    scores = json.loads(lines[0])
    assert set(scores) == {"test_accuracy", "n"}
    assert scores["n"] == 500 and 0 <= scores["test_accuracy"] <= 1


@pytest.mark.slow
def test_ship_records_what_evaluate_prints(trained_run, tmp_path):
    out, _ = trained_run
    pretrained = tmp_path / "pretrained"
    for _ in range(2):  # shipping again replaces the entry
        result = run_cli("ship", out, "--name", "tiny", "--data", "synthetic",
                         EXPLORER_PRETRAINED=str(pretrained))
        assert result.returncode == 0, result.stderr[-3000:]
    (entry,) = json.loads((pretrained / "manifest.json").read_text())["checkpoints"]
    scores = json_lines(run_cli("evaluate", pretrained / "tiny.keras", "--data", "synthetic", "--json",
                                "--tta", "flip").stdout)[0]
    assert entry["test_accuracy"] == scores["test_accuracy"] and entry["n"] == scores["n"]
    assert entry["test_accuracy_tta"] == scores["test_accuracy_tta"]
    assert entry["epochs"] == 1 and entry["depth"] == 20 and entry["residual"] is True
    from explorer.shipped.pretrained import sha256

    assert entry["sha256"] == sha256(pretrained / "tiny.keras")
    history = json.loads((pretrained / "histories" / "tiny.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1]
    assert not list(pretrained.glob(".*")) and not (pretrained / "manifest.json.tmp").exists()
    assert_clean_failure(run_cli("ship", tmp_path, "--name", "x", "--data", "synthetic",
                                 EXPLORER_PRETRAINED=str(pretrained)), "holds no finished epoch")
    # an evaluation that fails leaves the shipped file, its history and the manifest as they were
    before = {path.name: path.read_bytes() for path in pretrained.rglob("*") if path.is_file()}
    assert_clean_failure(run_cli("ship", out, "--name", "tiny", "--data", tmp_path / "missing.tar.gz",
                                 EXPLORER_PRETRAINED=str(pretrained)), "missing.tar.gz")
    assert {path.name: path.read_bytes() for path in pretrained.rglob("*") if path.is_file()} == before


@pytest.mark.slow
def test_lesion_json_has_the_issue_keys(trained_run):
    out, _ = trained_run
    result = run_main("lesion", out / "model.keras", "--data", "synthetic", "--samples", 50, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = json_lines(result.stdout)
    assert {"baseline", "blocks", "accuracy", "downsampling"} <= set(report)
    assert len(report["blocks"]) == len(report["accuracy"]) == len(report["downsampling"]) == 9


@pytest.mark.slow
def test_landscape_json_and_reading(trained_run):
    out, _ = trained_run
    result = run_main("landscape", out / "model.keras", "--data", "synthetic", "--samples", 16,
                      "--steps", 3, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = json_lines(result.stdout)
    assert len(report["loss_2d"]) == 3 and len(report["loss_1d"]) == 5
    assert report["summary"]["center_loss"] == pytest.approx(report["loss_1d"][2], abs=1e-4)
    text = run_main("landscape", out / "model.keras", "--data", "synthetic", "--samples", 16, "--steps", 3)
    assert "at the checkpoint" in text.stdout and "Traceback" not in text.stderr
    assert_clean_failure(run_main("landscape", out / "model.keras", "--data", "synthetic", "--steps", 1),
                         "steps must be between 3 and 51")


@pytest.mark.slow
def test_lesion_and_landscape_compare_a_checkpoint_with_its_plain_twin(trained_run, tmp_path):
    from explorer.core.specs import make_spec
    from explorer.nets.models import build_model

    out, _ = trained_run
    plain = tmp_path / "plain20.keras"
    build_model(make_spec(20, 1, residual=False)).save(plain)
    common = ("--compare", plain, "--data", "synthetic", "--samples", 16)
    lesions = json_lines(run_main("lesion", out / "model.keras", *common, "--json").stdout)
    assert [r["model"] for r in lesions] == ["ResNet-20 v1", "Plain-20 v1"]
    assert lesions[1]["accuracy"][3] is None  # a plain downsampling block cannot be deleted
    text = run_main("lesion", out / "model.keras", *common).stdout
    assert "ResNet-20 v1: baseline" in text and "Plain-20 v1: baseline" in text
    landscapes = json_lines(run_main("landscape", out / "model.keras", *common, "--steps", 3,
                                     "--json").stdout)
    assert [r["model"] for r in landscapes] == ["ResNet-20 v1", "Plain-20 v1"]
    assert all(r["seconds"] > 0 for r in landscapes)
    text = run_main("landscape", out / "model.keras", *common, "--steps", 3).stdout
    assert ("basin is wider" in text or "Both basins are as wide" in text) and "Plain-20 v1:" in text


@pytest.mark.slow
def test_same_out_with_other_options_is_refused(trained_run):
    out, _ = trained_run
    result = run_cli("train", "--depth", 32, "--data", "synthetic", "--epochs", 1, "--out", out)
    assert_clean_failure(result, "holds a different run")
    assert "depth: 20 there, 32 here" in result.stderr  # names what differs


@pytest.mark.slow
def test_gradient_log_steps_stay_within_the_run(trained_run):
    out, _ = trained_run
    history = json.loads((out / "history.json").read_text())
    steps_per_epoch = 256 // 128
    assert max(history["grad_norms"]["steps"]) <= steps_per_epoch


@pytest.mark.slow
def test_evaluate_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    fake = tmp_path / "m.keras"
    fake.write_text("not a zip")
    assert_clean_failure(run_cli("evaluate", fake, "--data", "synthetic"),
                         "not a loadable ResNet checkpoint")


@pytest.mark.slow
def test_kill_9_then_the_same_command_resumes(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "explorer", "train", "--depth", "8", "--data", "synthetic",
            "--epochs", "4", "--subset", "256", "--test-subset", "64", "--batch-size", "32",
            "--out", str(out)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "history.json"
    deadline = time.time() + 180
    while time.time() < deadline:
        if history.exists() and len(json.loads(history.read_text())["epochs"]) >= 2:
            break
        time.sleep(0.2)
    proc.kill()  # kill -9, wherever it is
    proc.wait()
    done = len(json.loads(history.read_text())["epochs"])
    assert 2 <= done < 4
    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr[-2000:]
    # the history is written just before the backup, so a kill between the two resumes one
    # epoch earlier than the history showed; that epoch is redone and the history cut back
    resumed = re.search(r"resumed from epoch (\d+)\b", second.stdout)
    assert resumed and done - 1 <= int(resumed.group(1)) <= done, second.stdout[-1000:]
    epochs = [e["epoch"] for e in json.loads(history.read_text())["epochs"]]
    assert epochs == [1, 2, 3, 4]
    assert "test_accuracy" in json.loads(second.stdout.strip().splitlines()[-1])


def test_bench_measures_the_network_asked_for():
    result = run_cli("bench", "train", "--depth", 8, "--shortcut", "zeropad", "--steps", 2,
                     "--batch-size", 8, "--data", "synthetic", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = json_lines(result.stdout)
    assert report["spec"] == "resnet8_v1_zeropad" and report["img_per_s"] > 0


def test_classify_prints_each_image_and_names_the_bad_one(tmp_path):
    import numpy as np
    from PIL import Image

    from explorer.core.specs import make_spec
    from explorer.nets.models import build_model

    checkpoint = tmp_path / "r8.keras"
    build_model(make_spec(8, 1)).save(checkpoint)
    Image.fromarray(np.full((40, 60, 3), 120, np.uint8)).save(tmp_path / "grey.png")
    (tmp_path / "notes.txt").write_text("not an image")
    result = run_main("classify", checkpoint, tmp_path / "grey.png", tmp_path / "notes.txt",
                     tmp_path / "grey.png", "--top", 3, "--json")
    assert_clean_failure(result, "notes.txt")
    lines = json_lines(result.stdout)
    assert [Path(line["image"]).name for line in lines] == ["grey.png", "grey.png"]
    from explorer.nets.models import load_model
    from explorer.studies.classify import classify

    top, _ = classify(load_model(checkpoint), tmp_path / "grey.png", top=3)  # the Classify tab's path
    assert lines[0]["top"] == {name: round(p, 4) for name, p in top.items()}
    assert_clean_failure(run_main("classify", tmp_path / "missing.keras", tmp_path / "grey.png"),
                         "no checkpoint at")


def test_evaluate_refuses_a_negative_limit(tmp_path):
    # -5 once evaluated all but the last five images
    assert_clean_failure(run_cli("evaluate", tmp_path / "x.keras", "--limit", -5),
                         "limit must be a positive number")


@pytest.mark.parametrize("name", ["a/b", "../x", "ResNet", ""])
def test_ship_refuses_a_name_that_is_not_a_plain_file_name(tmp_path, name):
    assert_clean_failure(run_cli("ship", tmp_path, "--name", name, "--data", "synthetic",
                                 EXPLORER_PRETRAINED=str(tmp_path / "pretrained")),
                         "a checkpoint name is lower-case letters")
    assert not (tmp_path / "pretrained").exists() and not (tmp_path / "x.keras").exists()


def test_build_save_to_a_missing_folder_is_a_clear_error(tmp_path):
    assert_clean_failure(run_cli("build", "--depth", 20, "--save", tmp_path / "no" / "such" / "r20.keras"),
                         "cannot write")


@pytest.mark.parametrize("text", ["[]", "5", "null", '"abc"'])
def test_train_config_that_is_not_an_object_is_a_clear_error(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    assert_clean_failure(run_cli("train", "--config", tmp_path / "config.json", "--out", tmp_path / "run"),
                         "must be a JSON object")


@pytest.mark.slow
def test_train_with_a_config_file_runs_as_long_as_the_command_line_says(tmp_path):
    """A run capped on one machine (max_seconds in its config.json) resumes uncapped on the
    next with --config: the cap is the command line's, the rest is the file's."""
    config = {"depth": 8, "epochs": 1, "data": "synthetic", "subset": 64, "batch_size": 32,
              "precision": "float32", "max_seconds": 245.0}
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = run_cli("train", "--config", tmp_path / "config.json", "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["max_seconds"] == 0.0 and saved["depth"] == 8 and saved["subset"] == 64
