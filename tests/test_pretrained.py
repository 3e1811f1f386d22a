"""The shipped checkpoints: files match the manifest, load safely, and (with the archive)
re-evaluate to the accuracy the manifest states."""

import json

import pytest

from explorer import inference
from explorer.models import load_model
from explorer.specs import make_spec

ENTRIES = inference.manifest()


def test_manifest_is_well_formed():
    for entry in ENTRIES:
        for key in ("file", "name", "depth", "version", "residual", "shortcut", "epochs",
                    "test_accuracy", "data", "sha256", "config"):
            assert key in entry, (entry["name"], key)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_files_match_their_sha256_and_rebuild_from_their_config(entry):
    path = inference.PRETRAINED / entry["file"]
    assert inference.sha256(path) == entry["sha256"]
    model = load_model(path)
    spec = make_spec(entry["depth"], entry["version"], residual=entry["residual"],
                     shortcut=entry["shortcut"])
    assert model.spec == spec
    history = json.loads((inference.PRETRAINED / "histories" / f"{entry['name']}.json").read_text())
    assert len(history["epochs"]) == entry["epochs"]


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_reevaluation_gives_the_manifest_accuracy(entry, shared_archive):
    from explorer.training import evaluate

    result = evaluate(inference.PRETRAINED / entry["file"], str(shared_archive))
    assert result["n"] == entry["n"] == 10_000
    # Identical on the machine that shipped it; another CPU's kernels may flip an image or two.
    assert result["test_accuracy"] == pytest.approx(entry["test_accuracy"], abs=2e-4)
