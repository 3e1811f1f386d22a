"""Every named endpoint fuzzed through gradio_client against the running app (issue #20).

The endpoints are read from the client's API info, so a new endpoint is fuzzed without a line
here. Each call draws its arguments from the right types (small values: a valid call must stay
cheap) and the wrong ones (huge and negative numbers, NaN and infinity, empty and 100 kB
strings, unicode, nested lists, None, path-like strings, files of random bytes under image
names). Every call must either succeed or get the app's own clear error; the app's log must
show no traceback other than Gradio's own `gr.Error`; the app must answer a health request
afterwards; and no file may appear outside its runs, cache and scratch folders. A text or list
sent where a file belongs fails Gradio's payload check before any handler runs: its words
must be ours too (see `GRADIO_SCHEMA`, `ui.common.checked_upload`).

NaN and infinity travel as text ("nan", "inf", "1e999"): JSON has no such numbers, the client
refuses to encode them, and a browser sends `null`; the app reads text numbers with float().

`bench/fuzz.py` runs the same strategies with more examples; this module is its CI profile:
a few hundred calls in all, derandomized so CI sees the same calls every run.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shutil
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
CI_EXAMPLES = 8  # per endpoint; 20 endpoints -> 160 calls (see bench/fuzz.py for more)
MAX_MESSAGE = 500  # a clear message is a sentence or two, not a dump
# Gradio's own check of a Dropdown or Radio value: clear, however long the value it quotes
CHOICES = re.compile(r"Value: .* is not in the list of choices: ", re.DOTALL)
# Python's own words: a message with these leaked from inside instead of naming the bad value
UNCLEAR = re.compile(r"Traceback|File \"|object has no attribute|NoneType|invalid literal for|"
                     r"could not convert|unsupported operand|not subscriptable|index out of range|"
                     r"unhashable|takes \d+ positional|unexpected keyword|KeyError|TypeError|"
                     r"Could not preprocess|^\s*$|^Error$|^None$")
# Gradio's check of a file's payload, before any handler: a string or list sent where a file
# belongs would get pydantic's words ("1 validation error for FileData ... The 'meta' field
# must be ...") and a traceback in the log; ui.common.checked_upload words it plainly instead.
GRADIO_SCHEMA = re.compile(r"\d+ validation errors? for (FileData|ImageData|EditorData)\b")
# What Gradio prints as it raises its own errors: its gr.Error.
GRADIO_OWN = re.compile(r"gradio\.exceptions\.Error: ")

# ----------------------------------------------------------------------------- strategies

PATHS = ["../../etc/passwd", "job:../x", "job:", "job:../../etc/passwd", "/etc/passwd", "..", ".",
         "~/.ssh/id_rsa", "C:\\Windows\\win.ini", "file:///etc/passwd", "runs/app/../../x",
         "%2e%2e%2fetc%2fpasswd", "\x00", "a\x00b"]
NON_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999"]
HUGE = [2**31, 2**63, 2**64 + 1, 10**100, -(2**63), -(10**30), -1, 0]
IMAGE_NAMES = ["image.png", "photo.jpg", "a.jpeg", "b.webp", "c.gif", "d.bmp", "été 写真.png", "x.tiff"]
LAST_JOB = "<last job of this session>"  # replaced by the last job id train_start returned

nested = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10)

WRONG = st.one_of(
    st.sampled_from([None, True, False, "", " ", "x" * 100_000, "é" * 50_000, *PATHS, *NON_FINITE, *HUGE]),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),  # any unicode, surrogates excepted (JSON cannot carry them)
    nested,
)

# A valid call must stay cheap: small nets, few images, few steps; most draws stay invalid.
RIGHT_BY_NAME = {
    "depth": st.sampled_from([8, 14, 20, 11, 26]) | st.integers(-5, 40),
    "version": st.sampled_from([1, 2]) | st.integers(-2, 4),
    "batch_size": st.integers(-2, 8),
    "samples": st.integers(-2, 4),
    "steps": st.integers(-1, 3),  # 3 is the least valid (a 3x3 plane), and costs most here
    "points": st.integers(-2, 12),
    "subsets": st.integers(-1, 2),
    "epochs": st.integers(-1, 2),
    "subset": st.integers(-1, 300),
    "epoch": st.none() | st.integers(-2, 3),
    "seed": st.integers(-3, 2**33),
    "depths": st.sampled_from(["8", "8, 14", "20", "11", "8,,14", "8 14", "-8", "0", "abc", "2000"]),
    "job_id": st.sampled_from([LAST_JOB, "does-not-exist", "0123456789ab", "job:x"]),
    "job_text": st.sampled_from([LAST_JOB, "", "a, b", "0123456789ab"]),
}


@functools.lru_cache(maxsize=1)
def upload_folder() -> Path:
    """Where the fuzz writes the files it uploads (removed by whoever runs the fuzz)."""
    return Path(tempfile.mkdtemp(prefix="resnet-explorer-fuzz-"))


def _raw_files(draw_bytes):
    """A file of random bytes (or a real small PNG) under an image's name, uploaded."""
    from gradio_client import handle_file

    def write(args):
        name, raw, real = args
        folder = Path(tempfile.mkdtemp(dir=upload_folder()))
        path = folder / name
        if real:
            import numpy as np
            from PIL import Image

            Image.fromarray(np.random.default_rng(len(raw)).integers(0, 255, (40, 30, 3), np.uint8)).save(
                path, format="PNG")
        else:
            path.write_bytes(raw)
        return handle_file(str(path))

    return st.tuples(st.sampled_from(IMAGE_NAMES), draw_bytes, st.booleans()).map(write)


