"""Lesion study mechanics on small untrained nets (the real study needs trained checkpoints)."""


import numpy as np
import pytest

from explorer.core.specs import make_spec
from explorer.nets.models import build_model
from explorer.studies.lesion import lesion


def _net(depth, residual):
    """A study result's "net": what its net's kind and depth are read from."""
    return make_spec(depth, 1, residual=residual).to_config()


@pytest.mark.parametrize("residual", [True, False])
def test_lesion_deletes_each_block_once(tmp_path, residual):
    path = tmp_path / "m.keras"
    build_model(make_spec(20, 1, residual=residual)).save(path)
    result = lesion(path, "synthetic", samples=40)
    assert result["blocks"][0] == "stage1_block1" and len(result["blocks"]) == 9
    assert result["downsampling"] == [False] * 3 + [True, False, False] * 2
    assert result["n"] == 40 and 0 <= result["baseline"] <= 1
    assert result["net"] == make_spec(20, 1, residual=residual).to_config()  # what readers take the kind from
    for acc, down in zip(result["accuracy"], result["downsampling"]):
        if down and not residual:
            assert acc is None  # a plain block that changes shape cannot be bypassed
        else:
            assert 0 <= acc <= 1


@pytest.mark.parametrize("residual", [True, False])
def test_the_shared_prefix_pass_gives_what_deleting_each_block_alone_gives(residual):
    """lesion_pass against the plain way: the whole net run again for every deletion."""
    import keras

    from explorer.studies.lesion import lesioned_accuracy
    from explorer.studies.lesion_pass import accuracies_with_each_block_deleted

    keras.utils.set_random_seed(1)
    model = build_model(make_spec(20, 1, residual=residual))
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (60, 32, 32, 3)).astype("uint8"), rng.integers(0, 10, 60)
    seen = []
    baseline, without = accuracies_with_each_block_deleted(model, x, y, seen.append)
    assert baseline == lesioned_accuracy(model, x, y, ())
    assert seen == list(range(9))
    for i, block in enumerate(model.blocks):
        expected = lesioned_accuracy(model, x, y, (i,)) if block.droppable else None
        assert without[i] == expected, (i, without[i], expected)


def test_deleting_a_residual_branch_keeps_the_shortcut():
    model = build_model(make_spec(20, 1))
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    _, outputs = model.forward(x, collect=True)
    _, lesioned = model.forward(x, collect=True, drop_blocks=(1,))
    # without its branch, block 2 returns relu(shortcut(x)) = its input (already post-ReLU)
    np.testing.assert_allclose(lesioned[1], outputs[0], atol=1e-6)


def test_loss_landscape_restores_weights_and_has_its_minimum_grid(tmp_path):
    from explorer.nets.models import load_model
    from explorer.studies.landscape import loss_landscape

    path = tmp_path / "m.keras"
    build_model(make_spec(8, 1)).save(path)
    result = loss_landscape(path, "synthetic", samples=16, steps=3, span=0.5)
    assert len(result["alphas"]) == 5 and len(result["loss_1d"]) == 5
    assert np.asarray(result["loss_2d"]).shape == (3, 3)
    assert result["loss_1d"][2] == pytest.approx(result["loss_2d"][1][1], rel=1e-5)  # both at the origin
    with pytest.raises(ValueError, match="steps"):
        loss_landscape(path, "synthetic", steps=1)
    assert load_model(path).count_params() > 0


def test_filter_normalized_direction_matches_filter_norms():
    from explorer.studies.landscape import _filter_normalized_direction

    kernel = np.random.default_rng(0).standard_normal((3, 3, 4, 5)).astype(np.float32)
    bias = np.ones(5, np.float32)
    d_kernel, d_bias = _filter_normalized_direction([kernel, bias], np.random.default_rng(1))
    np.testing.assert_allclose(np.sqrt((d_kernel ** 2).sum(axis=(0, 1, 2))),
                               np.sqrt((kernel ** 2).sum(axis=(0, 1, 2))), rtol=1e-4)
    assert not d_bias.any()


def test_a_plain_block_that_changes_shape_cannot_be_deleted():
    model = build_model(make_spec(20, 1, residual=False))
    x = np.zeros((2, 32, 32, 3), "uint8")
    assert model.forward(x, drop_blocks=(1,)).shape == (2, 10)  # same shape: passes through
    with pytest.raises(ValueError, match="stage2_block1 changes shape"):
        model.forward(x, drop_blocks=(3,))


