"""The Look inside tab: an image (uploaded, an example, or one click on a test image) through
a checkpoint and its plain twin, block by block: x, F(x) and x + F(x) of the chosen block as
channel maps, ‖F(x)‖/‖x‖ and the cosine over the depth, and the linear read-out of every block
(Alain and Bengio 2016) with what it reads in the image. The work runs on the engine
(`explorer.studies.look_inside`), on the worker that keeps the checkpoint loaded.
"""

from __future__ import annotations

import re

import gradio as gr
from PIL import Image

from explorer.compute.engine import Step, engine
from explorer.core.caches import BoundedCache
from explorer.core.plans import plan
from explorer.data import images
from explorer.data.cifar import resolve_source
from explorer.nets.models import checkpoint_spec
from explorer.shipped import pretrained
from explorer.studies import look_inside as tasks
from explorer.views import inside_charts, links

from .common import (
    CONTROLS,
    checkpoint_choices,
    checkpoint_path,
    data_notice,
    new_choices,
    progress_callback,
    scratch_path,
    twin_name,
    user_errors,
)
from .inside_controls import InsideView, inputs_panel, view_panel
from .sketch import drawing_file

GALLERY = 12  # test images offered for one click (the first ones of the test split)
TEST_FILE = re.compile(r"cifar10_test_(\d+)\.png$")  # a test image's file: its index travels in a link
_WARMED = BoundedCache(16)  # checkpoint files sent a warm-up on the engine (path -> its future)


def _twin(checkpoint, request):
    """The shipped twin's file of a checkpoint, or None."""
    name = twin_name(checkpoint, request)
    return checkpoint_path(name, request) if name else None


def _numbers(result: dict | None) -> dict | None:
    """An `inside` result as the page's JSON: every block's numbers, the chosen block's channels."""
    if result is None:
        return None
    record = inside_charts.chosen_record(result)
    kept = ("channels", "x_channels", "x_is", "scale")
    maps = {key: record["maps"][key] for key in kept} if record else None
    return {"model": result["model"], "top": result["top"], "block": record["block"] if record else None,
            "maps": maps, "blocks": [{key: value for key, value in b.items() if key != "maps"}
                                     for b in result["blocks"]]}


@user_errors
def look_inside(checkpoint: str | None, image: gr.FileData | str | None, block: str | None = None,
                request: gr.Request = None):
    """An image inside a checkpoint, every block's ‖x‖, ‖F(x)‖, ‖x + F(x)‖, ratio and cosine, and one block's channel maps beside its plain twin's; returns the maps, the twin's maps, the chart over the depth, a reading and the numbers (JSON).

    Args:
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        image: an image file (PNG, JPEG, WebP, ...; at most 10 MB).
        block: the block whose maps are drawn, such as stage2_block3; none: the first.
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    path = checkpoint_path(checkpoint, request)
    pixels = images.prepare(images.image_path(image))  # a bad image refused before any work
    twin = _twin(checkpoint, request)
    source, notice = resolve_source()
    found = engine().run(tasks.inside_of, path, pixels, block or None, twin, source,
                         home=("checkpoint", str(path)))
    # an API caller's next image takes the traced pass (sent once per file, again where this
    # answer's worker ran the passes eager)
    warm(checkpoint, request, again=not found["traced"])
    net, twin_result = found["net"], found["twin"]
    chosen = inside_charts.chosen_record(net)
    twin_maps = inside_charts.maps_figure(twin_result) if twin_result else None
    return (inside_charts.maps_figure(net), gr.update(value=twin_maps, visible=twin_maps is not None),
            inside_charts.depth_figure(net, chosen["block"] if chosen else None),
            data_notice(notice, tasks.inside_reading(net, twin_result)),
            {**_numbers(net), "twin": _numbers(twin_result)})


@user_errors
def readout(checkpoint: str | None, image: gr.FileData | str | None, block: str | None = None,
            request: gr.Request = None, progress=gr.Progress()):
    """A linear read-out of every block (Alain and Bengio 2016) of a checkpoint and its plain twin, stored for the shipped ones, else fitted now; returns the accuracy chart, what each block's read-out reads in the image, a reading and the numbers (JSON).

    Args:
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        image: an image file (PNG, JPEG, WebP, ...; at most 10 MB).
        block: a block to mark on the chart (optional).
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    path = checkpoint_path(checkpoint, request)
    pixels = images.prepare(images.image_path(image))
    twin = _twin(checkpoint, request)
    source, notice = resolve_source()
    report = progress_callback(progress)
    results = [engine().run(tasks.readout_of, path, pixels, source, progress=report, block=block,
                            home=("checkpoint", str(path)))]
    if twin is not None:
        try:
            results.append(engine().run(tasks.readout_of, twin, pixels, source, progress=report,
                                        home=("checkpoint", str(twin))))
        except ValueError as err:  # over the budget here: the checkpoint's own curve still stands
            notice = " ".join(filter(None, [notice, f"The twin's read-out was not fitted: {err}"]))
    reading = data_notice(notice, tasks.readout_page_reading(results))
    return (inside_charts.readout_figure(results, results[0]["marked"]), inside_charts.tops_figure(results),
            reading, results)


