"""Studies of the shipped checkpoints measured once and kept: served only for the very file,
settings and data they were measured on, and the same as measuring again."""

import json
import shutil

import pytest

from explorer.shipped import pretrained, stored
from explorer.studies import lesion


@pytest.fixture
def shipped(tmp_path):
    """A pretrained folder with one shipped file (a copy of resnet20_v1) and its manifest."""
    entry = next(e for e in pretrained.manifest() if e["name"] == "resnet20_v1")
    shutil.copyfile(pretrained.PRETRAINED / entry["file"], tmp_path / entry["file"])
    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [entry]}))
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    archive.write_bytes(b"x" * 100)
    return tmp_path, tmp_path / entry["file"], archive


def test_a_stored_result_is_served_only_for_its_file_settings_and_data(shipped):
    root, path, archive = shipped
    stored.store("lesion", "resnet20_v1", {"samples": 256}, str(archive), {"baseline": 0.9}, "python -m ...",
                 root)
    found = stored.lookup("lesion", path, {"samples": 256}, str(archive), root)
    assert found["baseline"] == 0.9 and found["stored"]["command"] == "python -m ..."
    assert stored.lookup("lesion", path, {"samples": 255}, str(archive), root) is None  # other settings
    assert stored.lookup("landscape", path, {"samples": 256}, str(archive), root) is None  # another study
    assert stored.lookup("lesion", path, {"samples": 256}, "keras", root) is None  # other data
    other = root / "other.tar.gz"
    other.write_bytes(b"x" * 101)
    assert stored.lookup("lesion", path, {"samples": 256}, str(other), root) is None
    # the same bytes elsewhere (a worker's copy of the file the app sent it) are the same file
    copy = root / "elsewhere" / "copy.keras"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    assert stored.lookup("lesion", copy, {"samples": 256}, str(archive), root)["baseline"] == 0.9
    with open(copy, "ab") as handle:  # a copy with other bytes is another file
        handle.write(b"\0")
    assert stored.lookup("lesion", copy, {"samples": 256}, str(archive), root) is None
    with open(path, "ab") as handle:  # the file changed under its name: not the one measured
        handle.write(b"\0")
    assert stored.lookup("lesion", path, {"samples": 256}, str(archive), root) is None


def test_the_study_serves_the_stored_result_and_the_command_line_measures(shipped, monkeypatch):
    root, path, archive = shipped
    monkeypatch.setattr(pretrained, "PRETRAINED", root)
    result = {"baseline": 0.9, "blocks": ["stage1_block1"], "accuracy": [0.5], "downsampling": [False],
              "residual": True, "n": 256, "model": "ResNet-20 v1"}
    stored.store("lesion", "resnet20_v1", {"samples": 256}, str(archive), result,
                 "python -m explorer lesion", root)
    measured = []
    monkeypatch.setattr(lesion, "lesion", lambda *args, **kwargs: measured.append(args) or dict(result, n=1))
    (served,) = lesion.lesion_study([path], 256, ["resnet20_v1"], str(archive))
    assert served["n"] == 256 and not measured
    lesion.lesion_study([path], 256, ["resnet20_v1"], str(archive), budget=False, use_stored=False)
    assert len(measured) == 1
    assert "pretrained/studies/" in stored.provenance([served])
    assert stored.provenance([dict(result)]) == ""


def test_a_result_kept_without_its_net_gets_it_from_the_manifest(shipped):
    """Results measured before they carried their "net" (the shipped studies' files, which
    never change) are served with the net of their checkpoint's manifest entry."""
    from explorer.core.specs import make_spec, result_net

    root, path, archive = shipped
    settings, command = {"samples": 256}, "python -m ..."
    stored.store("lesion", "resnet20_v1", settings, str(archive), {"model": "Plain-1 v1"}, command, root)
    found = stored.lookup("lesion", path, settings, str(archive), root)
    assert result_net(found) == make_spec(20, 1, residual=True, shortcut="projection")
    carried = make_spec(20, 1, residual=False).to_config()  # a result that carries one keeps it
    stored.store("lesion", "resnet20_v1", settings, str(archive), {"net": carried}, command, root)
    assert stored.lookup("lesion", path, settings, str(archive), root)["net"] == carried
    assert stored.shipped_net("no_such_name", root) is None


STORED = sorted(stored.studies_dir().glob("*.json"))


def test_every_stored_study_belongs_to_a_shipped_file():
    names = {entry["name"]: entry["sha256"] for entry in pretrained.manifest()}
    for path in STORED:
        record = json.loads(path.read_text())
        assert names.get(record["checkpoint"]) == record["sha256"], path.name
        assert record["command"].startswith("python -m explorer ")
        # each names a manifest entry that says its net: what a result kept without "net" is read with
        assert "net" in record["result"] or stored.shipped_net(record["checkpoint"]), path.name


@pytest.mark.slow
def test_a_stored_lesion_study_is_what_measuring_again_gives(shared_archive):
    record = json.loads((stored.studies_dir() / "resnet20_v1.lesion.samples256.json").read_text())
    again = lesion.lesion(pretrained.pretrained_path("resnet20_v1"), str(shared_archive), 256)
    kept = record["result"]
    assert again["blocks"] == kept["blocks"]
    assert again["baseline"] == pytest.approx(kept["baseline"], abs=0.004)  # a thread count may flip an image
    assert again["accuracy"] == pytest.approx(kept["accuracy"], abs=0.004)
