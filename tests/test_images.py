"""Uploads of every kind either work or fail with a clear ValueError; one preprocessing path."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from explorer.data import images


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
    pixels = images.prepare(str(path))
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


@pytest.mark.parametrize("shape, dtype", [((40, 30), np.uint8), ((40, 30, 1), np.uint8),
                                          ((40, 30, 1), np.float32), ((40, 30, 4), np.uint16)])
def test_arrays_of_every_layout_are_prepared(shape, dtype):
    array = (np.random.default_rng(0).random(shape) * 200).astype(dtype)
    pixels = images.prepare(array)
    assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8


def test_transparency_is_composited_on_white():
    pixels = images.prepare(_odd_images()["rgba transparent"])
    assert (pixels == 255).all()


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (64, 32), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 32, 32))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 clockwise: blue ends up on top
    pixels = images.prepare(_png_bytes(img, "JPEG", exif=exif, quality=95))
    assert pixels[2, 16, 2] > 200 and pixels[29, 16, 0] > 200


BAD = {
    "zero bytes": b"",
    "text named png": b"hello, this is not an image\n" * 10,
    "truncated jpeg": _png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:200],
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<rect width="10" height="10"/></svg>'),
    "pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "bomb 40000x40000": _bomb_png(),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_files_get_a_clear_error(name, tmp_path):
    path = tmp_path / "upload.png"
    path.write_bytes(BAD[name])
    with pytest.raises(ValueError) as err:
        images.prepare(str(path))
    assert len(str(err.value)) < 200 and "Traceback" not in str(err.value)


def test_sketch_backgrounds_fill_the_canvas_and_refuse_unknown_colors():
    canvas = images.sketch_background("grey road")
    assert canvas.shape == (256, 256, 3) and (canvas == 128).all()
    # what the model sees of an empty grey-road sketch is the same grey
    assert (images.prepare(canvas) == 128).all()
    with pytest.raises(ValueError, match="unknown background"):
        images.sketch_background("plaid")


def test_postscript_named_like_a_png_is_refused_without_running_ghostscript():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"
    with pytest.raises(ValueError, match=r"not an image \(77 bytes; it is a PostScript file\)"):
        images.prepare(eps)


@pytest.mark.parametrize("content, said", [
    (b"hello, this is not an image\n" * 2 + b"just a text!", "(68 bytes; it starts like text)"),
    (BAD["svg"], "it is an SVG drawing"),
    (BAD["pdf"], "it is a PDF document"),
    (bytes(range(256)) * 4, "(1,024 bytes; not a known image format)"),
])
def test_a_file_that_is_not_an_image_is_told_what_it_is(content, said, tmp_path):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    for upload in (str(path), content):
        with pytest.raises(ValueError) as err:
            images.prepare(upload)
        message = str(err.value)
        assert said in message and "this file is not an image" in message and "too large" not in message
        assert "upload a PNG, JPEG" in message and len(message) < 200


def test_a_decompression_bomb_is_too_large_not_a_non_image(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(BAD["bomb 40000x40000"])
    with pytest.raises(ValueError, match="the image is too large"):
        images.prepare(str(path))


def test_32_bit_images_with_negative_values_keep_their_order():
    """Mode I values -5 (left) to -1 (right): dark to bright, not wrapped to near-white."""
    values = np.repeat(np.linspace(-5, -1, 32).round().astype(np.int32)[None], 32, axis=0)
    buffer = io.BytesIO()
    Image.fromarray(values, mode="I").save(buffer, "TIFF")
    pixels = images.prepare(buffer.getvalue())
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
    fast = images.prepare(raw).astype(np.float32)
    assert np.abs(fast - full).mean() < 3


def test_a_file_is_decoded_once_for_the_label_and_the_view(tmp_path, monkeypatch):
    """The page classifies an upload, then shows what the model saw: one decode for both;
    a changed file is decoded again."""
    from PIL import Image

    from explorer.data import images

    path = tmp_path / "red.png"
    Image.new("RGB", (64, 48), (200, 10, 10)).save(path)
    calls = []
    decode = images._decode
    monkeypatch.setattr(images, "_decode", lambda image, size: calls.append(image) or decode(image, size))
    first = images.prepare(str(path))
    first[:] = 0  # a caller's change never reaches the kept decode
    again = images.prepare(str(path))
    assert len(calls) == 1 and again[0, 0].tolist() == [200, 10, 10]
    Image.new("RGB", (64, 48), (10, 200, 10)).save(path)
    os.utime(path, ns=(1, 1))  # a new mtime, even on a coarse clock
    assert images.prepare(str(path))[0, 0].tolist() == [10, 200, 10] and len(calls) == 2
    sketch = np.zeros((40, 40, 3), np.uint8)
    images.prepare(sketch)
    images.prepare(sketch.copy())
    assert len(calls) == 3
