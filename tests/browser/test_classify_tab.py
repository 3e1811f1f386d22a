from pathlib import Path

import pytest
from conftest import draw_three_strokes, upload_on_classify

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "red_car.png"


def test_classify_drawing_and_upload(page, screenshot, ensure_checkpoint):
    ensure_checkpoint()
    page.get_by_role("tab", name="Classify").click()
    draw_three_strokes(page)
    page.locator("#cls-draw-run").click()
    page.wait_for_function("() => document.querySelector('#cls-label').innerText.includes('%')",
                           timeout=60_000)
    page.wait_for_function("() => document.querySelector('#cls-seen img') !== null", timeout=60_000)
    page.locator("#cls-draw-gradcam").click()
    page.locator("#cls-gradcam-text").get_by_text("Grad-CAM for").wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # let the result panel settle before the screenshot
    screenshot("classify_drawing")

    page.get_by_role("tab", name="Upload").click()
    upload_on_classify(page, EXAMPLE)
    # a new file: the drawing's answers leave the page at once
    page.wait_for_function("() => document.querySelector('#cls-seen img') === null", timeout=30_000)
    page.locator("#cls-upload-run").click()
    page.wait_for_function("() => document.querySelector('#cls-seen img') !== null", timeout=60_000)
    page.wait_for_timeout(1500)
    text = page.locator("#cls-label").inner_text()
    assert "%" in text
    page.get_by_label("Grad-CAM class").click()
    page.get_by_role("option", name="automobile").click()
    page.locator("#cls-gradcam").click()
    page.locator("#cls-gradcam-text").get_by_text("Grad-CAM for automobile").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    screenshot("classify_upload")


def test_a_text_file_named_png_says_what_is_wrong_and_clears_stale_answers(page, screenshot,
                                                                          ensure_checkpoint, tmp_path):
    ensure_checkpoint()
    page.get_by_role("tab", name="Classify").click()
    page.get_by_role("tab", name="Upload").click()
    upload_on_classify(page, EXAMPLE)
    page.locator("#cls-upload-run").click()
    page.wait_for_function("() => document.querySelector('#cls-seen img') !== null", timeout=60_000)
    fake = tmp_path / "notes.png"
    fake.write_text("these are my notes, not a picture: 68 bytes of plain text, no pixels\n")
    page.locator("#cls-upload").get_by_role("button", name="Clear").click()  # the car's file away
    page.wait_for_function("() => document.querySelector('#cls-seen img') === null", timeout=30_000)
    assert "%" not in page.locator("#cls-label").inner_text()  # and with it the car's top 5
    upload_on_classify(page, fake)
    page.locator("#cls-upload-run").click()
    page.get_by_text("not an image").first.wait_for(timeout=30_000)
    screenshot("classify_bad_upload")


def test_answers_follow_the_checkpoint_and_say_the_choice_is_forced(page, screenshot, ensure_checkpoint):
    """#36 items 7 and 8: a new checkpoint answers again (top 5 and Grad-CAM), a new
    classification clears the Grad-CAM of the one before, and the top probability is read
    against the test images' with the reminder that the net must pick one of ten classes."""
    ensure_checkpoint()
    page.get_by_role("tab", name="Classify").click()
    page.get_by_role("tab", name="Upload").click()
    upload_on_classify(page, EXAMPLE)
    page.locator("#cls-upload-run").click()
    note = page.locator("#cls-note")
    # the first note waits for the test images' reference (one pass of 1,000 on a worker)
    note.get_by_text("must answer with one of its 10 CIFAR-10 classes").wait_for(timeout=180_000)
    assert "test images" in note.inner_text()
    page.locator("#cls-gradcam").click()
    page.locator("#cls-gradcam-text").get_by_text("Grad-CAM for").wait_for(timeout=60_000)
    before = page.locator("#cls-label").inner_text()
    cam_before = page.locator("#cls-gradcam-image img").get_attribute("src")

    page.locator("#cls-checkpoint input").click()
    page.get_by_role("option", name="plain20_untrained").first.click()
    page.wait_for_function("(old) => document.querySelector('#cls-label').innerText !== old", arg=before,
                           timeout=60_000)
    page.wait_for_function(
        "(old) => { const img = document.querySelector('#cls-gradcam-image img');"
        " return img !== null && img.getAttribute('src') !== old; }", arg=cam_before, timeout=60_000)
    screenshot("classify_follows_checkpoint")

    page.locator("#cls-upload-run").click()  # a new classification: the map of the one before goes
    page.wait_for_function("() => document.querySelector('#cls-gradcam-image img') === null", timeout=60_000)
    assert page.locator("#cls-gradcam-text").inner_text().strip() == ""
