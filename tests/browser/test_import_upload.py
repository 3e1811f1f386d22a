"""Bring your own ResNet in the browser (issue 35): the Keras tutorial's own ResNet-20 v1 file
(its code from ../shared/reference, trained a few steps, saved as its ModelCheckpoint does)
uploaded on the Classify tab, a drawing classified by it, its graph opened on the Architecture
tab with a measurement of its weights. Screenshots in tests/artifacts/import_*.png."""

import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ARTIFACTS, draw_three_strokes

from bench.common import REFERENCE, tutorial_module
from explorer.data.cifar import synthetic
from explorer.nets.import_files import MAX_IMPORT_BYTES
from tests.test_import import train_and_save

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UNLOAD_SECONDS = 90  # Gradio hears a closed page when its heartbeat (15 s) goes unanswered


@pytest.fixture(scope="module")
def tutorial_file(tmp_path_factory):
    if not REFERENCE.is_file():
        pytest.skip(f"the tutorial's code is not at {REFERENCE}")
    dataset = synthetic()  # the test app's data: its mean is the one the import computes
    mean = (dataset.x_train.astype(np.float64) / 255).mean(axis=0).astype(np.float32)
    _, files = train_and_save(tutorial_module(), (dataset, mean), tmp_path_factory.mktemp("tutorial"), 1, 20)
    return files["keras"]


def test_the_tutorials_file_on_classify_then_its_graph(page, screenshot, tutorial_file):
    page.get_by_role("tab", name="Classify").click()
    page.get_by_text("Your own ResNet: import a .keras or .h5 file").click()
    page.locator("#cls-import-file input[type=file]").set_input_files(str(tutorial_file))
    page.locator("#cls-import-run").click()
    said = page.locator("#cls-import-said")
    said.get_by_text("274,442 parameters").wait_for(timeout=240_000)
    assert "imported from cifar10_ResNet20v1_model.001.keras" in said.inner_text().replace("`", "")
    chosen = page.locator("#cls-checkpoint input").input_value()
    assert "your cifar10_ResNet20v1_model.001.keras (imported)" in chosen
    screenshot("import_on_classify")

    page.get_by_role("tab", name="Draw").click()
    draw_three_strokes(page)
    page.locator("#cls-draw-run").click()
    page.wait_for_function("() => document.querySelector('#cls-label').innerText.includes('%')",
                           timeout=120_000)
    screenshot("import_classify_drawing")

    page.get_by_role("tab", name="Architecture").click()
    page.get_by_label("Checkpoint of this net (trained overlays, deletion)").click()
    page.get_by_role("option", name="cifar10_ResNet20v1_model.001.keras (imported)").click()
    page.get_by_label("Overlay", exact=True).click()
    page.get_by_role("option", name="gradient norm, trained against at initialization").click()
    plot = page.locator("#arch-plot")
    plot.get_by_text("trained against at initialization").first.wait_for(timeout=240_000)
    plot.get_by_text("ResNet-20 v1, trained (top)").first.wait_for()
    # the block panel names the block's layers as the tutorial's file does
    page.locator("#arch-block-info").get_by_text("In your file its layers are").wait_for(timeout=60_000)
    assert "conv2d" in page.locator("#arch-block-info").inner_text()
    screenshot("import_graph")


def _imports(runs: Path) -> set[str]:
    folder = runs / "imports"
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def test_a_closed_page_takes_its_import_with_it(browser, app_url, app_runs, tutorial_file):
    """A page's import is removed when the page is closed (Gradio's `unload`, heard when the
    page's heartbeat stops): an upload belongs to the session that made it."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{app_url}/?tab=classify")
    page.get_by_text("Your own ResNet: import a .keras or .h5 file").click()
    before = _imports(app_runs)
    page.locator("#cls-import-file input[type=file]").set_input_files(str(tutorial_file))
    page.locator("#cls-import-run").click()
    page.locator("#cls-import-said").get_by_text("274,442 parameters").wait_for(timeout=240_000)
    made = _imports(app_runs) - before
    assert len(made) == 1, (before, made)
    context.close()
    deadline = time.monotonic() + UNLOAD_SECONDS
    while made & _imports(app_runs) and time.monotonic() < deadline:
        time.sleep(1)
    assert not made & _imports(app_runs), f"{made} still in {app_runs / 'imports'} {UNLOAD_SECONDS} s after"


def test_an_oversized_file_is_refused_on_a_phone_and_nothing_is_kept(phone_page, app_url, app_runs, tmp_path):
    """A file over the import bound (200 MB) is refused before any import starts, with the
    bound in the message; the import panel on a phone (screenshot import_panel_phone.png)."""
    big = tmp_path / "too_big.keras"
    with open(big, "wb") as file:
        file.truncate(MAX_IMPORT_BYTES + 1)  # sparse: no 200 MB written to this disk
    page = phone_page
    page.goto(f"{app_url}/?tab=classify")
    page.get_by_text("Your own ResNet: import a .keras or .h5 file").click()
    before = _imports(app_runs)
    page.locator("#cls-import-file input[type=file]").set_input_files(str(big))
    refusal = page.get_by_text(re.compile("exceed", re.IGNORECASE)).first
    refusal.wait_for(timeout=60_000)
    # Gradio's own check, in the browser before any byte is sent: "File(s) exceed the maximum
    # allowed size of 200.0 Mb: "too_big.keras"" (its Mb are 2**20 bytes)
    assert f"{MAX_IMPORT_BYTES / 2**20:.1f} Mb" in refusal.inner_text() and big.name in refusal.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "import_panel_phone.png"), full_page=True)
    assert _imports(app_runs) == before
