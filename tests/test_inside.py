"""Inside a net on one image: x, F(x) and x + F(x) of every block are the model's own forward
pass (read here from its layers as they run, not through `inside`'s sub-model), the numbers
are NumPy's on them, and the command line prints them or refuses bad input with exit status 2."""

import contextlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from explorer.core.limits import MAX_INSIDE_CHANNELS
from explorer.core.specs import make_spec
from explorer.nets.checkpoints import load
from explorer.nets.models import build_model
from explorer.studies import inside as inside_module
from explorer.studies import overlays
from explorer.studies.inside import block_ratios, block_tensors, inside
from explorer.views.overlay_figures import overlay_figure
from tests.test_cli import assert_clean_failure, json_lines, run_main

NETS = {"v1": make_spec(14, 1), "v2": make_spec(20, 2), "plain": make_spec(14, 1, residual=False)}


@pytest.fixture(scope="module")
def models():
    """Fresh small nets: ResNet-14 v1 (identity and projection blocks), ResNet-20 v2 and Plain-14."""
    return {key: build_model(spec) for key, spec in NETS.items()}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)


@contextlib.contextmanager
def recorded(model):
    """Records, while the model runs, what its stem's last layer, each block's last branch layer
    and add, and each block give: the forward pass's own tensors, by layer."""
    seen, patched = {}, []

    def watch(layer, key):
        original = layer.call

        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            seen[key] = np.asarray(out, np.float32)
            return out

        layer.call = call
        patched.append((layer, original))

    watch(model.stem[-1], "stem")
    for block in model.blocks:
        watch(block.branch[-1], (block.name, "branch"))
        if block.add is not None:
            watch(block.add, (block.name, "sum"))
    try:
        yield seen
    finally:
        for layer, original in patched:
            layer.call = original


def forward_pass(model, pixels):
    """(recorded layer outputs, each block's output) of the model's own forward pass, eagerly."""
    with recorded(model) as seen:
        _, outputs = model.forward(pixels.astype(np.float32), training=False, collect=True)
    return seen, [np.asarray(o, np.float32) for o in outputs]


