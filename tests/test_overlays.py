"""Overlays on the architecture graph: their numbers are the app's other measurements (the
gradient probes, the lesion study), on small nets and checkpoints made here."""

import json
import math
import subprocess
import sys
import time

import pytest

from explorer.core.numbers import magnitude
from explorer.core.specs import make_spec, result_net
from explorer.nets.models import build_model, checkpoint_spec
from explorer.studies import deletion, overlays
from explorer.studies.lesion import lesion
from explorer.studies.probes import gradient_flow
from explorer.views import overlay_figures

SOURCE = "synthetic"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """An untrained ResNet-8 and its plain twin, saved as checkpoints."""
    folder = tmp_path_factory.mktemp("overlay-checkpoints")
    paths = {}
    for residual in (True, False):
        paths[residual] = folder / f"{'resnet' if residual else 'plain'}8.keras"
        build_model(make_spec(8, 1, residual=residual)).save(paths[residual])
    return paths


def test_gradient_overlay_is_the_probes_per_block_numbers():
    result = overlays.overlay(8, 1, "gradient", source=SOURCE)
    flow = gradient_flow(8, 1, source=SOURCE)
    assert result["blocks"] == flow.blocks == ["stage1_block1", "stage2_block1", "stage3_block1"]
    assert result["values"] == flow.residual_blocks and result["twin_values"] == flow.plain_blocks
    assert result["model"] == "ResNet-8 v1" and result["twin_model"] == "Plain-8 v1"
    ratio = overlays.overlay(8, 1, "ratio", source=SOURCE)
    assert ratio["values"] == pytest.approx([r / p for r, p in zip(flow.residual_blocks, flow.plain_blocks)])
    assert "twin_values" not in ratio


@pytest.mark.slow
def test_overlay_command_prints_the_gradients_command_numbers_per_block():
    def run(*args):
        # not check=True: `gradients` may abort at exit while its probe traces in the background,
        # after printing its line
        out = subprocess.run([sys.executable, "-m", "explorer", *args, "--data", SOURCE, "--json"],
                             check=False, capture_output=True, text=True, timeout=600).stdout
        return json.loads(out.strip().splitlines()[-1])

    shown, flow = run("overlay", "--depth", "8", "--kind", "gradient"), run("gradients", "--depth", "8")
    assert shown["values"] == flow["residual_blocks"] and shown["twin_values"] == flow["plain_blocks"]


def test_lesion_overlay_agrees_with_the_lesion_study(checkpoints):
    for residual, path in checkpoints.items():
        result = overlays.overlay(0, 0, "lesion", path, source=SOURCE, samples=40)
        study = lesion(path, SOURCE, samples=40)
        assert result["blocks"] == study["blocks"] and result["n"] == study["n"] == 40
        for cost, accuracy in zip(result["values"], study["accuracy"]):
            if accuracy is None:  # a plain block that changes shape
                assert cost is None and not residual
            else:
                assert cost == pytest.approx(study["baseline"] - accuracy, abs=0.005)


def test_deleting_a_block_gives_the_lesion_numbers_and_its_median(checkpoints, tmp_path):
    fresh = tmp_path / "again.keras"  # a file the lesion overlay never measured
    fresh.write_bytes(checkpoints[True].read_bytes())
    alone = deletion.delete_block(fresh, "stage2_block1", 40, SOURCE)
    study = lesion(fresh, SOURCE, samples=40)
    assert (alone["accuracy_with"], alone["accuracy_without"]) == (study["baseline"], study["accuracy"][1])
    assert "lesion_median_cost" not in alone
    assert result_net(alone) == checkpoint_spec(fresh)  # the net it carries, not a name to parse
    overlays.overlay(0, 0, "lesion", fresh, source=SOURCE, samples=40)
    beside = deletion.delete_block(fresh, "stage2_block1", 40, SOURCE)
    assert {"block", "accuracy_with", "accuracy_without", "lesion_median_cost"} <= set(beside)
    assert beside["accuracy_without"] == alone["accuracy_without"]