def test_a_host_that_answers_with_an_http_error_is_online(monkeypatch):
    import urllib.error
    import urllib.request

    from explorer.data import cifar

    def answers_403(url, timeout):
        raise urllib.error.HTTPError(url, 403, "Forbidden", {}, None)

    def unreachable(url, timeout):
        raise urllib.error.URLError("no route")

    monkeypatch.setattr(cifar, "_REACHABLE", {})
    monkeypatch.setattr(urllib.request, "urlopen", answers_403)
    assert cifar.host_reachable("https://example.invalid/a") is True
    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    assert cifar.host_reachable("https://example.invalid/b") is False


def _lesion_result(model, baseline, accuracy, downsampling):
    return {"model": model, "baseline": baseline, "accuracy": accuracy, "downsampling": downsampling,
            "blocks": [f"stage1_block{i + 1}" for i in range(len(accuracy))], "n": 100}


def test_median_costs_are_what_the_reading_and_the_tour_compare():
    """The tour's lesion step answers from `median_costs`, the numbers the reading's last
    sentence states (before, it took the median over each net's own blocks and said so in a
    sentence of its own, beside the reading's other comparison)."""
    from explorer.studies.lesion import median_costs

    residual = _lesion_result("ResNet-56 v1", 0.9, [0.89, 0.88, 0.5], [False] * 3)
    plain = _lesion_result("Plain-56 v1", 0.8, [0.1, None, 0.2], [False, True, False])
    costs, shared = median_costs([residual, plain])
    assert shared == 2 and costs == pytest.approx([np.median([0.01, 0.4]), np.median([0.7, 0.6])])
    other = _lesion_result("ResNet-20 v1", 0.9, [0.8, 0.7], [False] * 2)
    costs, shared = median_costs([other, plain])
    assert shared is None and costs == pytest.approx([0.15, 0.65])


def test_lesion_reading_compares_median_costs():
    from explorer.studies.lesion import lesion_reading

    text = lesion_reading([_lesion_result("ResNet-56 v1", 0.9, [0.89, 0.88, 0.5], [False] * 3),
                           _lesion_result("Plain-56 v1", 0.8, [0.1, None, 0.2], [False, True, False])])
    assert "median 88.0%, worst 50.0% (without stage1_block3); 1 of 3 deletions" in text
    assert "1 downsampling blocks cannot be deleted" in text
    # compared on the blocks both can lose (1 and 3): ResNet costs 1 and 40 points, plain 70 and 60
    assert "On the 2 blocks both can lose, a median deletion costs ResNet-56 v1 20.5 points and " \
           "Plain-56 v1 65.0 points" in text
    other = _lesion_result("ResNet-20 v1", 0.9, [0.8, 0.7], [False] * 2)  # other blocks: own medians
    assert "costs ResNet-20 v1 15.0 points and Plain-56 v1 65.0 points" in lesion_reading(
        [other, _lesion_result("Plain-56 v1", 0.8, [0.1, None, 0.2], [False, True, False])])
    # an untrained net can do better without a block: said as a gain, not a negative cost
    untrained = lesion_reading([_lesion_result("ResNet-20 v1", 0.066, [0.094, 0.094], [False] * 2),
                                _lesion_result("Plain-20 v1", 0.094, [0.094, 0.05], [False] * 2)])
    assert "a median deletion raises ResNet-20 v1's accuracy by 2.8 points and costs Plain-20 v1 " \
           "2.2 points of accuracy." in untrained


def test_landscape_summary_from_a_known_bowl():
    from explorer.studies.landscape import landscape_reading, landscape_summary

    grid = np.linspace(-1, 1, 5)
    alphas = np.linspace(-1, 1, 9)
    result = {"model": "bowl", "n": 10, "alphas": alphas.tolist(), "loss_1d": (alphas ** 2).tolist(),
              "grid": grid.tolist(), "loss_2d": (grid[:, None] ** 2 + grid[None] ** 2).tolist()}
    summary = landscape_summary(result)
    assert summary["center_loss"] == 0 and summary["half_span_loss"] == 0.25 and summary["edge_loss"] == 1
    assert summary["basin_fraction"] == pytest.approx(9 / 25)  # x^2 + y^2 < 1 on the 5x5 grid
    alone = landscape_reading([result])
    assert "36% of the 2-D plane" in alone
    # what was measured, how finely and on how many images
    assert "on 10 test images" in alone and "a 1-D slice of 9 points and a 2-D plane of 5x5 points" in alone
    assert "a grid step of 0.5 filter norms" in alone
    steep = {**result, "model": "steep", "loss_2d": (4 * (grid[:, None] ** 2 + grid[None] ** 2)).tolist()}
    assert "bowl's basin is wider (bowl 36%, steep 4%)." in landscape_reading([result, steep])
    assert "Li et al." not in landscape_reading([result, steep])  # two nets of unknown kind: no comparison
    assert "Both basins are as wide at this resolution (36% of the plane each)" in \
        landscape_reading([result, {**result, "model": "twin"}])