def _block_names(checkpoint, request) -> list[str]:
    """The blocks of a checkpoint's net, from its file's config (no net is built); none when
    the checkpoint cannot be read (the draw says why)."""
    try:
        return [b.name for b in plan(checkpoint_spec(checkpoint_path(checkpoint, request))).blocks]
    except ValueError:
        return []


def warm(checkpoint, request: gr.Request = None, again: bool = False) -> None:
    """Sends a warm-up (`tasks.warm`: load and trace, then the twin's) to the engine once per
    file, behind every visitor's request (`Engine.warm_up`, which learns which worker keeps
    the checkpoint).

    `again`: an answer came from a worker that had not traced the nets (a request placed on
    another worker than the warm-up's while that one was busy, which then became the
    checkpoint's home): sent once more, unless one is still on its way.
    """
    try:
        path = checkpoint_path(checkpoint, request)
        twin = _twin(checkpoint, request)
    except ValueError:
        return
    sent = _WARMED.get(str(path))
    if sent is not None and not (again and sent.done()):
        return
    try:
        # a step a checkpoint (its load and its trace): a request waits for one at most
        future = engine().warm_up([Step(tasks.warm, (checkpoint_file,)) for checkpoint_file in (path, twin)
                                   if checkpoint_file is not None], home=("checkpoint", str(path)))
    except Exception:  # noqa: BLE001 - an engine closing or gone: the request says so, the warm-up need not
        return
    _WARMED.put(str(path), future)

    def forget_if_lost(done):
        if done.exception() is not None:  # a warm-up lost costs the first request its speed only
            _WARMED.pop(str(path))

    future.add_done_callback(forget_if_lost)


def follow_checkpoint(checkpoint, block, request: gr.Request = None):
    """A new checkpoint: its blocks in the selector (the chosen one kept where the net has it),
    and its warm-up sent."""
    names = _block_names(checkpoint, request)
    warm(checkpoint, request)
    if not names:
        return gr.skip()
    return new_choices(names, block)


def step_block(checkpoint, block, step: int, request: gr.Request = None):
    """The block before or after the chosen one (`step` -1 or 1), stopping at the ends."""
    names = _block_names(checkpoint, request)
    if not names:
        return gr.skip()
    at = names.index(block) if block in names else 0
    return gr.Dropdown(choices=names, value=names[min(max(at + step, 0), len(names) - 1)])


def previous_block(checkpoint, block, request: gr.Request = None):
    """The block before the chosen one."""
    return step_block(checkpoint, block, -1, request)


def next_block(checkpoint, block, request: gr.Request = None):
    """The block after the chosen one."""
    return step_block(checkpoint, block, 1, request)


def _test_file(index) -> tuple[str, int]:
    """A test image by its index, written as a PNG (lossless: the net sees its very pixels);
    (the file, the index)."""
    found = engine().run(tasks.test_images, resolve_source()[0], [index])[0]
    path = scratch_path(f"cifar10_test_{found['index']}.png")
    Image.fromarray(found["pixels"]).save(path)
    return path, found["index"]


@user_errors
def test_image(index):
    """A test image by its index, for the image input; returns the file and the index."""
    return _test_file(index)


def gallery(filled, request: gr.Request = None):
    """The first test images for one click (fetched once per page), each captioned with its class."""
    if filled:
        return gr.skip(), filled
    try:
        found = engine().run(tasks.test_images, resolve_source()[0], list(range(GALLERY)))
    except ValueError:
        return gr.skip(), filled
    return [(images.enlarge(f["pixels"], 3), f"#{f['index']} {f['label']}") for f in found], True


def pick_from_gallery(evt: gr.SelectData):
    """A click on the gallery: that test image."""
    return test_image(evt.index)