def test_a_plain_block_that_changes_shape_cannot_be_deleted_and_says_why(checkpoints):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"stage2_block1 cannot be deleted: in a plain net it changes the "
                                         r"shape \(32x32x16 to 16x16x32\)"):
        deletion.delete_block(checkpoints[False], "stage2_block1", 40, SOURCE)
    assert time.perf_counter() - start < 0.5  # before any work
    with pytest.raises(ValueError, match="block must be one of Plain-8 v1's blocks"):
        deletion.delete_block(checkpoints[False], "stage9_block1", 40, SOURCE)


def test_gradient_training_gathers_a_jobs_logged_norms_per_block(checkpoints):
    layers = ["stem_conv", "stage1_block1_conv1", "stage1_block1_conv2", "stage2_block1_conv1",
              "stage2_block1_conv2", "stage2_block1_shortcut", "stage3_block1_conv1", "stage3_block1_conv2",
              "stage3_block1_shortcut", "head_dense"]
    rows = [[float(step + i) for i in range(len(layers))] for step in (1, 2, 3)]
    history = {"epochs": [{"epoch": 1}, {"epoch": 2}], "steps_per_epoch": 10,
               "grad_norms": {"layers": layers, "steps": [1, 10, 20], "norms": rows}}
    result = overlays.overlay(0, 0, "gradient_training", checkpoints[True], history, epoch=1)
    assert result["epoch"] == 1 and result["epochs"] == 2
    assert result["values"][0] == pytest.approx(math.hypot(rows[1][1], rows[1][2]))
    assert result["values"][1] == pytest.approx(math.sqrt(sum(v * v for v in rows[1][3:6])))
    assert result["twin_values"][0] == pytest.approx(math.hypot(rows[0][1], rows[0][2]))
    assert overlays.overlay(0, 0, "gradient_training", checkpoints[True], history)["epoch"] == 2  # last
    with pytest.raises(ValueError, match="epoch must be a whole number from 0 to 2"):
        overlays.overlay(0, 0, "gradient_training", checkpoints[True], history, epoch=3)
    with pytest.raises(ValueError, match="logged no gradient norms"):
        overlays.overlay(0, 0, "gradient_training", checkpoints[True], {"epochs": [], "grad_norms": {}})


def test_branch_share_at_initialization_and_trained(checkpoints):
    fresh = overlays.overlay(8, 1, "branch_share", source=SOURCE)
    assert len(fresh["values"]) == 3 and all(v > 0 for v in fresh["values"]) and "twin_values" not in fresh
    trained = overlays.overlay(0, 0, "branch_share", checkpoints[True], source=SOURCE)
    assert trained["twin_values"] == fresh["values"]  # the net at initialization, the same weights
    with pytest.raises(ValueError, match="plain net: it has no add"):
        overlays.overlay(0, 0, "branch_share", checkpoints[False], source=SOURCE)


def test_gradient_trained_compares_the_checkpoint_with_its_net_at_initialization(checkpoints):
    result = overlays.overlay(0, 0, "gradient_trained", checkpoints[True], source=SOURCE)
    assert result["twin_values"] == pytest.approx(overlays.overlay(8, 1, "gradient", source=SOURCE)["values"],
                                                  rel=1e-4)
    assert len(result["values"]) == 3 and all(v > 0 for v in result["values"])


def test_the_figure_colours_blocks_with_a_colour_bar_and_the_twin_below(checkpoints):
    fig = overlay_figures.overlay_figure(overlays.overlay(8, 1, "gradient", source=SOURCE))
    assert fig.layout.coloraxis.colorbar.title.text == "‖∂L/∂(block output)‖"
    painted = [t for t in fig.data if getattr(t.marker, "coloraxis", None) == "coloraxis"]
    assert len(painted) == 2  # the net and its twin, on one scale
    assert all("‖∂L/∂(block output)‖: " in h for t in painted for h in t.hovertext)
    assert {a.text for a in fig.layout.annotations} >= {"<b>Plain-8 v1 (plain twin), at initialization</b>"}
    plain = overlay_figures.overlay_figure(overlays.overlay(0, 0, "lesion", checkpoints[False],
                                                            source=SOURCE, samples=40))
    assert any("cannot be deleted" in h for t in plain.data if t.hovertext for h in t.hovertext)