def test_landscape_reading_says_plainly_where_it_differs_from_li_et_al():
    from explorer.studies.landscape import landscape_reading

    grid, alphas = np.linspace(-1, 1, 5), np.linspace(-1, 1, 9)
    bowl = (grid[:, None] ** 2 + grid[None] ** 2)

    def result(model, steepness, **extra):
        return {"model": model, "n": 128, "alphas": alphas.tolist(), "loss_1d": (alphas ** 2).tolist(),
                "grid": grid.tolist(), "loss_2d": (steepness * bowl).tolist(), **extra}

    # the plain net's basin the wider: one reading, which says it differs from the paper and how
    text = landscape_reading([result("ResNet-56 v1", 4.0, net=_net(56, True)),
                              result("Plain-56 v1", 1.0, net=_net(56, False))])
    assert "Plain-56 v1's basin is wider (ResNet-56 v1 4%, Plain-56 v1 36%)." in text
    assert "This differs from Li et al. (2018), whose plain-56 landscape was chaotic" in text
    assert "training loss on training images" in text and "without Cutout or label smoothing" in text
    assert "this is the test loss on 128 images at 5x5" in text
    assert "found the opposite" not in text and "keep deep nets' landscapes wide" not in text
    # the net a result carries decides the kind, never its name (a job's net may be named apart)
    flagged = landscape_reading([result("net a", 4.0, net=_net(56, True)),
                                 result("net b", 1.0, net=_net(56, False))])
    assert "This differs from Li et al." in flagged
    # the residual net's basin the wider: as in the paper
    text = landscape_reading([result("ResNet-56 v1", 1.0, net=_net(56, True)),
                              result("Plain-56 v1", 4.0, net=_net(56, False))])
    assert "ResNet-56 v1's basin is wider" in text and "As in Li et al. (2018)" in text
    assert "differs" not in text
    # at 20 layers Li et al. saw no difference either
    text = landscape_reading([result("ResNet-20 v1", 4.0, net=_net(20, True)),
                              result("Plain-20 v1", 1.0, net=_net(20, False))])
    assert "also found plain and residual landscapes alike at 20 layers" in text and "differs" not in text


def test_readers_take_the_kind_and_depth_from_the_net_a_result_carries_not_its_name():
    """A name may be anything (`name_apart` adds a job's id): the kind and the depth are the
    carried net's, and a result that carries none is of a kind unknown."""
    from explorer.studies.landscape import landscape_reading
    from explorer.views.charts import PALETTE, RESIDUAL_COLOR, is_residual, lesion_figure

    grid, alphas = np.linspace(-1, 1, 5), np.linspace(-1, 1, 9)
    bowl = (grid[:, None] ** 2 + grid[None] ** 2)

    def result(model, steepness, **extra):
        return {"model": model, "n": 128, "alphas": alphas.tolist(), "loss_1d": (alphas ** 2).tolist(),
                "grid": grid.tolist(), "loss_2d": (steepness * bowl).tolist(), **extra}

    # names that say the opposite kind and another depth: the nets decide (plain 20 wider: "alike at 20")
    text = landscape_reading([result("Plain-56 v1 (job:ab12)", 4.0, net=_net(20, True)),
                              result("ResNet-110 v1", 1.0, net=_net(20, False))])
    assert "also found plain and residual landscapes alike at 20 layers" in text
    unknown = landscape_reading([result("ResNet-56 v1", 4.0), result("Plain-56 v1", 1.0)])
    assert "Li et al." not in unknown  # no nets carried: no kinds to compare
    assert is_residual({"model": "Plain-56 v1", "net": _net(56, True)}) is True
    assert is_residual({"model": "Plain-56 v1"}) is None
    lesions = [{**_lesion_result(name, 0.9, [0.5], [False]), **extra}
               for name, extra in (("Plain-20 v1", {"net": _net(20, True)}), ("ResNet-20 v1", {}))]
    # a kind unknown takes its place in the run-order palette
    assert [t.marker.color for t in lesion_figure(lesions).data] == [RESIDUAL_COLOR, PALETTE[1]]


def test_same_architecture_names():
    from explorer.studies.lesion import name_apart

    results = name_apart([{"model": "ResNet-20 v1"}, {"model": "ResNet-20 v1"}], ["resnet20_v1", "job:ab12"])
    assert [r["model"] for r in results] == ["ResNet-20 v1 (resnet20_v1)", "ResNet-20 v1 (job:ab12)"]
    kept = name_apart([{"model": "ResNet-56 v1"}, {"model": "Plain-56 v1"}], ["a", "b"])
    assert [r["model"] for r in kept] == ["ResNet-56 v1", "Plain-56 v1"]


