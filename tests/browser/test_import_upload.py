"""Bring your own ResNet in the browser (issue 35): the Keras tutorial's own ResNet-20 v1 file
(its code from ../shared/reference, trained a few steps, saved as its ModelCheckpoint does)
uploaded on the Classify tab, a drawing classified by it, its graph opened on the Architecture
tab with a measurement of its weights. Screenshots in tests/artifacts/import_*.png."""

import numpy as np
import pytest
from conftest import draw_three_strokes

from bench.common import REFERENCE, tutorial_module
from explorer.data.cifar import synthetic
from tests.test_import import train_and_save

pytestmark = [pytest.mark.browser, pytest.mark.slow]


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
