"""Shared fixtures: a private data cache, a tiny generated CIFAR-style archive, and the
optional real archive in ../shared (tests that need it skip cleanly when it is absent)."""

import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # before anything imports TensorFlow

from explorer.core.runtime import thread_safe_tensorflow  # imports no TensorFlow

thread_safe_tensorflow()  # the tests run probes from several threads: no oneDNN (heap corruption)
# one engine worker per app or test process: two test processes each run apps of their own
os.environ.setdefault("EXPLORER_WORKERS", "1")

import contextlib
import io
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from bench.common import app_server, untrained_checkpoints
from explorer.core.specs import CIFAR_CLASSES

ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = Path(__file__).parents[2] / "shared/data/cifar10-jpeg.tar.gz"
TINY_TRAIN_PER_CLASS = 6
TINY_TEST_PER_CLASS = 2
APP_LOGS: list[Path] = []  # the log of the shared app (`app_url`) of this test process
APP_RUNS: list[Path] = []  # the runs folder of that app (its jobs, imports, scratch files)
APP_LOG_LINES = 60  # the tail a failed test shows: CI keeps only its output, not the files


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that used an app shows the tail of its log (the engine's task times, the
    server's errors): on CI that is the only trace of what the app was doing."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and APP_LOGS and "app_url" in item.fixturenames:
        log = APP_LOGS[0]
        lines = log.read_text(errors="replace").splitlines() if log.exists() else ["(no log)"]
        report.sections.append((f"app log, last {APP_LOG_LINES} lines: {log}",
                                "\n".join(lines[-APP_LOG_LINES:])))


@pytest.fixture(autouse=True)
def float32_policy():
    """A test that trains in this process leaves Keras' global precision policy at the recipe's
    ("auto": bf16 on a CPU with bf16 instructions); the next test builds its nets in float32."""
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session", autouse=True)
def explorer_cache(tmp_path_factory):
    """Every test (and every CLI subprocess) caches decoded data in a private folder, and
    no test silently picks up the developer's $EXPLORER_DATA."""
    path = tmp_path_factory.mktemp("explorer-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_CACHE", str(path))
        mp.delenv("EXPLORER_DATA", raising=False)
        yield path


def class_image(label: int, index: int, size: int = 32) -> np.ndarray:
    """A deterministic image whose mean color depends on its class."""
    rng = np.random.default_rng(1000 * label + index)
    base = np.array([(label * 25) % 256, (255 - label * 25) % 256, (label * 70) % 256], np.float32)
    noise = rng.normal(0, 12, (size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def jpeg_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_archive(path: Path, members: dict) -> Path:
    """Writes {name inside the archive: bytes} as a .tar.gz."""
    with tarfile.open(path, "w:gz") as archive:
        for name, raw in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return path


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory) -> Path:
    """train/<class>/NNNN.jpg (6 per class) and test/<class>/NNNN.jpg (2 per class)."""
    members = {}
    for split, count in (("train", TINY_TRAIN_PER_CLASS), ("test", TINY_TEST_PER_CLASS)):
        for label, name in enumerate(CIFAR_CLASSES):
            for i in range(count):
                offset = 0 if split == "train" else 100
                members[f"{split}/{name}/{i:04d}.jpg"] = jpeg_bytes(class_image(label, offset + i))
    return write_archive(tmp_path_factory.mktemp("tiny") / "tiny-cifar.tar.gz", members)


@pytest.fixture(scope="session")
def archive_tools():
    """The helpers above, for tests that write their own archives or folders."""
    return SimpleNamespace(image=class_image, jpeg=jpeg_bytes, write=write_archive)


@pytest.fixture
def shared_archive() -> Path:
    """The real CIFAR-10 JPEG archive; the test is skipped when it is not there."""
    if not SHARED_ARCHIVE.exists():
        pytest.skip(f"real CIFAR-10 archive not present at {SHARED_ARCHIVE}")
    return SHARED_ARCHIVE


@contextlib.contextmanager
def running_app(tmp_path_factory, log_path=None, cwd=ROOT, **extra_env):
    """Starts `python app.py` on a free port with generated data, private runs and untrained
    checkpoints of its own, a ResNet-20 and its plain twin (tests need no shipped file);
    yields its URL. Its output goes to `log_path` (else a folder of its own), `cwd` is its
    working folder."""
    pretrained = untrained_checkpoints(tmp_path_factory.mktemp("pretrained"))
    env = {"EXPLORER_DATA": "synthetic", "EXPLORER_RUNS": str(tmp_path_factory.mktemp("runs")),
           "EXPLORER_PRETRAINED": str(pretrained),
           # no default job built ahead (15 s of both cores at every start): tests/test_prepared.py
           "EXPLORER_PREPARE": "0",
           "EXPLORER_LOG_TASKS": "1",  # each engine task's seconds in the app's log: what a test waited for
           **extra_env}
    log_path = log_path or tmp_path_factory.mktemp("log") / "app.log"
    with app_server(log_path=log_path, cwd=cwd, **env) as url:
        yield url


@pytest.fixture(scope="session")
def start_app(tmp_path_factory):
    """start_app(**env) is `running_app` with extra environment, as a context manager."""
    return lambda **env: running_app(tmp_path_factory, **env)


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """The real app (see `running_app`), shared by the API and browser tests."""
    APP_LOGS.append(tmp_path_factory.mktemp("log") / "app.log")
    APP_RUNS.append(tmp_path_factory.mktemp("runs"))
    with running_app(tmp_path_factory, log_path=APP_LOGS[0], EXPLORER_RUNS=str(APP_RUNS[0])) as url:
        yield url


@pytest.fixture(scope="session")
def app_runs(app_url) -> Path:
    """The runs folder of the shared app (`app_url`): its jobs, imports and scratch files."""
    return APP_RUNS[0]

