"""Expected times said before a long study starts (explorer/studies/estimates.py), the Train tab's
race defaults, and where TensorFlow's oneDNN kernels are turned on."""

import os
import subprocess
import sys

import pytest

from explorer.core.costs import summarize
from explorer.core.specs import make_spec
from explorer.studies import estimates


@pytest.fixture(autouse=True)
def fresh_paces(monkeypatch):
    monkeypatch.setattr(estimates, "_paces", {})


def test_the_work_of_a_study_counts_its_passes():
    spec = make_spec(56, 1)
    flops = summarize(spec)["totals"]["flops"]
    # 27 blocks: the intact pass, then each deletion from its block on (half the net on average)
    assert estimates.lesion_work(spec, 100) == pytest.approx((1 + 27 / 2) * 100 * flops)
    # a 9x9 plane and a 17-point slice
    assert estimates.landscape_work(spec, 9, 128) == pytest.approx(98 * 128 * flops)


def test_before_any_study_the_benchmarks_pace_gives_back_their_seconds():
    spec = make_spec(56, 1)
    assert estimates.seconds("lesion", estimates.lesion_work(spec, 256)) == (pytest.approx(26.6), False)
    assert (estimates.seconds("landscape", estimates.landscape_work(spec, 9, 128))
            == (pytest.approx(48.2), False))
    # twice the images, twice the time
    assert estimates.seconds("lesion", estimates.lesion_work(spec, 512))[0] == pytest.approx(53.2)


def test_a_finished_study_sets_this_hosts_pace():
    estimates.record("landscape", 1e12, 10.0)
    assert estimates.seconds("landscape", 3e12) == (pytest.approx(30.0), True)
    assert estimates.seconds("lesion", 1e12)[1] is False  # each study keeps its own pace
    estimates.record("landscape", 1e12, 0.0)  # a zero time is not a pace
    assert estimates.seconds("landscape", 3e12)[0] == pytest.approx(30.0)


def test_the_line_says_minutes_and_what_is_served_at_once():
    estimates.record("lesion", 1e9, 1.0)
    assert estimates.say("lesion", [None, None]).startswith("Expected: at once")
    line = estimates.say("lesion", [90e9, None])
    assert "about 1 min 30 s (the stored checkpoint at once)" in line and "this host" in line
    assert "about 5 s," in estimates.say("lesion", [5e9])


def test_a_stored_study_is_expected_at_once_and_other_settings_are_priced(shared_archive):
    from explorer.shipped import pretrained

    path = pretrained.resolve("resnet20_v1")
    assert estimates.lesion_line([path], 1000, str(shared_archive)).startswith("Expected: at once")
    assert "about" in estimates.lesion_line([path], 999, str(shared_archive))


def test_ticking_race_sets_the_race_defaults_and_unticking_a_single_jobs():
    from ui.train import (
        JOB_DEPTH,
        JOB_EPOCHS,
        JOB_SUBSET,
        RACE_DEPTH,
        RACE_EPOCHS,
        RACE_SUBSET,
        race_defaults,
    )

    depth, epochs, subset = race_defaults(True)
    assert ((depth["value"], epochs["value"], subset["value"]) == (RACE_DEPTH, RACE_EPOCHS, RACE_SUBSET)
            == (56, 2, 5000))
    depth, epochs, subset = race_defaults(False)
    assert ((depth["value"], epochs["value"], subset["value"]) == (JOB_DEPTH, JOB_EPOCHS, JOB_SUBSET)
            == (20, 2, 4000))


def test_onednn_is_turned_on_for_training_processes_only():
    # the app runs eager probes from several threads: with oneDNN on it crashed (heap corruption)
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = ("import os, explorer, explorer.cli.commands as cli; "
            "before = os.environ.get('TF_ENABLE_ONEDNN_OPTS'); "
            "cli.fast_training(); print(before, os.environ['TF_ENABLE_ONEDNN_OPTS'], cli.TRAINING_COMMANDS)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "None 1 ('train', 'bench')"