def seen(image):
    """What the net sees of the image (enlarged) and the test image's index, if it is one."""
    if image is None:
        return None, None
    match = TEST_FILE.search(str(images.image_path(image)))
    try:
        shown = images.enlarge(images.prepare(images.image_path(image)))
    except ValueError:
        shown = None  # the draw says what is wrong with the file
    return shown, int(match.group(1)) if match else None


@user_errors
def drawing_image(sketch):
    """The drawing made the image looked at (a PNG of its own, so its change draws every view
    as an upload's does), no test image number."""
    return drawing_file(sketch), None


def mark_block(results, block):
    """The read-out chart on screen (its numbers, `readout`'s last) with another block marked."""
    if not results:
        return gr.skip()
    return inside_charts.readout_figure(results, block or None)


def _when_image(fn):
    """A draw that waits for an image: with none yet, nothing changes (the buttons, the API,
    still ask for one)."""
    def draw(checkpoint, image, block, request: gr.Request = None, progress=gr.Progress()):
        if image is None or not block:
            return [gr.skip()] * (5 if fn is look_inside else 4)
        if fn is look_inside:
            return fn(checkpoint, image, block, request)
        return fn(checkpoint, image, block, request, progress)

    return draw


def _wire(view: InsideView) -> None:
    looked = [view.checkpoint, view.image, view.block]
    inside_queue = dict(concurrency_limit=4, concurrency_id="inside", trigger_mode="always_last")
    read_queue = dict(concurrency_limit=1, concurrency_id="readout", trigger_mode="always_last")
    view.run.click(look_inside, looked, view.drawn, api_name="inside", **inside_queue)
    view.read.click(readout, looked, view.read_out, api_name="readout", **read_queue)
    draw, read = _when_image(look_inside), _when_image(readout)
    # a new image or checkpoint: every view drawn again; a new block: its maps and marks
    changed = view.image.change(seen, view.image, [view.seen, view.index], api_name=False,
                                show_progress="hidden")
    chose = view.checkpoint.change(follow_checkpoint, [view.checkpoint, view.block], view.block,
                                   api_name=False, show_progress="hidden")
    for event in (changed, chose):
        # the block may have been stepped while the read-out was fitted: its chart marks the one chosen now
        event.then(draw, looked, view.drawn, api_name=False, **inside_queue).then(
            read, looked, view.read_out, api_name=False, **read_queue).then(
            mark_block, [view.read_out[-1], view.block], view.read_out[0], api_name=False,
            show_progress="hidden")
    stepped = [view.previous.click(previous_block, [view.checkpoint, view.block], view.block, api_name=False),
               view.next.click(next_block, [view.checkpoint, view.block], view.block, api_name=False)]
    for event in [*stepped, view.block.select(lambda: None, None, None, api_name=False)]:
        # the read-out does not depend on the block: its chart only marks it again
        event.then(draw, looked, view.drawn, api_name=False, **inside_queue).then(
            mark_block, [view.read_out[-1], view.block], view.read_out[0], api_name=False,
            show_progress="hidden")
    view.use_index.click(test_image, view.index, [view.image, view.index], api_name=False)
    view.use_sketch.click(drawing_image, view.sketch, [view.image, view.index], api_name=False)
    view.gallery.select(pick_from_gallery, None, [view.image, view.index], api_name=False)


def build() -> InsideView:
    """Lays out and wires the tab; returns its components (the page fills the gallery and
    follows the Classify tab's checkpoint when the tab opens, a link sets them)."""
    gr.Markdown("What every block does to an image: its input x, its residual branch F(x) and their sum, "
                "beside the plain twin's same block, and the class becoming readable block by block. "
                "Pick a test image (one click), an example, upload your own or draw one.")
    with gr.Row():
        with gr.Column(scale=1, min_width=280, elem_id="inside-input", elem_classes=[CONTROLS]):
            checkpoint, image, index, use_index, test_images, shown, sketch, use_sketch = inputs_panel()
        with gr.Column(scale=3, elem_id="inside-view"):
            block, previous, after, run, drawn, read, read_out = view_panel(checkpoint.value)
    view = InsideView(checkpoint, image, index, use_index, test_images, gr.State(False), None, shown,
                      block, previous, after, run, drawn, read, read_out, sketch, use_sketch)
    _wire(view)
    return view


