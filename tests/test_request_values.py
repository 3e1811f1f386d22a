"""Malformed API values the endpoint fuzz (tests/test_fuzz_endpoints.py) found reaching Python's
own errors, each now refused in the request's words: a number box sent text or a list, a
depth sweep sent None or a number, a sketch whose layer is not an image."""

import gradio as gr
import pytest
from gradio.components.image_editor import EditorData
from gradio.data_classes import FileData

from explorer.studies import probes
from ui import gradients
from ui.common import WholeNumber
from ui.sketch import Sketch


@pytest.mark.parametrize("value", ["abc", "20", [1, 2], {"path": "x.png"}, "1e999"])
def test_a_whole_number_box_hands_values_it_cannot_round_to_the_handler(value):
    assert WholeNumber(precision=0).preprocess(value) == value
    assert WholeNumber(precision=0).preprocess(7.0) == 7  # numbers as before
    assert WholeNumber(precision=0).get_block_name() == "number"  # drawn as gr.Number


@pytest.mark.parametrize("batch", ["abc", [1, 2], {"path": "x.png"}])
def test_the_handler_refuses_what_the_box_passed_on_in_its_own_words(batch):
    with pytest.raises(gr.Error, match="batch"):
        gradients.gradient_flow(20, 1, batch_size=batch)


@pytest.mark.parametrize("depths", [None, 20, 3.5, {"a": 1}])
def test_a_depth_sweep_of_no_text_and_no_list_is_refused(depths):
    with pytest.raises(ValueError, match="depths must be text"):
        probes.sweep_depths(1, depths)
    assert probes.sweep_depths(1, [20, "56"]) == (1, [20, 56])


def test_a_sketch_layer_that_is_not_an_image_gets_the_uploads_message(tmp_path):
    bad = tmp_path / "layer.png"
    bad.write_bytes(b"not an image at all")
    good = tmp_path / "good.png"
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(good)
    sketch = Sketch()
    assert sketch.get_block_name() == "imageeditor"
    payload = EditorData(background=FileData(path=str(good)), layers=[FileData(path=str(bad))],
                         composite=FileData(path=str(good)))
    with pytest.raises(gr.Error, match="this file is not an image"):
        sketch.preprocess(payload)
    fine = EditorData(background=FileData(path=str(good)), layers=[], composite=FileData(path=str(good)))
    assert sketch.preprocess(fine)["composite"] is not None


def test_a_manifest_entry_without_sha256_is_measured_live(tmp_path):
    """The test apps' manifests (bench/common.untrained_checkpoints) carry no sha256: a lesion
    or landscape of them is measured, not a KeyError."""
    import json

    from explorer.shipped import stored

    (tmp_path / "net.keras").write_bytes(b"weights")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"checkpoints": [{"name": "net", "file": "net.keras"}]}))
    assert stored.lookup("lesion", tmp_path / "net.keras", {"samples": 1000}, None, root=tmp_path) is None


@pytest.mark.parametrize("payload", ["../../etc/passwd", 7, [1, [2]], {"no": "path"}])
def test_text_where_an_upload_belongs_gets_a_plain_message(payload):
    """Gradio checks an upload's payload (FileData) before any handler runs: pydantic's own
    message and a traceback in the log, unless the component's model is checked."""
    import gradio as gr
    from gradio.data_classes import FileData

    from ui.common import checked_upload

    upload = checked_upload(gr.File(type="filepath"))
    assert upload.data_model.__name__ == "FileData" and issubclass(upload.data_model, FileData)
    assert upload.data_model.model_json_schema() == FileData.model_json_schema()  # the API unchanged
    with pytest.raises(gr.Error, match="expected an uploaded file here"):
        upload.data_model.model_validate(payload, context={"validate_meta": True})
    fine = upload.data_model.model_validate({"path": "/tmp/x.png", "meta": {"_type": "gradio.FileData"}})
    assert fine.path == "/tmp/x.png"


def test_a_drawing_classified_is_written_for_look_inside_at_its_size():
    """#33: the Look inside tab follows the image classified last; a drawing has no file, so
    it is written to a PNG of its own (an upload's own file is handed on as it is)."""
    import numpy as np
    from PIL import Image

    from ui.classify import classified_file

    composite = np.zeros((224, 200, 4), np.uint8)
    composite[..., 0], composite[..., 3] = 200, 255
    path = classified_file({"composite": composite, "layers": [], "background": None}, "drawing")
    with Image.open(path) as written:
        assert written.size == (200, 224) and written.getpixel((5, 5))[0] == 200
    assert classified_file(path, "upload") == path
    with pytest.raises(gr.Error, match="draw something first"):
        classified_file({"composite": None}, "drawing")


def test_new_choices_never_send_back_a_value_read_before_the_step():
    """A step's late answer must not take back a pick made on the page while it ran (CI: an
    overlay's block list reset the block just chosen for Look inside): where the value read is
    among the new choices, the update holds the choices alone."""
    from ui.common import new_choices

    kept = new_choices([("ResNet-20", "r20"), ("Plain-20", "p20")], "p20")
    assert kept.constructor_args == {"choices": [("ResNet-20", "r20"), ("Plain-20", "p20")]}
    assert new_choices(["stage1_block1", "stage1_block2"], "stage3_block9").value == "stage1_block1"
    assert new_choices(["r20"], "gone", fallback_first=False).value is None