@pytest.mark.parametrize("key", list(NETS))
def test_x_is_the_previous_block_output_and_the_sum_the_block_own(models, images, key):
    model = models[key]
    seen, outputs = forward_pass(model, images)
    tensors, _ = block_tensors(model, images)
    for i, (block, parts) in enumerate(zip(model.blocks, tensors)):
        previous = seen["stem"] if i == 0 else outputs[i - 1]
        np.testing.assert_allclose(parts["x"], previous, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(parts["branch"], seen[(block.name, "branch")], rtol=1e-4, atol=1e-4)
        out = parts.get("relu", parts.get("sum", parts["branch"]))
        np.testing.assert_allclose(out, outputs[i], rtol=1e-4, atol=1e-4)
        if block.add is None:
            assert "sum" not in parts and "skip" not in parts
            continue
        np.testing.assert_allclose(parts["sum"], seen[(block.name, "sum")], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(parts["skip"] + parts["branch"], parts["sum"], rtol=1e-4, atol=1e-3)
        if key == "v2":  # a pre-activation block's output is its sum: no ReLU after the add
            assert "relu" not in parts
            np.testing.assert_allclose(outputs[i], seen[(block.name, "sum")], rtol=1e-4, atol=1e-4)
        if not block.plan.downsamples and block.shortcut == []:  # identity: the add receives x itself
            np.testing.assert_array_equal(parts["skip"], parts["x"])


@pytest.mark.parametrize("key", list(NETS))
def test_the_numbers_are_numpy_norms_of_the_forward_pass(models, images, key):
    model = models[key]
    seen, outputs = forward_pass(model, images[:1])
    result = inside(model, images[0])
    def norm(a):
        return float(np.sqrt(np.sum(np.square(a.astype(np.float64)))))

    assert [b["block"] for b in result["blocks"]] == [b.name for b in model.blocks]
    for i, (block, record) in enumerate(zip(model.blocks, result["blocks"])):
        x = seen["stem"] if i == 0 else outputs[i - 1]
        branch = seen[(block.name, "branch")]
        assert record["input_norm"] == pytest.approx(norm(x), rel=1e-4)
        assert record["branch_norm"] == pytest.approx(norm(branch), rel=1e-4)
        assert record["output_norm"] == pytest.approx(norm(outputs[i]), rel=1e-4)
        assert record["readout_top"] is None and "maps" not in record
        if block.add is None:
            assert record["sum_norm"] is record["branch_ratio"] is record["cosine"] is None
            continue
        total = seen[(block.name, "sum")]
        skip = total.astype(np.float64) - branch
        assert record["sum_norm"] == pytest.approx(norm(total), rel=1e-4)
        assert record["skip_norm"] == pytest.approx(norm(skip), rel=1e-3)
        assert record["branch_ratio"] == pytest.approx(norm(branch) / norm(skip), rel=1e-3)
        cosine = float(np.sum(skip * total) / (norm(skip) * norm(total)))
        assert record["cosine"] == pytest.approx(cosine, rel=1e-3)
    probabilities = np.asarray(model(images[:1].astype(np.float32)))[0]
    assert result["top"][0]["probability"] == pytest.approx(float(probabilities.max()), rel=1e-4)


def test_one_block_maps_share_channels_and_a_colour_scale(models, images):
    model = models["v1"]
    result = inside(model, images[1], "stage2_block2", channels=3)
    (record,) = [b for b in result["blocks"] if "maps" in b]
    maps = record["maps"]
    parts = {part: value[0] for part, value in block_tensors(model, images[1:2])[0][3].items()}
    energy = np.square(parts["sum"].astype(np.float64)).sum((0, 1))
    assert maps["channels"] == list(np.argsort(energy)[::-1][:3])
    for part in ("x", "branch", "sum", "relu"):
        assert maps[part].shape == (3, 16, 16)
        np.testing.assert_allclose(maps[part], np.moveaxis(parts[part][..., maps["channels"]], -1, 0))
    shown = ("x", "branch", "sum", "relu")
    assert maps["scale"] == pytest.approx(max(float(np.abs(maps[part]).max()) for part in shown))
    # a projection: x as the add receives it
    down = inside(model, images[1], "stage2_block1")["blocks"][2]["maps"]
    assert down["x_is"] == "shortcut(x)" and down["x"].shape == down["sum"].shape
    plain = inside(models["plain"], images[1], "stage2_block1")["blocks"][2]["maps"]
    assert plain["sum"] is None and plain["x"].shape == (4, 32, 32) and plain["branch"].shape == (4, 16, 16)


def test_each_block_read_out_is_its_probe_on_the_pooled_output(models, images):
    model = models["v1"]
    _, outputs = forward_pass(model, images[:1])
    rng = np.random.default_rng(1)
    classes = [f"class{i}" for i in range(10)]
    probes = {"classes": classes, "weights": [rng.normal(size=(o.shape[-1], 10)).tolist() for o in outputs],
              "bias": [rng.normal(size=10).tolist() for _ in outputs]}
    result = inside(model, images[0], readout=probes)
    for record, output, weights, bias in zip(result["blocks"], outputs, probes["weights"], probes["bias"]):
        scores = output[0].mean((0, 1)) @ np.array(weights) + np.array(bias)
        best = [classes[i] for i in np.argsort(scores)[::-1][:3]]
        assert [entry["class"] for entry in record["readout_top"]] == best
    with pytest.raises(ValueError, match="blocks"):
        inside(model, images[0], readout={**probes, "weights": probes["weights"][:2]})


def test_block_ratios_average_each_image_ratio(models, images):
    model = models["v1"]
    averaged = block_ratios(model, images)
    each = [inside(model, image)["blocks"] for image in images]
    for key in ("branch_ratio", "cosine"):
        for i in range(len(averaged["blocks"])):
            assert averaged[key][i] == pytest.approx(np.mean([r[i][key] for r in each]), rel=1e-5)
    assert block_ratios(models["plain"], images[:1])["branch_ratio"] == [None] * 6


def test_the_sub_model_is_built_once_per_model_and_traced_gives_the_same(images, monkeypatch):
    model = build_model(NETS["v2"])
    eager, probabilities = block_tensors(model, images)
    monkeypatch.setattr(inside_module, "_graph", lambda model: pytest.fail("built again"))
    inside_module.trace(model)
    traced, traced_probabilities = block_tensors(model, images)
    assert model._explorer_inside.traced is not None
    np.testing.assert_allclose(traced_probabilities, probabilities, rtol=1e-5, atol=1e-6)
    for before, after in zip(eager, traced):
        assert before.keys() == after.keys()
        for part in before:
            np.testing.assert_allclose(after[part], before[part], rtol=1e-4, atol=1e-4)


def test_bad_requests_are_refused_with_what_is_allowed(models, images):
    model = models["v1"]
    with pytest.raises(ValueError, match="block must be one of ResNet-14 v1's blocks, stage1_block1 to"):
        inside(model, images[0], "stage9_block1")
    with pytest.raises(ValueError, match=f"channels must be a whole number from 1 to {MAX_INSIDE_CHANNELS}"):
        inside(model, images[0], "stage1_block1", channels=0)
    with pytest.raises(ValueError):
        inside(model, b"not an image")
    with pytest.raises(ValueError, match="images must be a whole number from 1"):
        block_ratios(model, images[:0])
    imagenet = SimpleNamespace(spec=make_spec(18, family="imagenet"))  # refused before any pass
    with pytest.raises(ValueError, match="ImageNet"):
        inside(imagenet, images[0])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, models, images):
    folder = tmp_path_factory.mktemp("inside")
    models["v1"].save(folder / "resnet14.keras")
    Image.fromarray(images[0]).save(folder / "image.png")
    return folder / "resnet14.keras", folder / "image.png"


def test_the_inside_command_prints_a_line_per_block(checkpoint, models, images):
    path, image = checkpoint
    result = run_main("inside", path, image, "--json")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    expected = inside(models["v1"], images[0])["blocks"]
    assert [line["block"] for line in lines] == [b["block"] for b in expected]
    for line, record in zip(lines, expected):
        assert set(line) >= {"block", "input_norm", "branch_norm", "output_norm", "branch_ratio", "cosine",
                             "readout_top"}
        assert line["branch_ratio"] == pytest.approx(record["branch_ratio"], rel=1e-4)
    one = json_lines(run_main("inside", path, image, "--block", "stage2_block2", "--json").stdout)
    assert [line["block"] for line in one] == ["stage2_block2"]
    text = run_main("inside", path, image).stdout
    assert "stage3_block2" in text and "|F(x)|/|x|" in text


def test_the_inside_command_reads_out_each_block_with_data(checkpoint):
    path, image = checkpoint
    lines = json_lines(run_main("inside", path, image, "--data", "synthetic", "--json").stdout)
    assert all(len(line["readout_top"]) == 3 for line in lines)
    assert json.dumps(lines)  # every value is plain JSON


def test_the_inside_command_refuses_bad_input_with_exit_status_2(checkpoint, tmp_path):
    path, image = checkpoint
    for args, needle in (((path, tmp_path / "none.png"), "error:"),
                         ((tmp_path / "none.keras", image), "no checkpoint at none.keras"),
                         ((path, image, "--block", "stage7_block1"), "block must be one of"),
                         ((path, path), "error:")):
        result = run_main("inside", *args, "--json")
        assert result.returncode == 2, (args, result.stdout)
        assert_clean_failure(result, needle)


def test_the_branch_ratio_overlay_colours_each_block_by_its_average_ratio(checkpoint, tmp_path):
    path, _ = checkpoint
    result = overlays.overlay(0, 0, "branch_ratio", path, source="synthetic")
    model = load(path)
    images = overlays._probe_images(model.spec.depth, "synthetic")[0]
    each = [inside(model, image)["blocks"] for image in images[:4]]
    assert result["blocks"] == [b.name for b in model.blocks] and result["n"] == len(images)
    assert result["values"] == pytest.approx(block_ratios(model, images)["branch_ratio"])
    assert block_ratios(model, images[:4])["branch_ratio"] == pytest.approx(
        [np.mean([r[i]["branch_ratio"] for r in each]) for i in range(len(model.blocks))])
    assert overlay_figure(result).data  # drawn like the other overlays
    plain = tmp_path / "plain.keras"
    build_model(NETS["plain"]).save(plain)
    with pytest.raises(ValueError, match="plain net"):
        overlays.overlay(0, 0, "branch_ratio", plain, source="synthetic")
    with pytest.raises(ValueError, match="needs a checkpoint"):
        overlays.overlay(14, 1, "branch_ratio", source="synthetic")
