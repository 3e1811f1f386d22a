"""The figures the README states that the app computes are the ones it computes today: a test
reads them out of README.md and compares them with the shipped training histories (what the
Train tab's degradation view draws)."""

import json
import math
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


def test_the_playground_sweep_in_the_readme_says_what_its_numbers_show():
    """The README's sweep table (final training loss by depth on the spiral), read by the
    sweep's own reading: the depth it names is the one the numbers give, and the plain net's
    losses it calls near ln 2 are. (tests/test_playground.py runs the sweep on the spiral on
    a small budget and checks the reading states what it measured.)"""
    from explorer.core.playground_settings import PlaygroundSettings
    from explorer.studies.playground_sweep import falls_behind_from, losses_by_depth, plain_rises_from

    readme = (ROOT / "README.md").read_text()
    table = {name: re.search(rf"^\| {name} \|(.+)\|$", readme, re.MULTILINE)
             for name in ("blocks", "plain", "residual")}
    assert all(table.values()), "the README no longer has the playground sweep's table"
    depths, plain, residual = ([float(cell) for cell in table[name].group(1).split("|")]
                               for name in ("blocks", "plain", "residual"))
    rows = [{"blocks": int(d), "net": net, "train_loss": loss}
            for d, p, r in zip(depths, plain, residual) for net, loss in (("plain", p), ("residual", r))]
    result = {"rows": rows, "depths": [int(d) for d in depths], "steps": 300,
              "settings": PlaygroundSettings(data="spiral", blocks=64).to_dict()}
    said = re.search(r"From (\d+) blocks on the plain net ends above its residual twin, and above its own "
                     r"loss at (\d+) blocks", readme.replace("\n", " "))
    assert said, "the README no longer says where the plain net falls behind"
    assert falls_behind_from(result) == int(said.group(1)) == plain_rises_from(losses_by_depth(result))
    assert min(plain) == plain[depths.index(float(said.group(2)))]  # its best, at the depth named
    assert all(abs(loss - math.log(2)) < 0.05 for d, loss in zip(depths, plain) if d >= 32)  # "near ln 2"
