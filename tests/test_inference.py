"""Uploads of every kind either work or fail with a clear ValueError; one preprocessing path."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from explorer import inference
from explorer.models import build_model
from explorer.specs import get_spec
from explorer.training import predict


def _png_bytes(img, fmt="PNG", **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _bomb_png(width=40000, height=40000):
    """A tiny PNG whose header claims width x height pixels."""
    raw = bytearray(_png_bytes(Image.new("RGB", (1, 1))))
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4: ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(raw[ihdr: ihdr + 17]))
    raw[ihdr + 17: ihdr + 21] = struct.pack(">I", crc)
    return bytes(raw)


def _odd_images():
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 0
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    return {
        "1x1": _png_bytes(Image.new("RGB", (1, 1), (9, 9, 9))),
        "grayscale": _png_bytes(rgb.convert("L")),
        "16-bit": _png_bytes(Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 15).astype(np.uint16))),
        "rgba transparent": _png_bytes(rgba),
        "cmyk": _png_bytes(rgb.convert("CMYK"), "JPEG"),
        "palette": _png_bytes(palette),
        "animated gif": gif.getvalue(),
        "webp": _png_bytes(rgb, "WEBP"),
        "4000x3000": _png_bytes(Image.new("RGB", (4000, 3000), (10, 200, 30)), "JPEG"),
        "exif rotated": _png_bytes(rgb, "JPEG", exif=exif),
    }


@pytest.mark.parametrize("name", list(_odd_images()))
def test_odd_images_are_prepared(name, tmp_path):
    path = tmp_path / "upload.jpg"  # a PNG named .jpg among them: the name must not matter
    path.write_bytes(_odd_images()[name])
    pixels = inference.prepare(str(path))
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


@pytest.mark.parametrize("shape, dtype", [((40, 30), np.uint8), ((40, 30, 1), np.uint8),
                                          ((40, 30, 1), np.float32), ((40, 30, 4), np.uint16)])
def test_arrays_of_every_layout_are_prepared(shape, dtype):
    array = (np.random.default_rng(0).random(shape) * 200).astype(dtype)
    pixels = inference.prepare(array)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


def test_transparency_is_composited_on_white():
    pixels = inference.prepare(_odd_images()["rgba transparent"])
    assert (pixels == 255).all()


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (64, 32), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 32, 32))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 clockwise: blue ends up on top
    pixels = inference.prepare(_png_bytes(img, "JPEG", exif=exif, quality=95))
    assert pixels[2, 16, 2] > 200 and pixels[29, 16, 0] > 200


BAD = {
    "zero bytes": b"",
    "text named png": b"hello, this is not an image\n" * 10,
    "truncated jpeg": _png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:200],
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
    "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "bomb 40000x40000": _bomb_png(),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_files_get_a_clear_error(name, tmp_path):
    path = tmp_path / "upload.png"
    path.write_bytes(BAD[name])
    with pytest.raises(ValueError) as err:
        inference.prepare(str(path))
    assert len(str(err.value)) < 200 and "Traceback" not in str(err.value)


def test_classify_uses_the_evaluation_path(tmp_path):
    model = build_model(get_spec("resnet20_v1"))
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = tmp_path / "test.png"
    Image.fromarray(image).save(path)
    label, seen = inference.classify(model, str(path), top=10)
    np.testing.assert_array_equal(seen, image)
    expected = predict(model, image[None])[0]
    for i, name in enumerate(inference.CIFAR_CLASSES):
        assert label[name] == pytest.approx(float(expected[i]), abs=1e-6)


def test_manifest_lookup_is_by_name_only(tmp_path):
    (tmp_path / "manifest.json").write_text('{"checkpoints": [{"name": "resnet20_v1", "file": "r.keras"}]}')
    with pytest.raises(ValueError, match="its file r.keras is missing"):
        inference.pretrained_path("resnet20_v1", tmp_path)
    (tmp_path / "r.keras").write_bytes(b"")
    assert inference.pretrained_path("resnet20_v1", tmp_path) == tmp_path / "r.keras"
    with pytest.raises(ValueError, match="unknown checkpoint"):
        inference.pretrained_path("../../etc/passwd", tmp_path)


def test_the_shipped_twin_has_the_same_architecture_and_shortcuts_flipped(tmp_path):
    import json

    def entry(name, depth, residual, version=1):
        return {"name": name, "file": f"{name}.keras", "depth": depth, "version": version,
                "residual": residual, "shortcut": "projection"}

    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [
        entry("resnet20_v1", 20, True), entry("resnet56_v1", 56, True), entry("plain56_v1", 56, False),
        entry("plain29_v2", 29, False, version=2), {"name": "bare", "file": "bare.keras"}]}))
    assert inference.shipped_twin("resnet56_v1", tmp_path) == "plain56_v1"
    assert inference.shipped_twin("plain56_v1", tmp_path) == "resnet56_v1"
    assert inference.shipped_twin("resnet20_v1", tmp_path) is None  # its plain twin not shipped
    assert inference.shipped_twin("plain29_v2", tmp_path) is None  # the v1 nets are not its twins
    assert inference.shipped_twin("bare", tmp_path) is None
    assert inference.shipped_twin("unknown", tmp_path) is None


def test_gradcam_overlays_the_enlarged_input():
    model = build_model(get_spec("resnet20_v1"))
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    overlay, caption = inference.gradcam(model, image)
    assert overlay.shape == (192, 192, 3) and overlay.dtype == np.uint8
    probs = inference.classify(model, image, top=1)[0]
    (top_class, top_p), = probs.items()
    assert f"Grad-CAM for **{top_class}** ({top_p:.1%})" in caption
    assert "Grad-CAM for **cat**" in inference.gradcam(model, image, "cat")[1]
    with pytest.raises(ValueError, match="unknown class"):
        inference.gradcam(model, image, "unicorn")


def test_sketch_backgrounds_fill_the_canvas_and_refuse_unknown_colors():
    canvas = inference.sketch_background("grey road")
    assert canvas.shape == (256, 256, 3) and (canvas == 128).all()
    # what the model sees of an empty grey-road sketch is the same grey
    assert (inference.prepare(canvas) == 128).all()
    with pytest.raises(ValueError, match="unknown background"):
        inference.sketch_background("plaid")


@pytest.mark.parametrize("text", ["{not json", '{"files": []}', '{"checkpoints": [{"name": "x"}]}'])
def test_a_damaged_manifest_is_a_clear_error(tmp_path, text):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(ValueError, match="manifest manifest.json is damaged"):
        inference.manifest(tmp_path)
    with pytest.raises(ValueError, match="damaged"):
        inference.pretrained_path("x", tmp_path)


@pytest.mark.parametrize("name", ["resnet20_v1", "resnet29_v2"])
def test_logits_are_the_scores_under_the_softmax(name):
    """Grad-CAM's class score is the logit: softmax(logits(feature_map(last block))) is the
    model's output, and in a pre-activation net the map is after the head's ReLU."""
    import tensorflow as tf

    model = build_model(get_spec(name))
    x = tf.constant(np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    probs, outputs = model.forward(x, collect=True)
    fmap = model.feature_map(outputs[-1])
    np.testing.assert_allclose(tf.nn.softmax(model.logits(fmap)).numpy(), probs.numpy(), atol=1e-5)
    if name.endswith("v2"):
        assert float(tf.reduce_min(fmap)) >= 0  # after head_relu
        assert not np.allclose(fmap.numpy(), outputs[-1].numpy())


def test_gradcam_weighs_the_map_by_the_logit_gradient():
    """The heat is ReLU(sum_k mean(d logit_c / d A^k) A^k), checked against a hand-written
    GradientTape through the Keras layers (average pooling and the dense kernel, no softmax);
    classes other than the predicted one get maps of their own."""
    import tensorflow as tf

    model = build_model(get_spec("resnet20_v1"))
    pixels = inference.prepare(np.random.default_rng(4).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    names = inference.class_names(model)
    _, outputs = model.forward(tf.constant(pixels[None]), collect=True)
    fmap = outputs[-1]  # v1: the block output is the map
    dense = next(layer for layer in model.head if layer.name == "head_dense")
    maps = {}
    for name in ("truck", "cat", "ship"):
        with tf.GradientTape() as tape:
            tape.watch(fmap)
            logit = (tf.reduce_mean(fmap, axis=(1, 2)) @ dense.kernel + dense.bias)[0, names.index(name)]
        weights = tape.gradient(logit, fmap)[0].numpy().mean(axis=(0, 1))
        cam = np.maximum((fmap[0].numpy() * weights).sum(-1), 0)
        expected = cam / (cam.max() or 1.0)
        maps[name], index, _ = inference.gradcam_map(model, pixels, name)
        assert index == names.index(name)
        np.testing.assert_allclose(maps[name], expected, atol=1e-5)
    assert not np.allclose(maps["truck"], maps["cat"])


def test_postscript_named_like_a_png_is_refused_without_running_ghostscript():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"
    with pytest.raises(ValueError, match="not an image this app can read"):
        inference.prepare(eps)


def test_32_bit_images_with_negative_values_keep_their_order():
    """Mode I values -5 (left) to -1 (right): dark to bright, not wrapped to near-white."""
    values = np.repeat(np.linspace(-5, -1, 32).round().astype(np.int32)[None], 32, axis=0)
    buffer = io.BytesIO()
    Image.fromarray(values, mode="I").save(buffer, "TIFF")
    pixels = inference.prepare(buffer.getvalue())
    assert pixels[:, 0].max() == 0 and pixels[:, -1].min() == 255
    assert (np.diff(pixels[0, :, 0].astype(int)) >= 0).all()


def test_a_big_jpeg_is_decoded_at_reduced_scale_with_the_same_picture():
    """draft() decodes a 4000x3000 JPEG at 1/8 scale: the 32x32 result matches a full decode."""
    rng = np.random.default_rng(5)
    small = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    photo = Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC)
    raw = _png_bytes(photo, "JPEG", quality=95)
    full = np.asarray(ImageOps.fit(Image.open(io.BytesIO(raw)).convert("RGB"), (32, 32),
                                   method=Image.Resampling.LANCZOS), dtype=np.float32)
    fast = inference.prepare(raw).astype(np.float32)
    assert np.abs(fast - full).mean() < 3
