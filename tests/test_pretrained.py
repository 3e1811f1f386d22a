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


def _run(label, depth, residual, train_errors):
    return {"label": label, "depth": depth, "version": int(label[-1]), "residual": residual,
            "planned_epochs": len(train_errors),
            "epochs": [{"epoch": i + 1, "train_error": t, "test_error": t + 0.05}
                       for i, t in enumerate(train_errors)]}


def test_degradation_reading_states_what_the_numbers_show():
    runs = [_run("Plain-20 v1", 20, False, [0.5, 0.3, 0.2]),
            _run("Plain-56 v1", 56, False, [0.6, 0.4]),  # still training: compared at epoch 2
            _run("ResNet-20 v1", 20, True, [0.4, 0.2, 0.1]),
            _run("ResNet-56 v1", 56, True, [0.3, 0.15, 0.05])]
    text = inference.degradation_reading(runs)
    assert "at epoch 2, **Plain-56 v1** has higher training error than **Plain-20 v1** (40.0% against 30.0%" in text
    assert "degradation problem" in text
    assert "at epoch 3, **ResNet-56 v1** has lower training error than **ResNet-20 v1** (5.0% against 10.0%" in text
    assert "Shortcuts at depth 20: at epoch 3, **ResNet-20 v1** has lower" in text
    assert "Not shipped yet" not in text


def test_degradation_reading_compares_v1_nets_only():
    runs = [_run("ResNet-20 v1", 20, True, [0.4, 0.2]), _run("ResNet-29 v2", 29, True, [0.5, 0.3])]
    assert "What these runs show" not in inference.degradation_reading(runs)
    broken = _run("ResNet-56 v1", 56, True, [0.3, 0.1])
    broken["epochs"][1]["epoch"] = 7  # a gap: epoch 2, where the two are compared, is missing
    with pytest.raises(ValueError, match="no epoch 2"):
        inference.degradation_reading([runs[0], broken])


def test_degradation_reading_names_missing_runs_and_does_not_invent_comparisons():
    text = inference.degradation_reading([_run("ResNet-20 v1", 20, True, [0.4, 0.2])])
    assert "Not shipped yet: Plain-20 v1, Plain-56 v1, ResNet-56 v1" in text
    assert "What these runs show" not in text
    assert "training error 20.0%" in text


def test_shipped_histories_match_the_manifest():
    runs = inference.shipped_histories()
    assert len(runs) == len([e for e in inference.manifest()])
    for run, entry in zip(runs, inference.manifest()):
        assert len(run["epochs"]) == entry["epochs"]
        assert run["depth"] == entry["depth"] and run["residual"] == entry["residual"]


def test_shipped_histories_skip_entries_without_history_or_of_another_version(tmp_path):
    (tmp_path / "histories").mkdir()
    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [
        {"name": "bare", "file": "bare.keras"},  # no history, no model fields: skipped
        {"name": "r29", "file": "r29.keras", "depth": 29, "version": 2, "residual": True,
         "shortcut": "projection"}]}))
    (tmp_path / "histories" / "r29.json").write_text(json.dumps({"epochs": []}))
    assert inference.shipped_histories(tmp_path, version=1) == []
    assert [r["label"] for r in inference.shipped_histories(tmp_path)] == ["ResNet-29 v2"]


def test_a_history_without_its_model_fields_is_a_clear_error(tmp_path):
    (tmp_path / "histories").mkdir()
    (tmp_path / "manifest.json").write_text(json.dumps({"checkpoints": [
        {"name": "odd", "file": "odd.keras", "depth": 20}]}))
    (tmp_path / "histories" / "odd.json").write_text(json.dumps({"epochs": []}))
    with pytest.raises(ValueError, match="odd has a history but no residual, shortcut, version"):
        inference.shipped_histories(tmp_path)