@pytest.mark.parametrize("expand", ["stage2_block1", "stage2", "all"])
def test_overlays_draw_on_expanded_views_too(expand):
    result = overlays.overlay(8, 1, "gradient", source=SOURCE)
    fig = overlay_figures.overlay_figure(result, expand)
    value = dict(zip(result["blocks"], result["values"]))["stage2_block1"]
    painted = [t for t in fig.data if getattr(t.marker, "coloraxis", None) == "coloraxis"]
    layers = {t.name for t in painted} - {"block"}
    assert {"conv", "bn", "add"} <= layers  # the expanded block's layers take its colour
    hovers = [h for t in painted for h, name in zip(t.hovertext, t.customdata) if name == "stage2_block1"]
    # its layers in the net and in the twin below, each with its own block's value
    assert sum(h.endswith(f"{overlays.GRADIENT}: {magnitude(value)}</b>") for h in hovers) >= 6
    names = [name for t in painted for name in t.customdata]
    assert set(names) == set(result["blocks"])  # the net and its twin, every block
    with pytest.raises(ValueError, match="expand must be one of"):
        overlay_figures.overlay_figure(result, "stage3_block7")


def test_switching_back_to_a_computed_overlay_is_immediate():
    overlays.overlay(20, 1, "gradient", source=SOURCE)
    overlays.overlay(20, 1, "ratio", source=SOURCE)
    start = time.perf_counter()
    for kind in ("gradient", "ratio", "gradient"):
        overlay_figures.overlay_figure(overlays.overlay(20, 1, kind, source=SOURCE)).to_json()
    assert (time.perf_counter() - start) / 3 < 0.3


def test_requests_are_checked_before_any_work(checkpoints):
    with pytest.raises(ValueError, match="overlay must be one of gradient, gradient_trained"):
        overlays.overlay(56, 1, "bogus")
    with pytest.raises(ValueError, match="the lesion overlay needs a checkpoint"):
        overlays.overlay(56, 1, "lesion")
    with pytest.raises(ValueError, match="nearest valid depths are 20 and 26"):
        overlays.overlay(21, 1, "gradient")
    with pytest.raises(ValueError, match="samples must be between 1 and 100000"):
        overlays.overlay(0, 0, "lesion", checkpoints[True], samples=0)


def test_the_tab_names_its_overlay_and_deletion_endpoints():
    from app import demo

    named = demo.get_api_info()["named_endpoints"]
    assert [p["parameter_name"] for p in named["/graph_overlay"]["parameters"]] == [
        "depth", "version", "overlay", "checkpoint", "epoch", "expand"]
    assert [p["parameter_name"] for p in named["/delete_block"]["parameters"]] == [
        "checkpoint", "block", "samples"]
    assert [p["parameter_name"] for p in named["/build_architecture"]["parameters"]] == [
        "depth", "version", "family", "residual", "shortcut", "expand", "show_twin"]


@pytest.mark.parametrize("expand", ["none", "all"])
def test_gradient_paths_draws_each_line_as_wide_as_its_share(checkpoints, expand):
    from explorer.views.graph_figure import MAX_EDGE_WIDTH

    fresh = overlays.overlay(8, 1, "gradient_paths", source=SOURCE)
    assert len(fresh["values"]) == 3 and all(0 < v < 1 for v in fresh["values"])
    trained = overlays.overlay(0, 0, "gradient_paths", checkpoints[True], source=SOURCE)
    assert trained["twin_values"] == fresh["values"]  # the net at initialization, the same weights
    with pytest.raises(ValueError, match="plain net: it has no add"):
        overlays.overlay(0, 0, "gradient_paths", checkpoints[False], source=SOURCE)
    fig = overlay_figures.overlay_figure(fresh, expand)
    widths = {trace.name: set() for trace in fig.data if trace.mode == "lines"}
    for trace in fig.data:
        if trace.mode == "lines":
            widths[trace.name].add(trace.line.width)

    def drawn(share):
        return max(0.5, round(2 * MAX_EDGE_WIDTH * share) / 2)

    shares = dict(zip(fresh["blocks"], fresh["values"]))
    skips = {drawn(shares[b]) for b in ("stage1_block1", "stage2_block1", "stage3_block1")}
    # stage 1's shortcut is an identity, the others project: each drawn as wide as its share
    assert widths["identity shortcut"] | widths["projection shortcut (1x1 conv)"] == skips
    assert {drawn(1 - share) for share in shares.values()} <= widths["main path"]
