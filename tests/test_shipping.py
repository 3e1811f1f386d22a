"""Files a task reads, carried to a worker of a cluster joined (`explorer.compute.shipping`):
found in the task's arguments however nested, replaced by the worker's copy, written once per
content, refused when damaged or too large."""

import dataclasses
import os
from collections import namedtuple
from pathlib import Path

import pytest

from explorer.compute import shipping


@dataclasses.dataclass(frozen=True)
class Subject:
    checkpoint: str | None
    depth: int = 20


Pair = namedtuple("Pair", "first second")


def test_the_files_of_a_task_are_found_however_nested_and_replaced_by_copies(tmp_path):
    model, image, other = tmp_path / "net.keras", tmp_path / "cat.PNG", tmp_path / "notes.txt"
    for path in (model, image, other):
        path.write_bytes(b"bytes")
    args = ([str(model), Path(image)], {"subject": Subject(str(model))}, Pair(str(other), "cifar10"),
            str(tmp_path / "gone.keras"), 7)
    assert shipping.find_files(args) == [str(model), str(image)]  # each once; no text, no missing file
    copies = {str(model): "/w/net.keras", str(image): "/w/cat.PNG"}
    replaced = shipping.replace_paths(args, copies)
    assert replaced[0] == ["/w/net.keras", Path("/w/cat.PNG")]  # a Path stays a Path
    assert replaced[1]["subject"] == Subject("/w/net.keras") and replaced[2] == Pair(str(other), "cifar10")
    assert replaced[3:] == args[3:]


def test_a_copy_is_written_once_per_content_keeps_its_name_and_refuses_damage(tmp_path):
    data = b"a checkpoint"
    digest = shipping.sha256_of(data)
    first = shipping.local_copy("/app/runs/job1/model.keras", digest, data, root=tmp_path)
    assert Path(first).name == "model.keras" and Path(first).read_bytes() == data
    stamp = os.stat(first).st_mtime_ns
    assert shipping.local_copy("model.keras", digest, data, root=tmp_path) == first
    assert os.stat(first).st_mtime_ns == stamp  # not written again
    with pytest.raises(ValueError, match="damaged"):
        shipping.local_copy("model.keras", digest, data + b"!", root=tmp_path)


def test_files_are_shipped_to_a_cluster_joined_unless_told(monkeypatch):
    monkeypatch.delenv(shipping.SHIP, raising=False)
    assert shipping.should_ship(joined=True) and not shipping.should_ship(joined=False)
    monkeypatch.setenv(shipping.SHIP, "1")
    assert shipping.should_ship(joined=False)
    monkeypatch.setenv(shipping.SHIP, "0")
    assert not shipping.should_ship(joined=True)


def test_a_file_too_large_to_send_is_refused_clearly(tmp_path, monkeypatch):
    big = tmp_path / "big.keras"
    big.write_bytes(b"x" * 2048)
    monkeypatch.setattr(shipping, "MAX_FILE_BYTES", 1024)
    with pytest.raises(ValueError, match="big.keras is .* MiB, over the"):
        shipping.FileShipper(client=None).ship([str(big)])
