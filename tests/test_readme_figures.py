"""The figures the README states that the app computes are the ones it computes today: a test
reads them out of README.md and compares them with the shipped training histories (what the
Train tab's degradation view draws)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _final_train_error(name: str) -> float:
    history = json.loads((ROOT / "pretrained" / "histories" / f"{name}.json").read_text())
    return history["epochs"][-1]["train_error"]


def test_the_degradation_figures_in_the_readme_are_the_shipped_histories():
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"plain-56 has higher training error than plain-20 \((\d+\.\d)% against (\d+\.\d)%\)",
                      readme.replace("\n", " "))
    assert found, "the README no longer states the degradation figures this test reads"
    plain56, plain20 = (float(value) for value in found.groups())
    assert plain56 == round(100 * _final_train_error("plain56_v1"), 1)
    assert plain20 == round(100 * _final_train_error("plain20_v1"), 1)
    # and the claim beside them: ResNet-56 ends with lower training error than ResNet-20
    assert _final_train_error("resnet56_v1") < _final_train_error("resnet20_v1")
