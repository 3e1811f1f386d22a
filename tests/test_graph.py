"""The plan-only architecture module: tables, summary, graph and Plotly figure."""

import re

import plotly.graph_objects as go
import pytest

from explorer.core import costs
from explorer.core.plans import plan
from explorer.core.specs import REGISTRY, get_spec
from explorer.views import graph

# He et al. Table 1 (ImageNet) and the usual CIFAR figure, in multiply-adds.
PAPER_FLOPS = {"resnet18": 1.8e9, "resnet34": 3.6e9, "resnet50": 3.8e9, "resnet101": 7.6e9,
               "resnet152": 11.3e9, "resnet20_v1": 41e6}
LAYER_KINDS = {"conv", "bn", "relu", "add", "pool", "dense", "pad"}


def shortcut_legends(fig) -> list[str]:
    return [trace.name for trace in fig.data if trace.showlegend is not False and "shortcut" in trace.name]


def hover_names(nodes) -> list[str]:
    return [re.match(r"<b>([^<]+)</b>", node["hover"]).group(1) for node in nodes]


def drawn(g) -> list[dict]:
    """The nodes a figure marks (joints, where the main path enters a row, are unmarked)."""
    return [n for n in g.nodes if n["kind"] != "joint"]


def block_nodes(g) -> list[dict]:
    return [n for n in g.nodes if n["kind"] in ("block", "stacked")]


def test_figure_legend_for_projection_shortcuts():
    fig = graph.figure(get_spec("resnet20_v1"))
    assert isinstance(fig, go.Figure)
    names = shortcut_legends(fig)
    assert len(names) == 2
    assert any("identity shortcut" in n for n in names)
    assert any("projection shortcut" in n for n in names)
    assert "274,442 parameters" in fig.layout.title.text


def test_figure_for_plain_net_has_no_shortcut_traces():
    fig = graph.figure(get_spec("plain20_v1"))
    assert shortcut_legends(fig) == []
    assert [t.name for t in fig.data if t.showlegend is not False] == ["main path"]


def test_figure_for_zeropad_shortcuts():
    names = shortcut_legends(graph.figure(get_spec("resnet20_v1_zeropad")))
    assert any("zero-pad" in n for n in names)
    assert any("identity shortcut" in n for n in names)
    assert not any("projection" in n for n in names)


@pytest.mark.parametrize("expand", ["stage1", "all"])
def test_expanded_figures_build(expand):
    fig = graph.figure(get_spec("resnet29_v2"), expand=expand)
    assert len(shortcut_legends(fig)) == 2


@pytest.mark.parametrize("name", ["resnet20_v1", "plain20_v1", "resnet20_v1_zeropad", "resnet29_v2",
                                  "resnet50"])
def test_collapsed_graph_has_one_node_per_block(name):
    spec = get_spec(name)
    blocks = plan(spec).blocks
    g = graph.build_graph(spec)
    assert [n["label"] for n in g.nodes[:2]] == ["input", "stem"]
    assert g.nodes[-1]["label"] == "head"
    assert len(drawn(g)) == len(blocks) + 3
    assert hover_names(block_nodes(g)) == [n["block"] for n in block_nodes(g)] == [b.name for b in blocks]
    assert sum(kind == "main" for _, _, kind in g.edges) == len(g.nodes) - 1
    assert sorted(kind for _, _, kind in g.edges if kind != "main") == sorted(
        b.shortcut for b in blocks if b.shortcut)


def test_expand_one_stage_shows_only_its_layers():
    spec = get_spec("resnet20_v1")
    g = graph.build_graph(spec, expand="stage2")
    layer_nodes = [n for n in g.nodes if n["kind"] in LAYER_KINDS]
    names = hover_names(layer_nodes)
    stage2 = [row.name for row in costs.layer_table(spec) if row.stage == "stage2"]
    assert names and all(n.startswith("stage2_") for n in names)
    assert set(names) == set(stage2)  # ResNet-20 v1 has no shortcut BN to merge
    assert hover_names(n for n in g.nodes if n["kind"] == "block") == [
        b.name for b in plan(spec).blocks if b.stage != 2]
    assert {kind for _, _, kind in g.edges} == {"main", "identity", "projection"}


def test_expand_all_shows_every_main_path_layer():
    spec = get_spec("resnet56_v2")
    g = graph.build_graph(spec, expand="all")
    names = set(hover_names(n for n in g.nodes if n["kind"] in LAYER_KINDS))
    assert not [n for n in g.nodes if n["kind"] == "block"]
    stage_layers = [row for row in costs.layer_table(spec) if row.stage.startswith("stage")]
    assert {row.name for row in stage_layers if not row.shortcut} <= names


