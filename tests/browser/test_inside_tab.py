"""The Look inside tab in a real browser: one click on a test image draws the chosen block's
maps beside the plain twin's, stepping to the next block redraws them, the read-out chart and
the top 3 per block appear; a drawing of its own is looked inside; a link opens the tab on a
block and a test image, on a phone too; the Architecture tab draws the branch_ratio and
readout overlays. Screenshots in tests/artifacts/inside_*.png and phone_inside.png."""

import pytest
from conftest import ARTIFACTS, architecture_on_resnet20, classify_example, draw_three_strokes

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "() => (document.querySelector('#inside-maps .gtitle') || {}).textContent || ''"


def _maps_of(page, block: str, timeout: int = 180_000) -> None:
    """Waits until the maps drawn are the block's."""
    page.wait_for_function(f"() => ({TITLE})().includes('{block}:')", timeout=timeout)


def _read_out(page) -> None:
    """Waits for the read-out a new image starts (fitted live for the test app's untrained
    checkpoints): the next test's requests would wait behind it on the app's one study worker."""
    page.locator("#inside-readout").get_by_text("Linear read-out").first.wait_for(timeout=300_000)


def test_a_test_image_inside_block_by_block(page, screenshot):
    page.get_by_role("tab", name="Look inside").click()
    thumbnails = page.locator("#inside-gallery .thumbnail-item")
    thumbnails.first.wait_for(timeout=120_000)  # the test images, fetched when the tab opens
    thumbnails.nth(3).click()
    page.locator("#inside-seen img").wait_for(timeout=60_000)
    _maps_of(page, "stage1_block1")
    assert "On this image, ResNet-20 v1" in page.locator("#inside-reading").inner_text()
    page.locator("#inside-twin-maps .js-plotly-plot").wait_for(timeout=60_000)  # the plain twin beside it

    # its own label: the Architecture tab's block panel has the "Block" its tests ask for
    page.get_by_label("Block to look inside").click()
    page.get_by_role("option", name="stage2_block2").click()
    _maps_of(page, "stage2_block2")
    page.locator("#inside-next").click()
    _maps_of(page, "stage2_block3")
    twin = page.locator("#inside-twin-maps .gtitle").text_content()
    assert "Plain-20 v1, stage2_block3:" in twin, twin
    assert page.locator("#inside-block input").input_value() == "stage2_block3"

    # the read-out: fitted now (the test app's untrained nets have no stored probes)
    page.locator("#inside-readout").get_by_text("Linear read-out of each block").wait_for(timeout=240_000)
    page.locator("#inside-tops").get_by_text("ResNet-20 v1").first.wait_for(timeout=60_000)
    text = page.locator("#inside-readout-text").inner_text()
    assert "Beside Alain and Bengio (2016)" in text and "On this image" in text, text
    # the chart marks the block chosen now (2.3: the sixth), though it was fitted while stage1_block1 was
    page.wait_for_function("() => (document.querySelector('#inside-readout .js-plotly-plot').layout.shapes"
                           " || []).some(shape => shape.fillcolor === '#ff7f0e'"
                           " && Math.abs(shape.x0 - 4.55) < 1e-6)")
    legend = page.locator("#inside-readout .legend").text_content()
    assert "ResNet-20 v1: read-out" in legend and "Plain-20 v1: read-out" in legend
    # the address bar follows the view: a link to it
    page.wait_for_function("() => ['tab=inside', 'block=stage2_block3', 'image=3'].every("
                           "part => location.search.includes(part))")
    page.locator("#inside-readout .js-plotly-plot").wait_for()
    page.wait_for_timeout(800)
    screenshot("inside_tab")


