"""The store of a browser's imported models (`compute.imports.ImportStore`, issue 35): an import
is its owner's and goes with the session that made it; the store is bounded; a failed import
leaves nothing; "import:<id>" names resolve only there. The importer here is a stand-in (the
real one is `import_task` on the engine: tests/test_import.py and the API test below it)."""

from __future__ import annotations

import json

import pytest

from explorer.compute.imports import RECORD, ImportStore
from explorer.shipped import pretrained

SUMMARY = {"depth": 20, "version": 1, "residual": True, "shortcut": "projection", "params": 274_442,
           "max_abs_difference": 1e-7, "preprocess": "tutorial", "proof_images": 256,
           "proof_data": "synthetic"}


def stand_in(path, preprocess):
    """What `import_task` returns: a summary and the run folder's files."""
    if "bad" in str(path):
        raise ValueError("bad.keras is not a CIFAR ResNet")
    files = {"model.keras": b"model", "import.json": b"{}"}
    return {**SUMMARY, "preprocess": preprocess or "tutorial"}, files


@pytest.fixture
def store(tmp_path):
    return ImportStore(tmp_path / "imports", stand_in, max_per_owner=2, max_kept=3)


def test_an_import_is_its_owners_and_named_in_their_list(store, tmp_path):
    item = store.add(tmp_path / "mine.keras", "raw", owner="alice", session="s1")
    path = store.checkpoint(item.id, owner="alice")
    assert path.read_bytes() == b"model" and path.parent.name == item.id
    assert json.loads((path.parent / RECORD).read_text())["owner"] == "alice"
    assert item.summary["preprocess"] == "raw" and item.summary["file"] == "mine.keras"
    with pytest.raises(ValueError, match="belongs to another session"):
        store.checkpoint(item.id, owner="bob")
    choices = pretrained.checkpoint_choices(None, "alice", store)
    assert ("ResNet-20 v1, your mine.keras (imported)", f"import:{item.id}") in choices
    assert not [value for _, value in pretrained.checkpoint_choices(None, "bob", store) if "import:" in value]
    assert pretrained.resolve(f"import:{item.id}", None, "alice", store) == path


def test_unknown_names_and_no_store_are_refused_in_words(store):
    with pytest.raises(ValueError, match="no imported model 'nope'"):
        store.checkpoint("nope")
    with pytest.raises(ValueError, match="unknown imported model"):
        pretrained.resolve("import:abc")  # the command line has no store: a run folder is named by path
    assert pretrained.is_own("import:abc") and pretrained.is_own("job:1")
    assert not pretrained.is_own("resnet20_v1")


def test_a_failed_import_leaves_nothing(store, tmp_path):
    with pytest.raises(ValueError, match="not a CIFAR ResNet"):
        store.add(tmp_path / "bad.keras", None, owner="alice", session="s1")
    assert not store.list("alice")
    assert not store.root.exists() or not list(store.root.iterdir())


def test_a_session_that_ends_takes_its_imports_with_it(store, tmp_path):
    first = store.add(tmp_path / "a.keras", None, owner="alice", session="s1")
    second = store.add(tmp_path / "b.keras", None, owner="alice", session="s2")  # the same browser, reloaded
    assert store.end_session("s1") == 1
    assert not (store.root / first.id).exists() and (store.root / second.id).exists()
    assert [item.id for item in store.list("alice")] == [second.id]
    with pytest.raises(ValueError, match="import the file again"):
        store.checkpoint(first.id, owner="alice")


def test_bounded_per_owner_and_in_all_oldest_first(store, tmp_path):
    store.add(tmp_path / "a.keras", None, owner="alice", session="s1")
    store.add(tmp_path / "b.keras", None, owner="alice", session="s1")
    with pytest.raises(ValueError, match="you have 2 imported models already"):
        store.add(tmp_path / "c.keras", None, owner="alice", session="s1")
    oldest = store.list("alice")[-1]
    store.add(tmp_path / "d.keras", None, owner="bob", session="s3")
    store.add(tmp_path / "e.keras", None, owner="bob", session="s3")  # a fourth: the oldest goes
    assert len(store.list("alice")) == 1 and not (store.root / oldest.id).exists()
    assert sorted(path.name for path in store.root.iterdir()) == sorted(
        item.id for owner in ("alice", "bob") for item in store.list(owner))


def test_a_restarted_app_keeps_no_import_of_ended_sessions(store, tmp_path):
    store.add(tmp_path / "a.keras", None, owner="alice", session="s1")
    again = ImportStore(store.root, stand_in)
    assert not again.list("alice") and not list(again.root.iterdir())
