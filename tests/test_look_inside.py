"""The Look inside tab's engine tasks, figures and readings: the tasks give `inside`'s and the
read-out's numbers for a checkpoint file (the read-out's top 3 checked against the model's own
pooled block outputs), the figures draw exactly those numbers, the readings say what hand-made
numbers show, a link to the tab is read with its own checks, and the tour's read-out step
answers from the read-out."""

import numpy as np
import pytest

from explorer.core.specs import make_spec
from explorer.data.cifar import load_cifar10
from explorer.nets.models import build_model
from explorer.studies import look_inside, readout
from explorer.studies.inside import inside
from explorer.views import inside_charts, links, tour

SHIPPED = ["resnet56_v1", "plain56_v1"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A fresh ResNet-8 v1 and its plain twin, saved (the tasks take files)."""
    folder = tmp_path_factory.mktemp("look-inside")
    paths = {}
    for key, residual in (("residual", True), ("plain", False)):
        paths[key] = folder / f"{key}.keras"
        build_model(make_spec(8, 1, residual=residual)).save(paths[key])
    return paths


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def read(checkpoints, pixels):
    """`readout_of` on the synthetic data, for both nets (fitted once: kept in the worker)."""
    return [look_inside.readout_of(checkpoints[key], pixels, "synthetic") for key in ("residual", "plain")]


def test_inside_of_gives_inside_numbers_and_the_twins_same_block(checkpoints, pixels):
    from explorer.nets.checkpoints import load

    found = look_inside.inside_of(checkpoints["residual"], pixels, "stage2_block1", checkpoints["plain"])
    own = inside(load(checkpoints["residual"]), pixels, "stage2_block1")
    for got, want in zip(found["net"]["blocks"], own["blocks"]):
        for key in ("input_norm", "branch_norm", "output_norm", "branch_ratio", "cosine"):
            assert got[key] == pytest.approx(want[key], rel=1e-5)
    twin = found["twin"]
    assert twin["residual"] is False
    assert [b["block"] for b in twin["blocks"] if "maps" in b] == ["stage2_block1"]
    # no block asked: the first is mapped; no twin: none
    first = look_inside.inside_of(checkpoints["residual"], pixels)
    assert [b["block"] for b in first["net"]["blocks"] if "maps" in b] == ["stage1_block1"]
    assert first["twin"] is None
    with pytest.raises(ValueError, match="block must be one of"):
        look_inside.inside_of(checkpoints["residual"], pixels, "stage9_block1")


def test_warm_traces_the_pass_and_an_answer_says_whether_it_was_traced(checkpoints, pixels):
    """The page sends the warm-up again where an answer says its worker ran the passes eager."""
    from explorer.nets.checkpoints import load

    files = checkpoints["residual"], checkpoints["plain"]
    eager = look_inside.inside_of(files[0], pixels, "stage3_block1", files[1])
    assert eager["traced"] is False
    assert look_inside.warm(*files) == ["ResNet-8 v1", "Plain-8 v1"]
    assert load(files[0])._explorer_inside.traced is not None
    traced = look_inside.inside_of(files[0], pixels, "stage3_block1", files[1])
    assert traced["traced"] is True
    for key in ("net", "twin"):  # the compiled pass gives the eager pass's numbers
        for got, want in zip(traced[key]["blocks"], eager[key]["blocks"]):
            assert got["output_norm"] == pytest.approx(want["output_norm"], rel=1e-4)


def test_the_readout_top_3_is_the_probe_on_the_model_own_pooled_outputs(checkpoints, pixels, read):
    """Independently of `inside`'s sub-model: the model's forward pass, each block's output
    averaged over positions, times the probe's weights."""
    from explorer.nets.checkpoints import load

    result = read[0]
    assert "weights" not in result and len(result["tops"]) == len(result["blocks"]) == 3
    probes = look_inside.probes(checkpoints["residual"], "synthetic")  # kept: the same probes
    model = load(checkpoints["residual"])
    _, outputs = model.forward(pixels[None].astype(np.float32), training=False, collect=True)
    for output, top, weights, bias in zip(outputs, result["tops"], probes["weights"], probes["bias"]):
        scores = np.asarray(output, np.float64)[0].mean((0, 1)) @ np.asarray(weights) + np.asarray(bias)
        assert [t["class"] for t in top] == [result["classes"][i] for i in np.argsort(scores)[::-1][:3]]
        assert top[0]["score"] == pytest.approx(float(scores.max()), abs=1e-3)
    assert result["test_images"] == len(load_cifar10("synthetic").x_test)


def test_a_fitted_readout_is_kept_for_the_next_image(checkpoints, pixels, read, monkeypatch):
    def refit(*args, **kwargs):
        raise AssertionError("fitted again")

    monkeypatch.setattr(look_inside, "readout_study", refit)
    again = look_inside.readout_of(checkpoints["residual"], pixels[::-1], "synthetic")
    assert again["accuracy"] == read[0]["accuracy"]


def test_test_images_are_the_data_sets_own_and_bounded():
    data = load_cifar10("synthetic")
    found = look_inside.test_images("synthetic", [0, 7])
    assert [f["index"] for f in found] == [0, 7]
    np.testing.assert_array_equal(found[1]["pixels"], data.x_test[7])
    assert found[1]["label"] == data.classes[int(data.y_test[7])]
    with pytest.raises(ValueError, match="test image must be a whole number from 0 to 499"):
        look_inside.test_images("synthetic", [500])
    with pytest.raises(ValueError, match="test images asked for"):
        look_inside.test_images("synthetic", list(range(33)))


# ----------------------------------------------------------------------------- figures


def test_the_maps_figure_draws_the_maps_on_one_scale(checkpoints, pixels):
    result = look_inside.inside_of(checkpoints["residual"], pixels, "stage3_block1")["net"]
    maps = inside_charts.chosen_record(result)["maps"]
    fig = inside_charts.maps_figure(result)
    heatmaps = [trace for trace in fig.data if trace.type == "heatmap"]
    rows = ["x", "branch", "sum", "relu"]  # v1: the ReLU after the sum
    assert len(heatmaps) == len(rows) * len(maps["channels"])
    for i, trace in enumerate(heatmaps):
        part, channel = rows[i // len(maps["channels"])], i % len(maps["channels"])
        np.testing.assert_allclose(np.asarray(trace.z, float), maps[part][channel], atol=1e-4)
        assert trace.coloraxis == "coloraxis"
    assert fig.layout.coloraxis.cmax == pytest.approx(maps["scale"]) == -fig.layout.coloraxis.cmin
    plain = look_inside.inside_of(checkpoints["plain"], pixels, "stage1_block1")["net"]
    titles = [fig_axis.title.text for fig_axis in (inside_charts.maps_figure(plain).layout.yaxis,
                                                   inside_charts.maps_figure(plain).layout.yaxis5)]
    assert titles == ["x", "F(x)"]  # a plain block: x, F(x), ReLU(F(x)), no sum
    assert inside_charts.maps_figure({**result, "blocks": []}) is None  # no block mapped


def test_the_depth_figure_draws_the_ratio_and_the_cosine(checkpoints, pixels):
    result = look_inside.inside_of(checkpoints["residual"], pixels, "stage2_block1")["net"]
    fig = inside_charts.depth_figure(result, "stage2_block1")
    ratio, cosine = fig.data
    assert list(ratio.x) == ["1.1", "2.1", "3.1"]
    assert list(ratio.y) == [b["branch_ratio"] for b in result["blocks"]]
    assert list(cosine.y) == [b["cosine"] for b in result["blocks"]]
    plain = look_inside.inside_of(checkpoints["plain"], pixels)["net"]
    assert inside_charts.depth_figure(plain) is None  # no add, no ratio


def test_the_readout_figures_draw_the_accuracies_and_the_top_3(read):
    fig = inside_charts.readout_figure(read, "stage2_block1")
    curves = [trace for trace in fig.data if trace.mode == "lines+markers"]
    own = [trace for trace in fig.data if trace.mode == "lines"]
    assert [list(c.y) for c in curves] == [r["accuracy"] for r in read]
    assert [list(line.y) for line in own] == [[r["model_accuracy"]] * 2 for r in read]
    assert curves[0].line.color != curves[1].line.color  # residual blue, plain red
    tops = inside_charts.tops_figure(read)
    for trace, result in zip(tops.data, read):
        short = [inside_charts.SHORT_CLASSES.get(top[0]["class"], top[0]["class"]) for top in result["tops"]]
        assert [row[0] for row in trace.text] == short
        assert [row[0] for row in trace.hovertext] == [f"{top[0]['class']}, score {top[0]['score']:.2f}"
                                                       for top in result["tops"]]
        assert list(trace.y) == ["1.1", "2.1", "3.1"]


def test_short_names():
    assert inside_charts.short_name("stage3_block12") == "3.12" and inside_charts.short_name("stem") == "stem"


# ----------------------------------------------------------------------------- readings


def _block(name, ratio, cosine, downsamples=False, projection=False):
    return {"block": name, "downsamples": downsamples, "branch_ratio": ratio, "cosine": cosine,
            "input_norm": 10.0, "skip_norm": 7.0 if projection else 10.0, "output_norm": 12.0}


def _net(blocks, version=1):
    return {"model": "ResNet-14 v1", "net": {"version": version}, "residual": True, "blocks": blocks}


def test_the_reading_agrees_with_jastrzebski_where_the_later_blocks_refine():
    refine = _net([_block("stage1_block1", 0.9, 0.7), _block("stage1_block2", 0.2, 0.98),
                   _block("stage2_block1", 1.0, 0.8, downsamples=True), _block("stage2_block2", 0.3, 0.95)])
    text = look_inside.inside_reading(refine)
    assert "**agree**" in text and "stage1 0.20" in text and "stage2_block1 1.00" in text
    late = _net(refine["blocks"] + [_block("stage3_block1", 1.9, 0.6, downsamples=True),
                                    _block("stage3_block2", 1.4, 0.5), _block("stage3_block3", 1.6, 0.4)])
    text = look_inside.inside_reading(late)
    assert "**agree in stage1, stage2, not in stage3**" in text and "median ratio is 1.50" in text
    assert "cosine falls to 0.40" in text and "a v1 net" in text
    none = _net([_block("stage1_block1", 0.9, 0.7), _block("stage1_block2", 0.8, 0.7)], version=2)
    text = look_inside.inside_reading(none)
    assert "**not on this image**" in text and "(v2)" in text


def test_the_reading_of_a_plain_net_reads_its_residual_twin():
    plain = {"model": "Plain-14 v1", "residual": False, "net": {"version": 1},
             "blocks": [dict(_block("stage1_block1", None, None), skip_norm=None)]}
    twin = _net([_block("stage1_block1", 0.3, 0.95)])
    text = look_inside.inside_reading(plain, twin)
    assert "is a plain net" in text and "On this image, ResNet-14 v1" in text


def _read(accuracy, tops, model="ResNet-8 v1"):
    blocks = [f"stage{i // 3 + 1}_block{i % 3 + 1}" for i in range(len(accuracy))]
    return {"model": model, "blocks": blocks, "accuracy": accuracy, "model_accuracy": accuracy[-1],
            "test_images": 5000, "train_images": 5000, "classes": ["cat", "dog"],
            "tops": [[{"class": c, "score": 0.5}] for c in tops],
            "top": [{"class": "cat", "probability": 0.8}]}


def test_the_readout_reading_says_where_the_answer_appears_and_beside_alain_and_bengio():
    rising = _read([0.3, 0.4, 0.5, 0.6], ["dog", "cat", "dog", "cat"])
    falling = _read([0.3, 0.6, 0.5, 0.6], ["cat"] * 4, model="Plain-8 v1")
    text = look_inside.readout_page_reading([rising, falling])
    assert "ResNet-8 v1's rises from 30.0% to 60.0%" in text and "(**agrees**)" in text
    assert "falling 10.0% at stage1_block3 (a standard error is about 0.7%) (**disagrees**)" in text
    assert "within a point of its best from stage1_block2" in text
    flat = look_inside.readout_page_reading([_read([0.6, 0.59, 0.6, 0.6], ["cat"] * 4)])
    assert "stays level, from 60.0% to 60.0%" in flat and "(**disagrees**)" in flat
    assert "first names it at stage1_block2 and keeps it from stage2_block1 on" in text
    assert "Fitted now on 5,000 training images" in text


# ----------------------------------------------------------------------------- links and the tour


def test_a_link_opens_the_look_inside_tab_on_a_block_and_a_test_image():
    asked = {"tab": "inside", "checkpoint": "resnet56_v1", "block": "stage3_block7", "image": "42"}
    view = links.parse(asked, SHIPPED)
    assert (view.tab, view.checkpoint, view.block, view.image, view.ignored) == (
        "inside", "resnet56_v1", "stage3_block7", 42, [])
    assert links.query("inside", {"checkpoint": "resnet56_v1", "block": "stage3_block7", "image": 42}) == (
        "tab=inside&checkpoint=resnet56_v1&block=stage3_block7&image=42")


@pytest.mark.parametrize("params, reason", [
    ({"block": "stage3_block10", "checkpoint": "resnet56_v1"}, "resnet56_v1 has no such block"),
    ({"block": "conv1"}, "block=conv1 (a block's name"),
    ({"image": "-1"}, "image must be a whole number from 0 to 9999"),
    ({"image": "cat"}, "image must be a whole number"),
])
def test_a_bad_look_inside_parameter_is_dropped_with_its_reason(params, reason):
    view = links.parse({"tab": "inside", **params}, SHIPPED)
    assert reason in view.notice() and view.tab == "inside"
    assert view.block is None or view.image is None


def test_the_tour_readout_step_answers_from_the_readout(monkeypatch):
    from explorer.studies import readout as readout_module

    step = next(step for step in tour.STEPS if step.measure is tour.readout)
    assert "5 points" in step.question and step.link.startswith("tab=inside")
    residual = {**_read([0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.82, 0.84, 0.9], ["cat"] * 9), "model_accuracy": 0.9}
    plain = {**residual, "model": "Plain-8 v1"}
    monkeypatch.setattr(tour, "_shipped_pair", lambda: (["resnet56_v1", "plain56_v1"], ["a", "b"]))
    monkeypatch.setattr(tour, "resolve_source", lambda: ("synthetic", ""))
    monkeypatch.setattr(readout_module, "readout_study", lambda *args, **kwargs: [residual, plain])
    answer, text = tour.readout()
    # within 5 points of 90% first at stage3_block3, the last stage's second half
    assert answer == "the second half of the last stage" and answer in step.choices
    assert "first comes within 5 points of the net's own 90.0% at stage3_block3 (90.0%)" in text
    assert "Measured now." in text and readout.first_readable(residual) == "stage3_block3"


def test_a_readout_refuses_a_block_not_of_its_net_before_fitting(checkpoints, pixels, read):
    """The block a page marks on the read-out chart is checked against the net (the fuzzer
    sent a dict, which reached the chart as a traceback); a known block is handed back."""
    for bad in ({"block": 1}, "stage9_block1", 3):
        with pytest.raises(ValueError, match="block must be one of"):
            look_inside.readout_of(checkpoints["residual"], pixels, "synthetic", block=bad)
    assert read[0]["marked"] is None
    marked = look_inside.readout_of(checkpoints["residual"], pixels, "synthetic", block="stage1_block1")
    assert marked["marked"] == "stage1_block1"
