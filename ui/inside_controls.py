"""The Look inside tab's components, laid out and named (`InsideView`): the image and the
checkpoint on the left, the block stepped through and what is drawn of it on the right (the
tab's wiring and handlers are `ui.inside`'s)."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.core.plans import plan
from explorer.nets.models import checkpoint_spec
from explorer.shipped import pretrained

from .classify import EXAMPLES
from .common import WholeNumber, checked_upload, checkpoint_choices, checkpoint_dropdown, export_plot
from .sketch import sketch_canvas


def shipped_blocks(name) -> list[str]:
    """The blocks of a shipped checkpoint's net, at build time (no request, so no job manager)."""
    try:
        return [b.name for b in plan(checkpoint_spec(pretrained.resolve(name))).blocks] if name else []
    except ValueError:
        return []


@dataclasses.dataclass
class InsideView:
    """The tab's components: what is looked at, and what is drawn."""

    checkpoint: gr.Dropdown
    image: gr.File  # the image looked at (a test image is written to a file too)
    index: gr.Number  # the test image's index, when the image is one (a link carries it)
    use_index: gr.Button
    gallery: gr.Gallery
    filled: gr.State  # whether the gallery holds its test images
    copied: gr.State | None  # the Classify tab's checkpoint last followed (made by `inside.on_open`)
    seen: gr.Image
    block: gr.Dropdown
    previous: gr.Button
    next: gr.Button
    run: gr.Button  # the /inside endpoint
    drawn: list  # maps, twin's maps, chart over depth, reading, numbers
    read: gr.Button  # the /readout endpoint
    read_out: list  # read-out chart, top 3 per block, reading, numbers
    sketch: gr.Component | None = None  # a drawing of one's own (`ui.sketch`)
    use_sketch: gr.Button | None = None  # the drawing made the image looked at

    def link_fields(self) -> list:
        """What the address bar says of the tab: the checkpoint, the block, the test image."""
        return [self.checkpoint, self.block, self.index]


def inputs_panel() -> tuple:
    choices = checkpoint_choices()
    checkpoint = checkpoint_dropdown("Checkpoint", "inside-checkpoint", pretrained.default_pair(choices)[0],
                                     choices, info="its shipped plain (or residual) twin is shown beside it")
    image = checked_upload(gr.File(label="Image file", file_types=["image"], type="filepath",
                                   elem_id="inside-upload"))
    if EXAMPLES:
        gr.Examples(EXAMPLES, inputs=image, label="Examples")
    with gr.Accordion("or draw one", open=False, elem_id="inside-draw"):
        sketch = sketch_canvas("inside-sketch", label="Drawing")
        use_sketch = gr.Button("Look inside the drawing", size="sm", elem_id="inside-draw-run")
    test_images = gr.Gallery(label="or one click on a test image", columns=4, height=260, allow_preview=False,
                             object_fit="contain", elem_id="inside-gallery")
    with gr.Row():
        index = WholeNumber(None, precision=0, label="Test image number", elem_id="inside-index",
                            min_width=120)
        use_index = gr.Button("Use test image", size="sm", elem_id="inside-use-index")
    shown = gr.Image(label="What the net sees (32x32)", type="numpy", interactive=False, height=200,
                     elem_id="inside-seen")
    return checkpoint, image, index, use_index, test_images, shown, sketch, use_sketch


def view_panel(first) -> tuple:
    with gr.Row(elem_id="inside-steps"):
        previous = gr.Button("◀ Previous block", size="sm", elem_id="inside-previous", min_width=110)
        names = shipped_blocks(first)
        block = gr.Dropdown(names, value=names[0] if names else None, label="Block to look inside",
                            allow_custom_value=True,
                            elem_id="inside-block", min_width=160)
        after = gr.Button("Next block ▶", size="sm", elem_id="inside-next", min_width=110)
    run = gr.Button("Look inside", variant="primary", elem_id="inside-run")
    with gr.Row():
        maps = export_plot("x, F(x), x + F(x)", "inside-maps")
        twin = export_plot("The plain twin's block", "inside-twin-maps", visible=False)
    reading = gr.Markdown(elem_id="inside-reading")
    depth = export_plot("What each block adds, over the depth", "inside-depth")
    with gr.Accordion("Numbers (JSON)", open=False):
        numbers = gr.JSON(label="inside", elem_id="inside-numbers")
    read = gr.Button("Read out every block", elem_id="inside-readout-run")
    accuracy = export_plot("Read-out accuracy per block", "inside-readout")
    tops = export_plot("The read-out's top 3 per block", "inside-tops")
    read_text = gr.Markdown(elem_id="inside-readout-text")
    with gr.Accordion("Read-out numbers (JSON)", open=False):
        read_numbers = gr.JSON(label="readout", elem_id="inside-readout-numbers")
    return (block, previous, after, run, [maps, twin, depth, reading, numbers], read,
            [accuracy, tops, read_text, read_numbers])
