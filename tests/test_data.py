"""Data sources: a generated archive, its extracted folder, synthetic data, errors, cache."""

import os
import shutil
import tarfile

import numpy as np
import pytest

from explorer.core.specs import CIFAR_CLASSES
from explorer.data import cifar


def as_pairs(x, y) -> list:
    """(label, image bytes) pairs in a fixed order, to compare data sets regardless of order."""
    return sorted(zip(y.tolist(), (img.tobytes() for img in x)))


def test_tiny_archive_loads(tiny_archive):
    ds = cifar.load_cifar10(str(tiny_archive))
    assert ds.x_train.shape == (60, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (20, 32, 32, 3) and ds.x_test.dtype == np.uint8
    assert ds.y_train.shape == (60,) and ds.y_test.shape == (20,)
    assert ds.classes == CIFAR_CLASSES
    assert np.bincount(ds.y_train, minlength=10).tolist() == [6] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [2] * 10
    assert ds.y_train.min() >= 0 and ds.y_train.max() < 10
    assert ds.source == str(tiny_archive)


def test_labels_follow_the_folders(tiny_archive, archive_tools):
    ds = cifar.load_cifar10(str(tiny_archive))
    for label in range(10):  # each class was generated around its own colour
        expected = archive_tools.image(label, 0).reshape(-1, 3).mean(axis=0)
        got = ds.x_train[ds.y_train == label].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(got, expected, atol=6)


def test_second_load_comes_from_the_cache(tiny_archive, monkeypatch):
    first = cifar.load_cifar10(str(tiny_archive))
    entries = [p for p in cifar.cache_dir().iterdir() if p.is_dir()]
    assert any((p / "x_train.npy").exists() and (p / "classes.txt").exists() for p in entries)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(cifar, "_decode", no_decoding)
    second = cifar.load_cifar10(str(tiny_archive))
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    assert second.classes == first.classes


def test_unwritable_cache_still_loads(tiny_archive, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("EXPLORER_CACHE", str(blocker))
    assert cifar.load_cifar10(str(tiny_archive)).x_train.shape == (60, 32, 32, 3)


def test_folder_source_matches_the_archive(tiny_archive, tmp_path):
    with tarfile.open(tiny_archive) as archive:
        archive.extractall(tmp_path / "cifar", filter="data")
    from_folder = cifar.load_cifar10(str(tmp_path / "cifar"))
    from_archive = cifar.load_cifar10(str(tiny_archive))
    assert from_folder.classes == CIFAR_CLASSES
    assert from_folder.x_train.shape == (60, 32, 32, 3)
    assert as_pairs(from_folder.x_train, from_folder.y_train) == as_pairs(
        from_archive.x_train, from_archive.y_train)
    assert as_pairs(from_folder.x_test, from_folder.y_test) == as_pairs(
        from_archive.x_test, from_archive.y_test)


def test_archive_with_a_top_folder_and_odd_sizes(tmp_path, archive_tools):
    members = {}
    for split in ("train", "test"):
        for label, name in enumerate(CIFAR_CLASSES[:3]):
            members[f"cifar10/{split}/{name}/0.jpg"] = archive_tools.jpeg(archive_tools.image(label, 1, 40))
    members["cifar10/README.txt"] = b"not an image"
    members["cifar10/train/cat/notes.txt"] = b"not an image either"
    ds = cifar.load_cifar10(str(archive_tools.write(tmp_path / "nested.tar.gz", members)))
    assert ds.x_train.shape == (3, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3)
    assert ds.classes == CIFAR_CLASSES
    assert sorted(ds.y_train.tolist()) == [0, 1, 2]


def test_own_class_names_are_sorted(tmp_path, archive_tools):
    members = {f"{split}/{name}/{i}.jpg": archive_tools.jpeg(archive_tools.image(i, 0))
               for split in ("train", "test") for i, name in enumerate(["zebra", "apple"])}
    ds = cifar.load_cifar10(str(archive_tools.write(tmp_path / "own.tar.gz", members)))
    assert ds.classes == ("apple", "zebra")


def test_synthetic_source():
    ds = cifar.load_cifar10("synthetic")
    assert ds.x_train.shape == (2000, 32, 32, 3) and ds.x_test.shape == (500, 32, 32, 3)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.classes == CIFAR_CLASSES and ds.source == "synthetic"
    assert set(ds.y_train.tolist()) == set(range(10))
    again = cifar.synthetic()
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_synthetic_classes_are_learnable():
    # Each class is an oriented, coloured stripe pattern with a random phase, so the class
    # means of the amplitude spectrum (phase-free) tell the classes apart.
    ds = cifar.synthetic()

    def spectrum(x):
        x = x.astype(np.float32) - x.mean(axis=(1, 2), keepdims=True)
        return np.abs(np.fft.rfft2(x, axes=(1, 2))).reshape(len(x), -1)

    train, test = spectrum(ds.x_train), spectrum(ds.x_test)
    centroids = np.stack([train[ds.y_train == c].mean(axis=0) for c in range(10)])
    gaps = [np.abs(centroids[a] - centroids[b]).mean() for a in range(10) for b in range(a + 1, 10)]
    assert min(gaps) > 0.1 * np.abs(centroids).mean()
    dist = ((test[:, None, :] - centroids[None]) ** 2).sum(axis=-1)
    assert (dist.argmin(axis=1) == ds.y_test).mean() > 0.9  # chance is 0.1


def test_missing_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope.tar.gz"
    with pytest.raises(ValueError, match="neither 'keras', 'synthetic' nor an existing archive") as err:
        cifar.load_cifar10(str(missing))
    assert str(missing) in str(err.value)


def test_not_a_tar_file_is_a_value_error(tmp_path):
    fake = tmp_path / "cifar.tar.gz"
    fake.write_text("this is not an archive")
    with pytest.raises(ValueError, match="is not a readable tar archive"):
        cifar.load_cifar10(str(fake))


def test_truncated_archive_is_a_value_error(tiny_archive, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    raw = tiny_archive.read_bytes()
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="is not a readable tar archive"):
        cifar.load_cifar10(str(cut))


def test_folder_without_images_is_a_value_error(tmp_path):
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no train/<class>/ and test/<class>/ images"):
        cifar.load_cifar10(str(tmp_path / "empty"))


def test_fallback_to_synthetic_says_why(tmp_path):
    ds = cifar.load_or_synthetic(str(tmp_path / "missing"))
    assert ds.source == "synthetic" and "Using generated data" in ds.notice


def test_explorer_data_sets_the_default_source(monkeypatch):
    monkeypatch.delenv("EXPLORER_DATA", raising=False)
    assert cifar.default_source() == "keras"
    monkeypatch.setenv("EXPLORER_DATA", "synthetic")
    assert cifar.default_source() == "synthetic"
    assert cifar.load_cifar10().source == "synthetic"


def test_explorer_cache_sets_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "c"))
    assert cifar.cache_dir() == tmp_path / "c"