FILES = _raw_files(st.binary(max_size=3000) | st.sampled_from([b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
                                                                b"GIF89a", b"RIFF\0\0\0\0WEBP"]))


def right_values(param: dict) -> st.SearchStrategy:
    """Values of the right type for one parameter of the API info (small where cost grows)."""
    name, kind = param["parameter_name"], param["python_type"]["type"]
    enum = param["type"].get("enum") if isinstance(param["type"], dict) else None
    if name in RIGHT_BY_NAME:
        return RIGHT_BY_NAME[name]
    if enum:
        return st.sampled_from(enum)
    if kind == "bool":
        return st.booleans()
    if kind == "int":
        return st.integers(-3, 20)
    if kind == "float":
        return st.floats(-3, 20)
    if kind == "filepath":
        return FILES
    if kind.startswith("dict("):  # the sketch: {background, layers, composite}
        return st.fixed_dictionaries({"background": st.none() | FILES, "layers": st.lists(FILES, max_size=2),
                                      "composite": st.none() | FILES})
    return st.text(max_size=20)


@st.composite
def arguments(draw, params: list[dict]) -> dict:
    """Keyword arguments for one call: all right, one wrong, or anything, optional ones at
    times left out (the app's defaults then)."""
    mode = draw(st.sampled_from(["right", "one wrong", "one wrong", "any"]))
    wrong = draw(st.integers(0, max(len(params) - 1, 0))) if mode == "one wrong" else -1
    kwargs = {}
    for i, param in enumerate(params):
        name = param["parameter_name"]
        # left out, the app's default (cheap ones only: the defaults of sizes are costly)
        if param.get("parameter_has_default") and name not in RIGHT_BY_NAME and i != wrong \
                and draw(st.integers(0, 3)) == 0:
            continue
        if i == wrong:
            kwargs[name] = draw(WRONG | FILES)
        elif mode == "any":
            kwargs[name] = draw(right_values(param) | WRONG)
        else:
            kwargs[name] = draw(right_values(param))
    return kwargs


# ----------------------------------------------------------------------------- the app under fuzz