@pytest.mark.parametrize("expand", ["bogus", "stage4", "stage0", ""])
def test_bad_expand_is_refused(expand):
    with pytest.raises(ValueError, match="expand must be one of"):
        graph.build_graph(get_spec("resnet20_v1"), expand=expand)


def test_imagenet_has_a_fourth_stage():
    g = graph.build_graph(get_spec("resnet18"), expand="stage4")
    assert {n for n in hover_names(n for n in g.nodes if n["kind"] in LAYER_KINDS)} >= {
        "stage4_block1_conv1", "stage4_block2_out"}


def test_resnet1202_whole_net_view_has_every_stage_and_skip_on_one_screen():
    from explorer.views.graph_layout import RIGHT, ROW_GAP

    spec = get_spec("resnet1202_v1")
    g = graph.build_graph(spec)
    assert len(block_nodes(g)) == 600 and len(drawn(g)) == 603
    assert sorted(kind for _, _, kind in g.edges if kind != "main") == ["identity"] * 598 + ["projection"] * 2
    assert [label for label, _, _ in g.stage_spans] == [
        "stage 1: 32x32x16, 200 blocks", "stage 2: 16x16x32, 200 blocks", "stage 3: 8x8x64, 200 blocks"]
    assert sorted({n["row"] for n in g.nodes}) == [-2 * ROW_GAP, -ROW_GAP, 0.0]  # one row per stage
    assert all(-1 <= n["x"] <= RIGHT + 1 for n in g.nodes)
    # each stage: its first blocks and last two single, the runs of identical blocks stacked
    assert [(s["count"], s["first"], s["last"]) for s in g.stacks] == [
        (196, "stage1_block3", "stage1_block198"), (195, "stage2_block4", "stage2_block198"),
        (195, "stage3_block4", "stage3_block198")]
    assert len(g.nodes) <= 610
    texts = [t for trace in graph.figure(spec).data if trace.name == "stack sizes" for t in trace.text]
    assert texts == ["× 196", "× 195", "× 195"]


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_net_fits_one_screen_a_row_per_stage(name):
    from explorer.views.graph_layout import RIGHT

    spec = REGISTRY[name]
    g = graph.build_graph(spec)
    stages = plan(spec).blocks[-1].stage
    assert len({n["row"] for n in g.nodes}) == stages
    assert all(-1 <= n["x"] <= RIGHT + 1 for n in g.nodes)
    fig = graph.figure(spec)
    assert fig.layout.height <= 620
    shapes = [label.split(": ")[1].split(",")[0] for label, _, _ in g.stage_spans]
    if spec.family == "cifar" and spec.version == 1:
        assert shapes == ["32x32x16", "16x16x32", "8x8x64"]


def test_block_markers_are_larger_where_the_feature_map_is():
    g = graph.build_graph(get_spec("resnet56_v1"))
    sizes = {n["block"].split("_")[0]: n["size"] for n in block_nodes(g)}
    assert sizes["stage1"] > sizes["stage2"] > sizes["stage3"]


def test_expanding_a_stage_of_resnet1202_keeps_the_overview():
    g = graph.build_graph(get_spec("resnet1202_v1"), expand="stage2")
    assert len(block_nodes(g)) == 600 - 5  # stage 2's five single blocks are drawn layer by layer
    layers = set(hover_names(n for n in g.nodes if n["kind"] in LAYER_KINDS))
    assert {"stage2_block1_conv1", "stage2_block1_shortcut", "stage2_block200_out"} <= layers
    assert len(g.nodes) < 1500  # SVG


@pytest.mark.parametrize("name", list(REGISTRY))
def test_summary_is_consistent(name):
    spec = REGISTRY[name]
    summary = costs.summarize(spec)
    totals, stages = summary["totals"], summary["stages"]
    assert totals["weighted_layers"] == spec.depth
    assert sum(s["params"] for s in stages) == totals["params"]
    assert sum(s["flops"] for s in stages) == totals["flops"]
    assert sum(s["blocks"] for s in stages) == totals["blocks"] == len(plan(spec).blocks)
    assert stages[0]["stage"] == "stem" and stages[-1]["stage"] == "head"
    assert stages[-1]["output_shape"] == str(spec.num_classes)
    assert totals["layers"] == len(costs.layer_table(spec))


@pytest.mark.parametrize("name", list(PAPER_FLOPS))
def test_flops_match_published_figures(name):
    flops = costs.summarize(get_spec(name))["totals"]["flops"]
    assert flops == pytest.approx(PAPER_FLOPS[name], rel=0.03)


def test_expand_that_is_not_a_string_is_a_clear_error():
    """Gradio's dropdown lets an API caller send a list of valid choices."""
    with pytest.raises(ValueError, match="expand must be one of"):
        graph.build_graph(get_spec("resnet20_v1"), expand=["none"])