def test_a_link_opens_the_tab_on_a_block_and_a_test_image_on_a_phone(phone_page, app_url):
    page = phone_page
    page.goto(f"{app_url}/?tab=inside&checkpoint=r20_untrained&block=stage3_block2&image=5")
    _maps_of(page, "stage3_block2")
    assert page.get_by_role("tab", name="Look inside").get_attribute("aria-selected") == "true"
    page.locator("#inside-readout").get_by_text("Linear read-out").first.wait_for(timeout=240_000)
    for plot in ("#inside-maps", "#inside-depth", "#inside-readout", "#inside-tops"):
        box = page.locator(plot).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, plot  # nothing cut off sideways
    page.wait_for_timeout(800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone_inside.png"), full_page=True)


def test_the_branch_ratio_and_readout_overlays_draw(page, screenshot):
    # the checkpoint follows the net a few steps after its graph is drawn: an overlay picked
    # before it came was refused for want of a checkpoint (seen in CI under load)
    architecture_on_resnet20(page)
    page.get_by_text("ResNet-20 v1: 274,442 parameters").first.wait_for(timeout=60_000)
    for name, title in (("‖F(x)‖ / ‖x‖ of a checkpoint on test images", "residual branch against its input"),
                        ("linear read-out accuracy per block", "linear read-out")):
        page.get_by_label("Overlay", exact=True).click()
        page.get_by_role("option", name=name).click()
        page.locator("#arch-plot").get_by_text(title).first.wait_for(timeout=240_000)
        page.wait_for_function("() => document.querySelector('#arch-plot .colorbar') !== null")
    page.locator("#arch-block-info").get_by_text("readout (read-out accuracy)").wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    screenshot("inside_architecture_readout_overlay")


def test_the_image_classified_on_classify_is_looked_inside(page, screenshot):
    """#33: an image classified on the Classify tab follows to Look inside (as its checkpoint
    does): opening the tab draws the blocks of that image, the test image number cleared."""
    classify_example(page)
    page.get_by_role("tab", name="Look inside").click()
    page.locator("#inside-upload").get_by_text("red_car").first.wait_for(timeout=60_000)
    page.locator("#inside-seen img").wait_for(timeout=60_000)
    _maps_of(page, "stage1_block1")
    assert page.locator("#inside-index input").input_value() == ""  # not a test image
    screenshot("inside_followed_from_classify")
    _read_out(page)


def test_a_drawing_is_looked_inside(page, screenshot):
    """#33: a drawing made on the tab itself is the image looked at, block by block."""
    page.get_by_role("tab", name="Look inside").click()
    page.locator("#inside-draw").get_by_text("or draw one").click()
    draw_three_strokes(page, "#inside-sketch")
    page.locator("#inside-draw-run").click()
    page.locator("#inside-upload").get_by_text("drawing").first.wait_for(timeout=60_000)
    page.locator("#inside-seen img").wait_for(timeout=60_000)
    _maps_of(page, "stage1_block1")
    assert "On this image, ResNet-20 v1" in page.locator("#inside-reading").inner_text()
    assert page.locator("#inside-index input").input_value() == ""  # not a test image
    page.wait_for_timeout(800)
    screenshot("inside_drawing")
    _read_out(page)


def test_a_block_of_the_architecture_graph_is_looked_inside(page, screenshot):
    """#33: on the Architecture tab, "Look inside this block" opens the Look inside tab on that
    block of the checkpoint chosen there, on the first test image when none was chosen."""
    architecture_on_resnet20(page)
    page.get_by_label("Block", exact=True).click()
    page.get_by_role("option", name="stage2_block2").click()
    page.locator("#arch-look-inside").click()
    _maps_of(page, "stage2_block2")
    assert page.locator("#inside-block input").input_value() == "stage2_block2"
    assert page.locator("#inside-checkpoint input").input_value().startswith("r20_untrained")
    page.wait_for_timeout(2500)  # the new test image draws the view once more (its change event)
    _maps_of(page, "stage2_block2")
    screenshot("inside_from_the_architecture_graph")
    _read_out(page)
    # again, another block: the image and the checkpoint are the same, so this click draws it
    page.get_by_role("tab", name="Architecture").click()
    page.get_by_label("Block", exact=True).click()
    page.get_by_role("option", name="stage3_block1").click()
    page.locator("#arch-look-inside").click()
    _maps_of(page, "stage3_block1")