def test_landscape_contours_share_one_color_scale_and_levels():
    from explorer.views.charts import landscape_figure

    grid = np.linspace(-1, 1, 3)
    alphas = np.linspace(-1, 1, 5)

    def result(model, scale):
        return {"model": model, "n": 8, "alphas": alphas.tolist(),
                "loss_1d": (1 + scale * alphas ** 2).tolist(), "grid": grid.tolist(),
                "loss_2d": (1 + scale * (grid[:, None] ** 2 + grid[None] ** 2)).tolist()}

    fig = landscape_figure([result("ResNet-56 v1", 1.0), result("Plain-56 v1", 99.0)])
    contours = [trace for trace in fig.data if trace.type == "contour"]
    assert len(contours) == 2 and {trace.coloraxis for trace in contours} == {"coloraxis"}
    # one scale from the flattest minimum (log10 1 = 0) to the steepest edge (log10 199)
    assert fig.layout.coloraxis.cmin == 0 and fig.layout.coloraxis.cmax == pytest.approx(np.log10(199))
    assert contours[0].contours.start == contours[1].contours.start == 0
    assert contours[0].contours.size == contours[1].contours.size


def test_lesion_chart_marks_blocks_a_plain_net_cannot_lose():
    from explorer.views.charts import lesion_figure

    fig = lesion_figure([_lesion_result("Plain-56 v1", 0.8, [0.1, None, 0.2], [False, True, False])])
    (bars,) = fig.data
    assert list(bars.y) == [0.1, 0, 0.2] and list(bars.text) == ["", "n/a", ""]
    assert bars.customdata[1] == "cannot be deleted (its shape changes)" and bars.customdata[0] == "10.0%"
    assert list(bars.marker.pattern.shape) == ["", "/", ""]


def test_checkpoint_spec_reads_the_config_without_building(tmp_path):
    from explorer.nets.models import checkpoint_spec

    model = build_model(make_spec(20, 1, residual=False))
    model.save(tmp_path / "plain.keras")
    assert checkpoint_spec(tmp_path / "plain.keras") == make_spec(20, 1, residual=False)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a ResNet checkpoint of this app"):
        checkpoint_spec(tmp_path / "junk.keras")


def test_studies_check_the_request_then_measure_each_checkpoint(tmp_path):
    """One request, for the app and the CLI alike: the values and the budget checked before
    any work, then one result per checkpoint, told apart when they share an architecture."""
    from explorer.studies.landscape import landscape_study
    from explorer.studies.lesion import lesion_study

    paths = [tmp_path / "a.keras", tmp_path / "b.keras"]
    for path in paths:
        build_model(make_spec(8, 1)).save(path)
    results = lesion_study(paths, "8", names=["resnet8", "job:ab12"], source="synthetic")
    assert [r["model"] for r in results] == ["ResNet-8 v1 (resnet8)", "ResNet-8 v1 (job:ab12)"]
    assert all(r["n"] == 8 for r in results)
    with pytest.raises(ValueError, match="samples must be between 1 and 100000, got 0"):
        lesion_study(paths, 0, source="synthetic")
    landscapes = landscape_study(paths[:1], steps=3.0, samples=4, source="synthetic")
    assert len(landscapes) == 1 and len(landscapes[0]["loss_2d"]) == 3 and landscapes[0]["seconds"] >= 0
    assert landscapes[0]["model"] == "ResNet-8 v1"
    assert landscapes[0]["net"] == results[0]["net"] == make_spec(8, 1).to_config()
    with pytest.raises(ValueError, match="steps must be between 3 and 51, got 1"):
        landscape_study(paths, steps=1, source="synthetic")
    with pytest.raises(ValueError, match="times what this host allows"):
        landscape_study(paths, steps=51, samples=10_000, source="synthetic")


def test_the_command_line_is_not_held_to_the_hosts_budget(tmp_path):
    import json
    import zipfile

    from explorer.studies.landscape import check_landscape_request
    from explorer.studies.lesion import check_lesion_request

    path = tmp_path / "deep.keras"  # what checkpoint_spec reads of a ResNet-1202, without building one
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps({"config": {"spec": make_spec(1202, 1).to_config()}}))
    with pytest.raises(ValueError, match="use fewer images"):
        check_lesion_request(100, [path])
    assert check_lesion_request("100", [path], budget=False) == 100
    assert check_landscape_request(9, 128, [path], budget=False) == (9, 128)
    with pytest.raises(ValueError, match="span must be in"):
        check_landscape_request(9, 128, [path], span=0, budget=False)