def open_tab(classify_checkpoint, current, copied, filled, classified, copied_image,
             request: gr.Request = None):
    """The tab opened: the checkpoint list with this browser's new models, the Classify tab's
    checkpoint and image followed when they changed there since, the warm-up sent, the gallery
    filled."""
    choices = checkpoint_choices(request)
    values = [value for _, value in choices]
    value = current if current in values else (values[0] if values else None)
    if classify_checkpoint and classify_checkpoint != copied and classify_checkpoint in values:
        value = classify_checkpoint
    warm(value, request)
    image = index = gr.skip()
    if classified and classified != copied_image:  # an image classified there since: looked inside here
        image, index = classified, None
    # the list alone where the choice stays: the Architecture's "Look inside this block" opens
    # this tab and sets its checkpoint in one step, which `current` may have been read before
    listed = new_choices(choices, current) if value == current else gr.Dropdown(choices=choices, value=value)
    return listed, classify_checkpoint, *gallery(filled, request), image, index, classified


def on_open(page, classify_checkpoint, classified, view: InsideView) -> None:
    """Wires the tab's opening (`page`, its gr.Tab): a checkpoint chosen and an image classified
    on the Classify tab are followed, the checkpoint it opens with is not (this tab opens on
    the shipped pair)."""
    view.copied = gr.State(classify_checkpoint.value)
    copied_image = gr.State(None)
    followed = [view.checkpoint, view.copied, view.gallery, view.filled, view.image, view.index, copied_image]
    asked = [classify_checkpoint, view.checkpoint, view.copied, view.filled, classified, copied_image]
    page.select(user_errors(open_tab), asked, followed, api_name=False, show_progress="hidden")


def _shipped_names() -> list[str]:
    try:
        return [entry["name"] for entry in pretrained.manifest()]
    except ValueError:  # a damaged manifest: the link's checkpoint is ignored (ui.links says why)
        return []


def link_view(request: gr.Request):
    """Page load: a link to this tab (`?tab=inside&checkpoint=...&block=...&image=<test index>`,
    read by `explorer.views.links`) sets the checkpoint, the block and the test image, which
    draws the view; what it asked for that could not be used `ui.links` says at the top."""
    params = dict(getattr(request, "query_params", None) or {})
    keep = [gr.skip()] * 4
    if params.get("tab") != "inside":
        return keep
    view = links.parse(params, _shipped_names())
    checkpoint = view.checkpoint or gr.skip()
    names = _block_names(view.checkpoint, request) if view.checkpoint else []
    block = gr.skip() if not view.block else (
        gr.Dropdown(choices=names, value=view.block if view.block in names else names[0]) if names
        else gr.Dropdown(value=view.block))
    if view.image is None:
        return [checkpoint, block, gr.skip(), gr.skip()]
    try:
        return [checkpoint, block, *_test_file(view.image)]
    except ValueError:  # an index past a smaller data set's test split: the view waits for an image
        return [checkpoint, block, gr.skip(), gr.skip()]


def look_at_block(arch_checkpoint, block, current, image, request: gr.Request = None):
    """The Architecture tab's "Look inside this block": this tab opened on that block, of the
    Architecture's checkpoint where one is chosen (else this tab's own, where its net has the
    block), on the first test image where no image is chosen yet."""
    checkpoint = arch_checkpoint or current
    names = _block_names(checkpoint, request)
    if block not in names:
        gr.Warning(f"{checkpoint or 'No checkpoint'} has no block {block}: Look inside needs a trained "
                   "checkpoint of the net on the graph (choose one under \"Measure on the graph\")")
        return [gr.skip()] * 5
    found = [gr.skip(), gr.skip()] if image is not None else list(_test_file(0))
    return [gr.Tabs(selected="inside"), checkpoint, gr.Dropdown(choices=names, value=block), *found]


def wire_from_architecture(look: tuple, tabs: gr.Tabs, view: InsideView) -> None:
    """Wires the Architecture's "Look inside this block" (`look`: the button, the checkpoint and
    the block there) to open this tab and draw that block."""
    button, checkpoint, block = look
    looked = [view.checkpoint, view.image, view.block]
    # drawn here even where a new checkpoint or image draws it by its change event too: a tab
    # not shown yet mounts its components late, and their change events did not always fire
    button.click(user_errors(look_at_block), [checkpoint, block, view.checkpoint, view.image],
                 [tabs, view.checkpoint, view.block, view.image, view.index], api_name=False).then(
        _when_image(look_inside), looked, view.drawn, api_name=False, concurrency_limit=4,
        concurrency_id="inside", trigger_mode="always_last")


def wire_link(demo: gr.Blocks, view: InsideView) -> None:
    """Opens a link's view of this tab on page load."""
    demo.load(link_view, None, [view.checkpoint, view.block, view.image, view.index], api_name=False)