def test_folder_cache_sees_new_images(tiny_archive, tmp_path, archive_tools):
    with tarfile.open(tiny_archive) as archive:
        archive.extractall(tmp_path / "cifar", filter="data")
    assert cifar.load_cifar10(str(tmp_path / "cifar")).x_train.shape[0] == 60
    extra = tmp_path / "cifar" / "train" / "cat" / "0099.jpg"
    extra.write_bytes(archive_tools.jpeg(archive_tools.image(3, 99)))
    assert cifar.load_cifar10(str(tmp_path / "cifar")).x_train.shape[0] == 61


def test_corrupt_image_is_a_value_error(tmp_path, archive_tools):
    members = {f"{split}/cat/0000.jpg": b"not a jpeg" for split in ("train", "test")}
    with pytest.raises(ValueError):
        cifar.load_cifar10(str(archive_tools.write(tmp_path / "corrupt.tar.gz", members)))


@pytest.mark.slow
def test_real_cifar10_archive(shared_archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("EXPLORER_CACHE", str(cache))
    try:
        ds = cifar.load_cifar10(str(shared_archive))
        assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)
        assert ds.classes == CIFAR_CLASSES
        assert np.bincount(ds.y_train).tolist() == [5000] * 10
        assert np.bincount(ds.y_test).tolist() == [1000] * 10
        # The fixed shuffle makes every prefix roughly class-balanced.
        assert np.bincount(ds.y_train[:1000], minlength=10).min() >= 70
        assert 100 < ds.x_train[:1000].mean() < 140
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # ~180 MB of decoded arrays
        assert not os.path.exists(cache)


def test_resolve_source(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(cifar, "_REACHABLE", {"https://www.cs.toronto.edu": (False, 1e18)})  # offline
    source, notice = cifar.resolve_source("keras")
    assert source == "synthetic" and "offline" in notice
    # Keras 3 keeps CIFAR-10 in datasets/cifar-10-batches-py-target/cifar-10-batches-py
    folder = tmp_path / "keras" / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "test_batch").write_bytes(b"")
    assert cifar.resolve_source("keras") == ("keras", "")
    assert cifar.resolve_source("synthetic") == ("synthetic", "")
    source, notice = cifar.resolve_source(str(tmp_path / "missing.tar.gz"))
    assert source == "synthetic" and "not found" in notice
    assert cifar.resolve_source(str(folder)) == (str(folder.resolve()), "")


def test_an_offline_answer_is_asked_again_later(monkeypatch):
    monkeypatch.setattr(cifar, "_REACHABLE", {"https://x.test": (False, 0.0)})  # asked long ago
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        raise OSError("no network")

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    assert cifar.host_reachable("https://x.test") is False and len(calls) == 1
    assert cifar.host_reachable("https://x.test") is False and len(calls) == 1  # remembered for a while
