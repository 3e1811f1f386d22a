"""The Classify tab: draw or upload an image; a CIFAR-10 checkpoint's top 5, the 32x32 image
it saw, and Grad-CAM for any class.

One request, "classify this upload": `classify` here -> `pretrained.resolve` (name -> file)
-> `checkpoints.load` (cached) -> `classify.classify` (-> `images.prepare`, decoded once;
the 32x32 view the page shows next is that decode, kept by `images`) -> `gr.Label`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gradio as gr

from explorer.compute.engine import engine
from explorer.core.specs import CIFAR_CLASSES
from explorer.data import images
from explorer.data.cifar import resolve_source
from explorer.nets import checkpoints
from explorer.shipped import pretrained
from explorer.studies import classify as classifier

from .common import (
    checked_upload,
    checkpoint_choices,
    checkpoint_dropdown,
    checkpoint_path,
    log_step,
    refresh_checkpoints,
    user_errors,
)
from .imports import import_panel
from .sketch import drawing_file, sketch_canvas

EXAMPLES = sorted(str(path) for path in (Path(__file__).resolve().parents[1] / "examples").glob("*.png"))


@user_errors
def classify(image: gr.FileData | str | None, checkpoint: str | None = None, tta: str = "none",
             request: gr.Request = None):
    """Top-5 CIFAR-10 classes of an image file, as a gr.Label value.

    Args:
        image: an image file (PNG, JPEG, WebP, GIF, ...; at most 10 MB).
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        tta: "none" (the image alone) or "flip" (its probabilities averaged with its mirror image's).
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    model = checkpoints.load(checkpoint_path(checkpoint, request))
    return classifier.classify(model, images.image_path(image), tta=tta)[0]


@user_errors
def seen_upload(image: gr.FileData | str | None):
    """The 32x32 image the model saw, enlarged for display. A separate UI step (not part of the
    `classify` API) so scripted calls do not pay for encoding a picture they do not want."""
    return images.enlarge(images.prepare(images.image_path(image)))


@user_errors
def classify_sketch(sketch, checkpoint: str | None = None, tta: str = "none",
                    request: gr.Request = None):
    """Top-5 CIFAR-10 classes of a drawing (the sketchpad's composite image), as a gr.Label value.

    Args:
        sketch: a gr.Sketchpad value (its "composite" image is classified).
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        tta: "none" (the drawing alone) or "flip" (averaged with its mirror image).
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    model = checkpoints.load(checkpoint_path(checkpoint, request))
    return classifier.classify(model, images.sketch_image(sketch), tta=tta)[0]


@user_errors
def seen_sketch(sketch):
    """The 32x32 image the model saw of a drawing, enlarged for display (UI only)."""
    return images.enlarge(images.prepare(images.sketch_image(sketch)))


@user_errors
def classified_file(image, kind: str) -> str:
    """The file of the image just classified, which the Look inside tab follows: an upload's own
    file, a drawing written to a PNG of its own (at the size it was drawn)."""
    if kind == "upload":
        return str(images.image_path(image))
    return drawing_file(image)


@user_errors
def gradcam(image: gr.FileData | str | None, checkpoint: str | None = None, class_name: str = "predicted",
            request: gr.Request = None):
    """Grad-CAM heatmap over the input for the predicted class, or any chosen class; returns
    the heat over the enlarged 32x32 input and a caption.

    Args:
        image: an image file.
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        class_name: "predicted" or a CIFAR-10 class (airplane, automobile, ...).
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    model = checkpoints.load(checkpoint_path(checkpoint, request))
    return classifier.gradcam(model, images.image_path(image), class_name)


@user_errors
def gradcam_sketch(sketch, checkpoint: str | None = None, class_name: str = "predicted",
                   request: gr.Request = None):
    """Grad-CAM heatmap over a drawing (the sketchpad's composite image).

    Args:
        sketch: a gr.Sketchpad value.
        checkpoint: a shipped checkpoint's name (see pretrained/manifest.json) or `job:<id>` of a job of this session; none: the first shipped one.
        class_name: "predicted" or a CIFAR-10 class.
    """  # noqa: E501 - Gradio's API page reads each parameter's description from its one line
    model = checkpoints.load(checkpoint_path(checkpoint, request))
    return classifier.gradcam(model, images.sketch_image(sketch), class_name)


def _top_probability(label) -> float | None:
    """The top probability of a gr.Label value as the page sends it back (or as `classify` made it)."""
    if not label:
        return None
    if "confidences" in label:
        return max((c.get("confidence", 0) for c in label["confidences"]), default=None)
    return max(label.values(), default=None)


@user_errors
def clear_answers():
    """A new image: every answer on screen cleared (the top 5, its note, the image seen,
    Grad-CAM), and what was shown forgotten."""
    log_step("classify: a new image clears the answers")
    return [None, "", None, None, "", {}]


def confidence(label, checkpoint, request: gr.Request = None):
    """What the top probability on screen means: the net must pick a class whatever the image,
    and how sure it is here against the test images (UI only, measured on the engine)."""
    probability = _top_probability(label)
    log_step(f"classify: the note for a top probability of {probability}")
    if probability is None:
        return ""
    path = checkpoint_path(checkpoint, request)
    source = resolve_source()[0]
    reference = engine().run(classifier.confidence_reference, path, source, home=("checkpoint", str(path)))
    return classifier.confidence_note(probability, reference, synthetic=source == "synthetic")


@dataclasses.dataclass
class ImageInput:
    """One way in (the sketchpad or the upload) and its two buttons."""

    image: gr.Component  # the Sketch, or the gr.File
    run: gr.Button  # classify it
    explain: gr.Button  # Grad-CAM over it


@dataclasses.dataclass
class ClassifyControls:
    """The tab's components: the checkpoint, the two ways in, how to read, and the answers."""

    checkpoint: gr.Dropdown
    refresh: gr.Button  # the checkpoint list's
    drawing: ImageInput
    upload: ImageInput
    tta: gr.Radio
    cam_class: gr.Dropdown
    label: gr.Label  # the top 5
    note: gr.Markdown  # what its top probability means
    seen: gr.Image  # the 32x32 image the model saw
    cam_text: gr.Markdown
    cam: gr.Image

    def classify_inputs(self, way: ImageInput) -> list:
        """`classify`'s and `classify_sketch`'s inputs: the image, the checkpoint, tta."""
        return [way.image, self.checkpoint, self.tta]

    def gradcam_inputs(self, way: ImageInput) -> list:
        """`gradcam`'s and `gradcam_sketch`'s inputs: the image, the checkpoint, the class."""
        return [way.image, self.checkpoint, self.cam_class]

    def gradcam_outputs(self) -> list:
        """Grad-CAM's: the heat, its caption."""
        return [self.cam, self.cam_text]

    def answers(self) -> list:
        """Everything said about the image on screen (cleared when a new one comes)."""
        return [self.label, self.note, self.seen, *self.gradcam_outputs()]


def _draw_panel() -> ImageInput:
    sketch = sketch_canvas("cls-sketch")
    with gr.Row():
        run = gr.Button("Classify drawing", variant="primary", elem_id="cls-draw-run")
        explain = gr.Button("Grad-CAM", elem_id="cls-draw-gradcam")
    return ImageInput(sketch, run, explain)


def _upload_panel() -> ImageInput:
    upload = checked_upload(gr.File(label="Image file", file_types=["image"], type="filepath",
                                    elem_id="cls-upload"))
    with gr.Row():
        run = gr.Button("Classify upload", variant="primary", elem_id="cls-upload-run")
        explain = gr.Button("Grad-CAM", elem_id="cls-gradcam")
    if EXAMPLES:
        gr.Examples(EXAMPLES, inputs=upload, label="Examples")
    return ImageInput(upload, run, explain)


def classify_controls() -> ClassifyControls:
    with gr.Row():
        choices = checkpoint_choices()
        checkpoint = checkpoint_dropdown(
            "Checkpoint", "cls-checkpoint", pretrained.most_accurate(choices), choices,
            info="shipped checkpoints, the models you trained and those you imported",
            min_width=280)  # a line of its own on a phone: the name whole, not under the arrow
        refresh = gr.Button("Refresh list", size="sm", scale=0, min_width=120)
    import_panel(checkpoint, "cls-import", api_name="import_model")
    with gr.Row():
        with gr.Column(elem_id="cls-input"):
            with gr.Tab("Draw"):
                drawing = _draw_panel()
            with gr.Tab("Upload"):
                upload = _upload_panel()
            tta = gr.Radio([("the image alone", "none"), ("the image and its mirror, averaged", "flip")],
                           value="none", label="Read", elem_id="cls-tta",
                           info="flip test-time augmentation: the manifest's test_accuracy_tta")
            cam_class = gr.Dropdown(["predicted", *CIFAR_CLASSES], value="predicted",
                                    label="Grad-CAM class", info="explain the predicted class, or any other",
                                    elem_id="cls-cam-class")
        with gr.Column(elem_id="cls-output"):
            label = gr.Label(num_top_classes=5, label="Top 5", elem_id="cls-label")
            note = gr.Markdown(elem_id="cls-note")
            seen = gr.Image(label="What the model sees (32x32, each pixel enlarged)", type="numpy",
                            interactive=False, height=220, elem_id="cls-seen")
            cam_text = gr.Markdown(elem_id="cls-gradcam-text")
            cam = gr.Image(label="Grad-CAM", type="numpy", interactive=False, height=220,
                           elem_id="cls-gradcam-image")
            # the exact result as it is on screen (a link's inputs alone could not redraw a sketch)
            gr.DeepLinkButton("Share this result", size="sm")
    return ClassifyControls(checkpoint, refresh, drawing, upload, tta, cam_class, label, note, seen, cam_text,
                            cam)


def _wire_way(controls: ClassifyControls, way: ImageInput, kind: str, shown, classified, handlers, names):
    """One way in: a new image clears every answer; Classify answers (Grad-CAM of the image
    before is cleared), Grad-CAM explains; `shown` records what is on screen, `classified` the
    file of the image classified last (the Look inside tab follows it)."""
    run, seen, explain = handlers
    # not queued: answered at once, in the order the changes came (queued, a drawing's stroke
    # each waited its turn behind the last, one at a time, and the last could clear the answer
    # to a classification asked after it: CI, "the note for a top probability of None")
    way.image.change(clear_answers, None, [*controls.answers(), shown], api_name=False,
                     show_progress="hidden", queue=False)
    ran = way.run.click(run, controls.classify_inputs(way), controls.label, api_name=names[0],
                        concurrency_limit=4, concurrency_id="classify", scroll_to_output=True)
    ran.success(
        lambda before: (None, "", {"way": kind, "label": True}), shown, [*controls.gradcam_outputs(), shown],
        api_name=False, show_progress="hidden").success(
        seen, way.image, controls.seen, api_name=False).success(
        confidence, [controls.label, controls.checkpoint], controls.note, api_name=False)
    # beside the note, not after it: its reference may take seconds, the tab may change sooner
    ran.success(lambda image: classified_file(image, kind), way.image, classified, api_name=False,
                show_progress="hidden")
    way.explain.click(explain, controls.gradcam_inputs(way), controls.gradcam_outputs(), api_name=names[1],
                      concurrency_limit=2, concurrency_id="gradcam", scroll_to_output=True).success(
        lambda before: {**(before if (before or {}).get("way") == kind else {"way": kind}), "gradcam": True},
        shown, shown, api_name=False, show_progress="hidden")


def _answer(shown, file, sketch, checkpoint, tta, cam_class, request, label: bool, cam: bool):
    """The answers on screen computed again for new inputs; those not on screen are left."""
    shown = shown or {}
    log_step(f"classify: answers again, of {shown}: the top 5 {label}, Grad-CAM {cam} (asked by this step)")
    upload = shown.get("way") == "upload"
    image = file if upload else sketch
    results = []
    if label:
        top = (classify if upload else classify_sketch)(image, checkpoint, tta, request) if shown.get(
            "label") else None
        results += [top, confidence(top, checkpoint, request)] if top else [gr.skip(), gr.skip()]
    if cam:
        results += list((gradcam if upload else gradcam_sketch)(image, checkpoint, cam_class, request)
                        ) if shown.get("gradcam") else [gr.skip(), gr.skip()]
    return results


def follow_checkpoint(shown, file, sketch, checkpoint, tta, cam_class, request: gr.Request = None):
    """A new checkpoint: the top 5, its note and Grad-CAM on screen, answered by it."""
    return _answer(shown, file, sketch, checkpoint, tta, cam_class, request, True, True)


def follow_reading(shown, file, sketch, checkpoint, tta, cam_class, request: gr.Request = None):
    """A new reading (flip or not): the top 5 on screen read again."""
    return _answer(shown, file, sketch, checkpoint, tta, cam_class, request, True, False)


def follow_class(shown, file, sketch, checkpoint, tta, cam_class, request: gr.Request = None):
    """A new Grad-CAM class: the map on screen explains it."""
    return _answer(shown, file, sketch, checkpoint, tta, cam_class, request, False, True)


def build():
    """Lays out and wires the tab; returns its checkpoint dropdown (refreshed when the tab opens)
    and the state holding the file of the image classified last (the Look inside tab's)."""
    gr.Markdown("Draw or upload an image; a CIFAR-10 ResNet says what it sees among airplane, "
                "automobile, bird, cat, deer, dog, frog, horse, ship and truck.")
    controls = classify_controls()
    upload, drawing = controls.upload, controls.drawing
    controls.refresh.click(refresh_checkpoints, controls.checkpoint, controls.checkpoint, api_name=False)
    shown = gr.State({})  # what the answers on screen are of: {"way", "label", "gradcam"}
    classified = gr.State(None)  # the file of the image classified last
    _wire_way(controls, upload, "upload", shown, classified, (classify, seen_upload, gradcam),
              ("classify", "gradcam"))
    _wire_way(controls, drawing, "drawing", shown, classified, (classify_sketch, seen_sketch, gradcam_sketch),
              ("classify_sketch", "gradcam_sketch"))
    # every answer on screen follows its inputs: a new checkpoint answers again, a new reading
    # reads again, a new class explains that class
    everything = [shown, upload.image, drawing.image, controls.checkpoint, controls.tta, controls.cam_class]
    answers = [controls.label, controls.note, *controls.gradcam_outputs()]
    controls.checkpoint.change(follow_checkpoint, everything, answers, api_name=False,
                               concurrency_limit=2, concurrency_id="gradcam")
    controls.tta.change(follow_reading, everything, answers[:2], api_name=False,
                        concurrency_limit=2, concurrency_id="gradcam")
    controls.cam_class.change(follow_class, everything, answers[2:], api_name=False,
                              concurrency_limit=2, concurrency_id="gradcam")
    return controls.checkpoint, classified
