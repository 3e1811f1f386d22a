"""The drawing canvas, shared by the tabs that take a drawing (Classify, Look inside): a
`gr.Sketchpad` on a chosen background, and a drawing written to a PNG of its own, so a tab that
reads image files (Look inside, which follows Classify's image too) reads a drawing as one."""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from explorer.data import images

from .common import checked_upload, no_stub, scratch_path, user_errors

SKETCH_SIZE = 224  # leaves room for the brush tools beside the canvas on a 390 px phone
BRUSH_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#000000", "#ffffff", "#8c564b", "#ff7f0e", "#7f7f7f"]


@user_errors
def fill_background(color):
    """A fresh sketchpad value on a background of the chosen color."""
    background = images.sketch_background(color, SKETCH_SIZE)
    return {"background": background, "layers": [], "composite": background}


with no_stub():

    class Sketch(gr.Sketchpad):
        """The drawing canvas: a `gr.Sketchpad` whose layers, when an API caller sends a file that
        is not an image, get the upload's own message (`images.prepare`) instead of Gradio's
        "Could not preprocess input component" (and a traceback in the log)."""

        is_template = True

        def get_block_name(self) -> str:
            return "imageeditor"  # drawn by the browser as gr.Sketchpad is (its base's name would be wrong)

        @user_errors
        def preprocess(self, payload):
            try:
                return super().preprocess(payload)
            except Exception:  # Pillow's: UnidentifiedImageError, DecompressionBombError, a truncated file
                for part in [payload.background, payload.composite, *payload.layers]:
                    if part is not None:
                        images.prepare(part.path)  # the ValueError that names what is wrong with the file
                raise  # every file decodes: not the caller's fault


def sketch_canvas(elem_id: str, label: str = "Sketch") -> Sketch:
    """A background choice and the canvas on it (white at first); returns the canvas."""
    background = gr.Dropdown(list(images.BACKGROUNDS), value="white", label="Background fill",
                             elem_id=f"{elem_id}-background")
    sketch = checked_upload(Sketch(
        value=fill_background("white"), canvas_size=(SKETCH_SIZE, SKETCH_SIZE), type="numpy",
        brush=gr.Brush(colors=BRUSH_COLORS, default_size=12, color_mode="defaults"),
        label=label, elem_id=elem_id))
    background.change(fill_background, background, sketch, api_name=False)
    return sketch


def drawing_file(sketch) -> str:
    """A drawing (a sketchpad value) written to a PNG of its own, at the size it was drawn;
    returns its path. Raises ValueError where nothing is drawn yet."""
    picture = images.sketch_image(sketch)
    path = scratch_path("drawing.png")
    (picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture))).save(path)
    return path
