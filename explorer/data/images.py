"""Uploads and sketches into the image a CIFAR-10 net sees: the one preprocessing path.

`prepare` turns any upload (a path, bytes, an array or a PIL image) into the 32x32 uint8 RGB
image the model sees; the model normalizes it itself (`models.py`), exactly as in training
and evaluation. Everything a user can send is decoded defensively: odd images are converted,
anything else is refused with a `ValueError` a person can act on.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explorer.core.caches import BoundedCache

MAX_PIXELS = 40_000_000  # refuse decompression bombs (a 4000x3000 photo is 12 M)
MAX_BYTES = 10 * 1024 * 1024


def image_path(value):
    """The file of an upload as a Gradio component or API call gives it.

    Args:
        value: None, a dict with a "path" (an API call's file data), an object with a
            `.path` (gr.FileData) or the path itself.

    Returns:
        The path (or whatever else `value` holds, for `prepare` to refuse clearly).

    Raises:
        ValueError: `value` is None: nothing was uploaded.
    """
    if value is None:
        raise ValueError("upload an image first")
    return value.get("path") if isinstance(value, dict) else getattr(value, "path", value)


def _upload_formats() -> tuple[str, ...]:
    Image.init()  # the raster formats people upload, as far as this Pillow reads them
    wanted = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "PPM", "AVIF")
    return tuple(name for name in wanted if name in Image.OPEN)


UPLOAD_FORMATS = _upload_formats()  # JPEG covers MPO (multi-picture JPEGs from cameras)


def open_image(image) -> Image.Image:
    """A PIL image from a path, bytes, a numpy array or a PIL image, not yet decoded.

    Args:
        image: a file path (at most `MAX_BYTES`), the file's bytes (only `UPLOAD_FORMATS`
            are opened), a numpy array (gray, RGB or RGBA; arrays that are not uint8 are
            rescaled to [0, 255]) or a PIL image (returned as is).

    Returns:
        The opened `PIL.Image.Image`.

    Raises:
        ValueError: no image, a missing, empty or too large file, or an array of no image
            shape. Pillow's own errors (a non-image, a corrupt file) are left to `prepare`.
    """
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        if (image.ndim not in (2, 3) or image.size == 0
                or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4))):
            raise ValueError(f"not an image array (shape {image.shape}): gray, RGB or RGBA")
        array = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image  # Pillow wants (H, W)
        if array.dtype != np.uint8:
            top = float(array.max()) if array.size else 1.0
            array = np.clip(array / (top if top > 1 else 1.0) * 255, 0, 255).astype(np.uint8)
        return Image.fromarray(array)
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise ValueError("the uploaded file is missing")
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
        image = path.read_bytes()
    if isinstance(image, (bytes, bytearray)):
        if not image:
            raise ValueError("the file is empty")
        # only raster formats people upload: Pillow would otherwise open whatever it
        # recognizes by content (a PostScript file named x.png runs Ghostscript)
        return Image.open(io.BytesIO(image), formats=UPLOAD_FORMATS)
    raise ValueError("no image given")


# The last few decodes, by file identity or array content: the page classifies an upload and
# then shows the 32x32 image the model saw (two steps of one click, the second not part of the
# scripted API), and the second step reuses the first one's decode instead of decoding again.
RECENT_DECODES = 16
_RECENT = BoundedCache(RECENT_DECODES, lru=True)  # decode key -> pixels, the most recently used kept


def _decode_key(image, size: int) -> tuple | None:
    """What identifies a decode: the file's path, size and mtime, or an array's digest."""
    if isinstance(image, (str, Path)):
        try:
            stat = Path(image).stat()
        except OSError:
            return None  # prepare says what is wrong
        return ("file", str(image), stat.st_size, stat.st_mtime_ns, size)
    if isinstance(image, np.ndarray):
        return ("array", image.shape, str(image.dtype), hashlib.blake2b(image.tobytes()).hexdigest(), size)
    return None


def prepare(image, size: int = 32) -> np.ndarray:
    """The size x size x 3 uint8 image the model sees (32x32 for the CIFAR-10 nets).

    Handles EXIF rotation, animation (first frame), transparency (composited on white),
    palette, grayscale, 16-bit and CMYK images; center-crops to a square and resizes with
    antialiasing.

    Args:
        image: a file path, the file's bytes, a numpy array (gray, RGB or RGBA; arrays that
            are not uint8 are rescaled to [0, 255]) or a PIL image.
        size: side of the output in pixels.

    Returns:
        A (size, size, 3) uint8 RGB array.

    Raises:
        ValueError: no image, a missing, empty or too large (over 10 MB) file, a non-image,
            a truncated or corrupt file, or a decompression bomb (over 40 million pixels).
    """
    key = _decode_key(image, size)
    pixels = None if key is None else _RECENT.get(key)
    if pixels is None:
        pixels = _decode(image, size)
        if key is not None:
            _RECENT.put(key, pixels)
    return pixels.copy()


def _decode(image, size: int) -> np.ndarray:
    """`prepare`'s decode, uncached."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = open_image(image)
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"the image is too large ({img.width}x{img.height} pixels; "
                                 f"at most {MAX_PIXELS // 1_000_000} million)")
            img.seek(0)  # first frame of an animation
            if img.format in ("JPEG", "MPO"):
                img.draft(None, (8 * size, 8 * size))  # decode a big photo at 1/2-1/8 scale
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            side = min(img.size)
            if side < 1:
                raise ValueError("the image has no pixels")
            img = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS,
                               centering=(0.5, 0.5)) if img.size != (size, size) else img
            return np.asarray(img, dtype=np.uint8).copy()
        except UnidentifiedImageError:
            raise ValueError(not_an_image(image)) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(f"the image is too large (over {MAX_PIXELS // 1_000_000} "
                             "million pixels)") from None
        except (OSError, SyntaxError, EOFError) as err:
            raise ValueError(f"the image cannot be decoded (truncated or corrupt: {err})") from None


