"""Bring your own ResNet: a `.keras` or `.h5` CIFAR-10 ResNet uploaded, imported on the engine
(`compute.imports`: read as data, mapped onto this app's net, proven on test images) and named
"import:<id>" in every tab's checkpoint list. The Classify tab and the Insight lab hold the panel."""

from __future__ import annotations

import gradio as gr

from explorer.core.specs import net_name
from explorer.nets.import_proof import MAX_DIFFERENCE
from explorer.nets.importer import PREPROCESSING

from . import session
from .common import checked_upload, checkpoint_choices, user_errors

AUTO = "as the file says"  # the importer's default: the tutorial's, or none for a file of this app
PREPROCESS_LABELS = {
    "tutorial": "the tutorial's: x/255 minus the training images' per-pixel mean",
    "tutorial-no-mean": "x/255, no mean subtracted (the tutorial with subtract_pixel_mean=False)",
    "raw": "raw pixels, 0-255",
}
PREPROCESS_CHOICES = [("the tutorial's for a tutorial file, its own for a file of this app", AUTO),
                      *[(PREPROCESS_LABELS[name], name) for name in PREPROCESSING]]  # the importer's list


def reading(summary: dict, name: str) -> str:
    """What an import proved, in words."""
    net = net_name(summary["depth"], summary["version"], summary["residual"])
    shortcut = f", {summary['shortcut']} shortcuts" if summary["residual"] else ", no shortcut"
    own = summary["preprocess"] == "own"
    takes = ("its own normalization of raw pixels (a file of this app)" if own else
             f"{summary['preprocess']} preprocessing (stored in the model: every tab feeds it raw pixels)")
    return (f"**{net}**{shortcut}, imported from "
            f"`{summary['file']}`: {summary['params']:,} parameters, {takes}. Its predictions match the "
            f"file's on "
            f"{summary['proof_images']} test images ({summary['proof_data']}) within "
            f"{summary['max_abs_difference']:.2g} per softmax output (the bar: {MAX_DIFFERENCE:g}). "
            f"It is **{name}** in every tab's checkpoint list until this page is closed.")


@user_errors
def import_upload(file, preprocess=AUTO, request: gr.Request = None):
    """Imports an uploaded model for this browser.

    Args:
        file: the uploaded `.keras` or `.h5` file.
        preprocess: what the file's model takes: tutorial, tutorial-no-mean or raw, or `AUTO`
            (the tutorial's; a file of this app normalizes its own raw pixels and takes only this).

    Returns:
        (the checkpoint list with the import chosen, what the import proved).
    """
    if not file:
        raise ValueError("choose a .keras or .h5 file first")
    owner, made_by = session.owner(request), session.session_of(request)
    item = session.imports().add(file, None if preprocess in (AUTO, None, "") else preprocess, owner, made_by)
    name = f"import:{item.id}"
    return gr.Dropdown(choices=checkpoint_choices(request), value=name), reading(item.summary, name)


def import_panel(checkpoint: gr.Dropdown, elem_id: str, api_name: str | bool = False) -> None:
    """The upload, its preprocessing and its button, under an accordion; an import becomes the
    chosen `checkpoint`."""
    with gr.Accordion("Your own ResNet: import a .keras or .h5 file", open=False, elem_id=elem_id):
        gr.Markdown("A CIFAR-10 ResNet saved by Keras (the tutorial's `cifar10_ResNet20v1_model.*.keras`, "
                    "any depth, v1 or v2, plain or residual, or a file of this app). It is read as data: "
                    "no code in it runs. Its weights are mapped onto this app's net and the mapping is "
                    "checked on test images before it is used.")
        upload = checked_upload(gr.File(label="Model file", file_types=[".keras", ".h5"], type="filepath",
                                        elem_id=f"{elem_id}-file"))
        preprocess = gr.Radio(PREPROCESS_CHOICES, value=AUTO, label="What the file's model takes",
                              elem_id=f"{elem_id}-preprocess")
        run = gr.Button("Import", variant="primary", elem_id=f"{elem_id}-run")
        said = gr.Markdown(elem_id=f"{elem_id}-said")
    run.click(import_upload, [upload, preprocess], [checkpoint, said], api_name=api_name,
              concurrency_limit=1, concurrency_id="import")
