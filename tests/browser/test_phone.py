"""Every tab on a phone (390x844): every tab reachable without a "..." menu, the chart near
the top, the answer next to the input, nothing cut off; and no page holds more WebGL
contexts than the browser allows."""

import re

import pytest
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABS = ["Architecture", "Train", "Gradient flow", "Classify", "Look inside", "Insight lab", "Paths & signals",
        "Tour"]


@pytest.fixture
def phone(phone_page, app_url):
    page = phone_page
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(app_url)
    page.locator("#arch-plot .js-plotly-plot").wait_for()
    page.console_messages = messages
    return page


def _shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_tab_is_usable_on_a_phone(phone):
    page = phone
    visible = [tab.inner_text() for tab in page.get_by_role("tab").all() if tab.is_visible()]
    assert all(name in visible for name in TABS), visible  # none behind "..."
    assert not page.get_by_role("button", name="More tabs").is_visible()
    # Architecture: the graph starts on the first screen, above the controls
    plot = page.locator("#arch-plot").bounding_box()
    assert plot["y"] < 844 and plot["y"] < page.get_by_text("Family").first.bounding_box()["y"]
    table = page.locator("#arch-table").bounding_box()
    assert table["x"] >= 0 and table["x"] + table["width"] <= 390 + 1  # scrolls inside, not cut off
    _shot(page, "phone_architecture")
    for name in TABS[1:]:
        page.get_by_role("tab", name=name).click()
        page.wait_for_timeout(800)
        _shot(page, "phone_" + re.sub(r"[^a-z]+", "_", name.lower()))
    # Train: the checkboxes' labels keep whole words (a squeezed row had cut "Plain (n")
    page.get_by_role("tab", name="Train").click()
    for box in ("#train-plain", "#train-race"):
        label = page.locator(f"{box} label").first
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), box
        assert page.locator(box).bounding_box()["width"] >= 140, box
    # Classify: the top 5 right under the input, before the Grad-CAM options
    page.get_by_role("tab", name="Classify").click()
    label_y = page.locator("#cls-label").bounding_box()["y"]
    assert page.locator("#cls-draw-run").bounding_box()["y"] < label_y
    assert label_y < page.get_by_text("Grad-CAM class").first.bounding_box()["y"]
    assert not [text for text in page.console_messages if "Too many active WebGL contexts" in text]


def test_no_webgl_context_pile_up_on_the_desktop(page):
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    for name in TABS:
        page.get_by_role("tab", name=name).click()
        page.wait_for_timeout(500)
    page.get_by_role("tab", name="Architecture").click()
    page.locator("#arch-depth input").fill("1202")
    page.locator("#arch-build").click()
    page.get_by_text("ResNet-1202 v1").first.wait_for()
    assert not [text for text in messages if "Too many active WebGL contexts" in text]