# What a file that is not a picture starts with, and what to call it.
SIGNATURES = ((b"%PDF", "a PDF document"), (b"%!PS", "a PostScript file"), (b"PK\x03\x04", "a ZIP archive"),
              (b"{\\rtf", "an RTF document"), (b"\x7fELF", "a program"), (b"MZ", "a program"))


def _looks_like(head: bytes) -> str:
    """What the first bytes of a file that Pillow cannot open say it is, in a few words."""
    lowered = head.lstrip()[:256].lower()
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1", b"ftypmsf1"):
        return "it is a HEIC photo"
    if b"<svg" in lowered:
        return "it is an SVG drawing"
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "it is a web page (HTML)"
    for magic, name in SIGNATURES:
        if head.startswith(magic):
            return f"it is {name}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:  # a character cut in two at the end of the head is still text
        text = head[:err.start].decode("utf-8") if err.start >= len(head) - 3 else ""
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "it starts like text"
    return "not a known image format"


def not_an_image(image) -> str:
    """Why `image` (a path or bytes Pillow cannot open) is refused: its size and what it looks like."""
    head, size = b"", None
    try:
        if isinstance(image, (str, Path)):
            size = Path(image).stat().st_size
            with open(image, "rb") as file:
                head = file.read(512)
        elif isinstance(image, (bytes, bytearray)):
            size, head = len(image), bytes(image[:512])
    except OSError:
        pass
    what = _looks_like(head) if head else "not a known image format"
    return (f"this file is not an image ({f'{size:,} bytes; ' if size is not None else ''}{what}): "
            f"upload a {', '.join(UPLOAD_FORMATS[:-1])} or {UPLOAD_FORMATS[-1]} file")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit grayscale: scale to 8 bits
        array = np.asarray(img, dtype=np.float32)
        low = min(float(array.min()), 0.0)  # 32-bit images may hold negative values
        span = (float(array.max()) - low) or 1.0
        return Image.fromarray(((array - low) / span * 255).clip(0, 255).astype(np.uint8)).convert("RGB")
    if img.mode == "F":
        array = np.asarray(img, dtype=np.float64)
        span = (array.max() - array.min()) or 1.0
        return Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8)).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


# Sketch backgrounds a user can draw on (a red car on a grey road).
BACKGROUNDS = {"grey road": (128, 128, 128), "sky blue": (135, 190, 235), "grass green": (70, 140, 60),
               "sea blue": (30, 90, 160), "sand": (220, 200, 150), "white": (255, 255, 255)}


def sketch_background(color: str, size: int = 256) -> np.ndarray:
    """A size x size RGB canvas filled with one of `BACKGROUNDS`.

    Args:
        color: a key of `BACKGROUNDS`, such as "grey road".
        size: side of the canvas in pixels.

    Returns:
        A (size, size, 3) uint8 array.

    Raises:
        ValueError: `color` is not a key of `BACKGROUNDS`.
    """
    if color not in BACKGROUNDS:
        raise ValueError(f"unknown background {str(color)[:30]!r}; one of {', '.join(BACKGROUNDS)}")
    return np.zeros((size, size, 3), np.uint8) + np.array(BACKGROUNDS[color], np.uint8)


def sketch_image(value):
    """The composite image of a gr.Sketchpad / ImageEditor value (dict or array)."""
    if isinstance(value, dict):
        value = value.get("composite")
    if value is None:
        raise ValueError("draw something first")
    return value


def enlarge(pixels: np.ndarray, factor: int = 6) -> np.ndarray:
    """The same pixels, each shown as a factor x factor square (no smoothing), for display.

    Args:
        pixels: an (H, W, C) image array.
        factor: how many display pixels each image pixel becomes along each side.

    Returns:
        An (H * factor, W * factor, C) array of the same dtype.
    """
    return np.kron(pixels, np.ones((factor, factor, 1), dtype=pixels.dtype))