def _last_exception(traceback: str) -> str:
    """The line naming the exception a (chained) traceback ended in."""
    lines = re.findall(r"^[A-Za-z_][\w.]*(?:Error|Exception|Group|Exit|Interrupt)\b.*$", traceback,
                       re.MULTILINE)
    return lines[-1] if lines else ""


class Fuzzer:
    """One client session against the app; judges every call and counts the outcomes."""

    def __init__(self, url: str, log_path: Path | None):
        from gradio_client import Client

        self.url, self.log_path = url, log_path
        self.client = Client(url, verbose=False, download_files=False)
        self.endpoints = self.client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        self.counts: Counter = Counter()
        self.seconds: Counter = Counter()  # per endpoint
        self.last_job = "none-yet"
        self.log_offset = self._log_size()

    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0

    def new_tracebacks(self) -> list[str]:
        """Tracebacks the app printed since the last look whose last exception is not Gradio's
        own gr.Error (a Dropdown's "not in the list of choices" is printed as it is raised)."""
        if not self.log_path:
            return []
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            raw = log.read()
        self.log_offset += len(raw)
        # a chained traceback ("The above exception was the direct cause ...") is one report
        text = re.sub(r"\n\s*(The above exception|During handling of the above)[^\n]*\n\s*"
                      r"Traceback \(most recent call last\):", "\n", raw.decode(errors="replace"))
        blocks = text.split("Traceback (most recent call last):")[1:]
        return [block[-2000:] for block in blocks
                if not GRADIO_OWN.match(_last_exception(block))]

    def call(self, endpoint: str, kwargs: dict) -> str:
        """Calls `endpoint`; returns "ok" or "clear error"; raises AssertionError otherwise.
        A job the call started is stopped at once."""
        from gradio_client.exceptions import AppError

        kwargs = {k: self.last_job if v == LAST_JOB else v for k, v in kwargs.items()}
        try:
            result = self.client.predict(**kwargs, api_name=endpoint)
            outcome = "ok"
        except AppError as err:
            message = str(err)
            outcome = "clear error"
            too_long = len(message) > MAX_MESSAGE and not CHOICES.match(message)
            if too_long or UNCLEAR.search(message) or GRADIO_SCHEMA.match(message):
                self.counts["unclear error"] += 1
                raise AssertionError(f"{endpoint}: unclear error {message[:MAX_MESSAGE]!r}") from None
        if outcome == "ok" and endpoint == "/train_start":
            self.last_job = result
            self.client.predict(job_id=result, api_name="/train_stop")  # a fuzz call trains nothing
        tracebacks = self.new_tracebacks()
        if tracebacks:
            self.counts["traceback"] += 1
            raise AssertionError(f"{endpoint}: the app printed a traceback:\n{tracebacks[0]}")
        self.counts[outcome] += 1
        return outcome

    def fuzz(self, endpoint: str, examples: int, derandomize: bool) -> str | None:
        """Fuzzes one endpoint `examples` times; returns the first failure, or None."""
        params = self.endpoints[endpoint]["parameters"]

        @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                  phases=[Phase.explicit, Phase.generate], print_blob=False,
                  suppress_health_check=list(HealthCheck))
        @given(arguments(params))
        def one_call(kwargs):
            self.call(endpoint, kwargs)

        try:
            one_call()
        except Exception as err:  # noqa: BLE001 (an AssertionError, or Hypothesis's report of one)
            causes = [str(e) for e in getattr(err, "exceptions", ())]
            return "\n".join([str(err), *causes])[:4000]
        return None

    def healthy(self) -> bool:
        """The page loads and a cheap request still gets its answer."""
        with urllib.request.urlopen(self.url, timeout=30) as page:
            if page.status != 200:
                return False
        return bool(self.client.predict(depth=20, version=1, api_name="/build_architecture"))