def test_stage_rows_are_the_table_with_thousands_separators():
    rows = costs.stage_rows(costs.summarize(get_spec("resnet20_v1")))
    assert [row[0] for row in rows] == ["stem", "stage1", "stage2", "stage3", "head", "total"]
    assert rows[-1] == ["total", "9", "", "274,442", "40,813,184"]
    assert rows[1] == ["stage1", "3", "32x32x16", "14,304", "14,155,776"]
    assert all(len(row) == len(costs.STAGE_HEADERS) for row in rows)
    assert costs.STAGE_HEADERS[-1] == "multiply-adds" and "FLOPs" not in costs.STAGE_HEADERS


@pytest.mark.parametrize("name, expand", [("resnet50", "none"), ("resnet50", "stage2"),
                                          ("resnet29_v2", "all")])
def test_tooltips_name_multiply_adds_and_wrap_long_lines(name, expand):
    from explorer.views.graph_layout import HOVER_WIDTH

    for node in graph.build_graph(get_spec(name), expand).nodes:
        assert "FLOPs" not in node["hover"]
        lines = re.sub(r"</?b>", "", node["hover"]).split("<br>")
        assert all(len(line) <= HOVER_WIDTH for line in lines), lines
        if node["kind"] not in ("stage", "joint"):  # the input node has no cost, a joint no tooltip
            assert any(line.startswith("multiply-adds ") for line in lines)
    block = next(n for n in graph.build_graph(get_spec(name)).nodes if n["kind"] == "block")
    assert block["hover"].count("<br>") >= 5  # the bottleneck's layers, wrapped over several lines


def test_figure_uses_svg_at_every_depth():
    """A page holds only a few WebGL contexts: stacks keep even ResNet-1202's every layer in SVG."""
    for name, expand in (("resnet110_v1", "none"), ("resnet50", "all"), ("resnet1202_v1", "none"),
                         ("resnet1202_v1", "all")):
        assert {trace.type for trace in graph.figure(get_spec(name), expand).data} == {"scatter"}, name


@pytest.mark.parametrize("name, block", [("resnet20_v1", "stage2_block2"), ("resnet56_v2", "stage3_block6"),
                                         ("resnet1202_v1", "stage2_block100"), ("resnet50", "stage4_block1")])
def test_one_block_expanded_on_its_own_keeps_the_overview(name, block):
    spec = get_spec(name)
    g = graph.build_graph(spec, expand=block)
    mine = [n for n in g.nodes if n.get("block") == block]
    assert {n["kind"] for n in mine} >= {"conv", "bn", "add"}  # its layers, not one node
    rows = [row for row in costs.layer_table(spec) if row.block == block]
    shown = set(hover_names(n for n in mine if n["kind"] in LAYER_KINDS))
    assert {row.name for row in rows if not row.shortcut} <= shown <= {row.name for row in rows}
    others = {n["block"] for n in g.nodes if n.get("block") and n["block"] != block}
    assert others == {b.name for b in plan(spec).blocks} - {block}  # every other block still drawn
    assert not [n for n in g.nodes if n["kind"] in LAYER_KINDS and n.get("block") != block]
    assert len({n["row"] for n in g.nodes}) == len({n["row"] for n in graph.build_graph(spec).nodes})
    stacked = [(s["first"], s["last"]) for s in g.stacks]
    assert all(not (s[0] <= block <= s[1]) or block in s for s in stacked)  # never inside a stack


def test_a_block_expanded_inside_a_stack_splits_it():
    g = graph.build_graph(get_spec("resnet1202_v1"), expand="stage2_block100")
    assert [(s["first"], s["last"], s["count"]) for s in g.stacks if s["first"].startswith("stage2")] == [
        ("stage2_block4", "stage2_block99", 96), ("stage2_block101", "stage2_block198", 98)]


@pytest.mark.parametrize("expand", ["stage2_block4", "stage9_block1", "block1"])
def test_expanding_a_block_the_net_has_not_is_refused(expand):
    with pytest.raises(ValueError, match=r"expand must be one of .* or a block's name "
                                         r"\(stage1_block1 to stage3_block3\)"):
        graph.build_graph(get_spec("resnet20_v1"), expand=expand)


def test_every_block_node_names_its_block_for_a_click():
    fig = graph.figure(get_spec("resnet56_v1"), expand="stage1_block3")
    named = {name for trace in fig.data if trace.mode == "markers+text" for name in trace.customdata if name}
    assert named == {b.name for b in plan(get_spec("resnet56_v1")).blocks}
    stem = next(trace for trace in fig.data if trace.name == "stem")
    assert list(stem.customdata) == [""]
