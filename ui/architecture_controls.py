"""The Architecture tab's controls, laid out and named: the net (`NetControls`) and what is
measured on its graph (`OverlayControls`), so the tab's wiring reads `net.depth`, not a
position in a list."""

from __future__ import annotations

import dataclasses

import gradio as gr

from explorer.core.specs import make_spec, nearest_valid_depths
from explorer.shipped import pretrained

from .block_panel import BlockPanel, build_panel
from .common import WholeNumber, checkpoint_choices, checkpoint_dropdown

EXPAND_CHOICES = [("blocks (collapsed)", "none"), ("stage 1 layers", "stage1"),
                  ("stage 2 layers", "stage2"), ("stage 3 layers", "stage3"),
                  ("stage 4 layers (ImageNet)", "stage4"), ("every layer", "all")]
OVERLAY_CHOICES = [("none: the bare graph", "none"),
                   ("gradient norm at initialization, plain twin below", "gradient"),
                   ("gradient norm, trained against at initialization", "gradient_trained"),
                   ("gradient norm over training (a job's log)", "gradient_training"),
                   ("lesion: accuracy lost per deleted block", "lesion"),
                   ("residual-branch share ‖F(x)‖ / ‖x‖", "branch_share"),
                   ("ratio residual / plain gradient norm", "ratio"),
                   ("‖F(x)‖ / ‖x‖ of a checkpoint on test images", "branch_ratio"),
                   ("linear read-out accuracy per block", "readout"),
                   ("where the gradient goes back: shortcut or branch (line widths)", "gradient_paths")]


@dataclasses.dataclass
class NetControls:
    """The controls that describe the net drawn, in the order of `build_architecture`'s inputs."""

    depth: gr.Number
    version: gr.Radio
    family: gr.Radio
    residual: gr.Checkbox
    shortcut: gr.Radio
    expand: gr.Dropdown
    show_twin: gr.Checkbox

    def spec(self) -> list:
        """What makes the net: depth, version, family, residual, shortcut."""
        return [self.depth, self.version, self.family, self.residual, self.shortcut]

    def drawing(self) -> list:
        """The net and how it is drawn (`spec()` and expand)."""
        return [*self.spec(), self.expand]

    def all(self) -> list:
        """Every control, as `build_architecture` takes them."""
        return [*self.drawing(), self.show_twin]


@dataclasses.dataclass
class OverlayControls:
    """The "Measure on the graph" components, the block panel and the numbers."""

    overlay: gr.Dropdown
    checkpoint: gr.Dropdown
    job: gr.Textbox  # a job id of this browser, for the checkpoint
    epoch: gr.Slider  # gradient over training's epoch
    epoch_value: gr.Number  # the slider's, or none (the last): the API's
    apply: gr.Button
    panel: BlockPanel | None  # laid out apart, under the graph (`block_panel`)
    numbers: gr.JSON
    deletion: gr.JSON


def overlay_controls() -> OverlayControls:
    with gr.Accordion("Measure on the graph", open=True, elem_id="arch-measure"):
        overlay = gr.Dropdown(OVERLAY_CHOICES, value="none", label="Overlay", elem_id="arch-overlay")
        # the net the page opens on: its own shipped checkpoint, or none (it follows the net drawn)
        checkpoint = checkpoint_dropdown("Checkpoint of this net (trained overlays, deletion)",
                                         "arch-checkpoint", value=pretrained.shipped_for(make_spec(56, 1)),
                                         choices=checkpoint_choices())
        job = gr.Textbox(label="or a job id of this browser", placeholder="e.g. 3f2a9c1b7d4e", max_lines=1,
                         elem_id="arch-job")
        epoch = gr.Slider(0, 1, value=0, step=1, label="Epoch (gradient over training)", visible=False,
                          elem_id="arch-epoch")
        # the slider's, or none (the last): the API's
        epoch_value = WholeNumber(None, precision=0, visible=False)
        apply = gr.Button("Apply overlay", elem_id="arch-apply")
    with gr.Accordion("Numbers (JSON)", open=False):
        numbers = gr.JSON(label="overlay", elem_id="arch-numbers")
        deletion = gr.JSON(label="deletion", elem_id="arch-deletion")
    return OverlayControls(overlay, checkpoint, job, epoch, epoch_value, apply, None, numbers, deletion)


def block_panel(controls: OverlayControls) -> BlockPanel:
    """The block panel, laid out where it is called (under the graph, so a block clicked there
    shows its numbers beside it, on a phone too), deleting on the controls' checkpoint."""
    with gr.Accordion("A block", open=True, elem_id="arch-block-panel"):
        controls.panel = build_panel(controls.checkpoint.value)
    return controls.panel


DEPTH_HELP = {"cifar": "v1: 20, 32, 44, 56, 110, 1202...; v2: 29, 56, 164, 1001...",
              "imagenet": "18, 34 (basic blocks); 50, 101, 152 (bottlenecks)"}
IMAGENET_DEPTHS = (18, 34, 50, 101, 152)


def follow_family(family, depth):
    """A new family: the version choice applies to CIFAR-10 nets only (ImageNet ResNets are
    fixed by their depth: basic blocks to 34, bottlenecks from 50), so it is hidden and reset
    for ImageNet; a depth the family has no net for becomes its nearest (ResNet-50 and
    ResNet-56 as the defaults)."""
    imagenet = family == "imagenet"
    try:
        depth = int(depth)
    except (TypeError, ValueError):
        depth = 0
    if imagenet and depth not in IMAGENET_DEPTHS:
        depth = 50
    elif not imagenet and depth in IMAGENET_DEPTHS:
        depth = 56
    return (gr.Radio(value=1, visible=not imagenet),
            gr.Number(value=depth, info=DEPTH_HELP["imagenet" if imagenet else "cifar"]))


def follow_version(version, depth):
    """A new version: a depth it has no net for (1202 is 6n+2, not 9n+2) becomes its nearest
    valid depth, said in a message, so the rebuild draws a net instead of an error."""
    try:
        version, depth = int(version), int(depth)
        make_spec(depth, version)
    except (TypeError, ValueError):
        try:
            near = min(nearest_valid_depths(int(depth), int(version)), key=lambda d: abs(d - int(depth)))
        except (TypeError, ValueError):
            return gr.skip()
        rule = "6n+2" if int(version) == 1 else "9n+2"
        gr.Info(f"depth {depth} is not {rule}: v{version} is drawn at its nearest depth, {near}")
        return near
    return gr.skip()


def net_controls() -> NetControls:
    family = gr.Radio([("CIFAR-10", "cifar"), ("ImageNet", "imagenet")], value="cifar", label="Family")
    version = gr.Radio([("v1: basic blocks, 6n+2", 1), ("v2: pre-activation bottlenecks, 9n+2", 2)],
                       value=1, label="Version")
    depth = WholeNumber(value=56, precision=0, label="Depth", info=DEPTH_HELP["cifar"], elem_id="arch-depth")
    residual = gr.Checkbox(value=True, label="Residual (untick for the plain twin)")
    shortcut = gr.Radio(["projection", "zeropad"], value="projection", label="Shortcut where shapes change")
    expand = gr.Dropdown(EXPAND_CHOICES, value="none", label="Expand", elem_id="arch-expand",
                         allow_custom_value=True)  # a block's name too (the block panel's button)
    show_twin = gr.Checkbox(value=False, label="Show the twin beside it")
    return NetControls(depth, version, family, residual, shortcut, expand, show_twin)