def snapshot(*folders: Path) -> set[Path]:
    """Every file under `folders`, caches of Python and pytest left out, and the folders the
    checkout's own tools write (`runs/`, `pretrained/`: the app under fuzz has its own)."""
    skip = {"__pycache__", ".pytest_cache", ".git", ".venv", ".hypothesis", ".ruff_cache", "node_modules"}
    files = set()
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames
                           if d not in skip and Path(dirpath, d) not in (ROOT / "runs", ROOT / "pretrained")]
            files.update(Path(dirpath) / name for name in filenames)
    return files


def fuzz_app_env(base: Path) -> dict:
    """The environment of an app under fuzz: its own temporary folder (so new files there are
    its own), runs and data cache, one epoch at most and one job at a time."""
    for name in ("tmp", "runs", "cache", "cwd"):
        (base / name).mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(base / "tmp"), "GRADIO_TEMP_DIR": str(base / "tmp" / "gradio"),
            "EXPLORER_RUNS": str(base / "runs"), "EXPLORER_CACHE": str(base / "cache"),
            "EXPLORER_MAX_EPOCHS": "1", "EXPLORER_MAX_JOBS": "1", "PYTHONUNBUFFERED": "1"}


# Files the engineers of a shared checkout write meanwhile: code, docs (a fresh CI clone has none)
SOURCES = {".py", ".pyi", ".md", ".css", ".js", ".sh", ".toml", ".txt", ".ipynb", ".png"}


def strays(before: set[Path], after: set[Path], base: Path) -> list[str]:
    """Files new since `before` outside the app's runs, cache, log, Gradio's uploads and its
    download scratch folders (and the checkout's sources, see `SOURCES`)."""
    allowed = [base / name for name in ("runs", "cache", "pretrained", "app.log")] + [base / "tmp" / "gradio"]
    # matched by name, not globbed: TensorFlow deletes its scratch when the app exits, before this runs
    scratch = ("resnet-explorer-downloads-*",  # ui/common.scratch_path
               "resnet-explorer-dask-*",  # the engine's workers' own folder
               "__autograph_generated_file*.py")  # TensorFlow's own scratch

    def in_scratch(path: Path) -> bool:
        if not path.is_relative_to(base / "tmp"):
            return False
        top = path.relative_to(base / "tmp").parts[0]
        return any(fnmatch.fnmatch(top, pattern) for pattern in scratch)

    return sorted(str(path) for path in after - before
                  if not any(path.is_relative_to(folder) for folder in allowed) and not in_scratch(path)
                  and not (path.is_relative_to(ROOT) and path.suffix in SOURCES))


def fuzz_all(fuzzer: Fuzzer, examples: int, derandomize: bool) -> dict[str, str]:
    """Fuzzes every named endpoint; returns {endpoint: first failure}."""
    failures = {}
    for endpoint in fuzzer.endpoints:
        start = time.perf_counter()
        failure = fuzzer.fuzz(endpoint, examples, derandomize)
        fuzzer.seconds[endpoint] = round(time.perf_counter() - start, 1)
        if failure:
            failures[endpoint] = failure
    return failures


# ----------------------------------------------------------------------------- the CI profile

pytestmark = pytest.mark.slow


def test_every_endpoint_fuzzed(start_app, tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    env = fuzz_app_env(base)
    log_path = base / "app.log"
    with start_app(log_path=log_path, cwd=base / "cwd", **env) as url:
        fuzzer = Fuzzer(url, log_path)
        assert len(fuzzer.endpoints) >= 15  # the API info was read
        before = snapshot(base, ROOT)
        start = time.perf_counter()
        failures = fuzz_all(fuzzer, CI_EXAMPLES, derandomize=True)
        print(f"fuzz: {sum(fuzzer.counts.values())} calls, {dict(fuzzer.counts)}, "
              f"{time.perf_counter() - start:.0f} s; seconds per endpoint: {dict(fuzzer.seconds)}")
        assert fuzzer.healthy()
        after = snapshot(base, ROOT)
    shutil.rmtree(upload_folder(), ignore_errors=True)
    assert not failures, "\n\n".join(f"{name}: {text}" for name, text in failures.items())
    stray = strays(before, after, base)
    assert not stray, stray
