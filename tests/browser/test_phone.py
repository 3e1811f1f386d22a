"""Every tab on a phone (390x844): every tab reachable without a "..." menu, the chart near
the top, the answer next to the input, nothing cut off; and no page holds more WebGL
contexts than the browser allows."""

import re

import pytest
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABS = ["Architecture", "Train", "Playground", "Gradient flow", "Classify", "Look inside", "Insight lab",
        "Paths & signals", "Tour"]


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


# Text of a Plotly chart that must stay inside the chart and off other text: the title, the
# axis titles, annotations (subplot titles, stage labels) and the legend
TEXT_BOXES_JS = """(plot) => {
  const root = document.querySelector(plot + ' .js-plotly-plot');
  const frame = root.getBoundingClientRect();
  const items = [...root.querySelectorAll(
      '.infolayer text.gtitle, .infolayer text[class$="title"], .annotation-text-g, .legend .bg')]
    .map(e => ({text: (e.textContent || 'legend').slice(0, 40), box: e.getBoundingClientRect()}))
    .filter(item => item.box.width > 0);
  const outside = items.filter(item => item.box.left < frame.left - 1 || item.box.right > frame.right + 1)
    .map(item => item.text);
  const overlaps = [];
  items.forEach((a, i) => items.slice(i + 1).forEach(b => {
    const x = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
    const y = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
    if (x > 2 && y > 2) overlaps.push([a.text, b.text]);
  }));
  return {outside, overlaps};
}"""


def _text_fits(page, plot: str) -> None:
    found = page.evaluate(TEXT_BOXES_JS, plot)
    assert found == {"outside": [], "overlaps": []}, (plot, found)


def test_the_charts_and_tooltips_fit_a_phone(phone):
    """#36's phone cosmetics, measured on the page: the Architecture graph's labels and a block's
    tooltip, the gradient chart's title and legend, the path-length panels' titles, each inside
    its chart and off the other text."""
    page = phone
    _text_fits(page, "#arch-plot")
    labels = page.evaluate("() => [...document.querySelectorAll('#arch-plot .scatterlayer text')]"
                           ".filter(e => ['input', 'stem'].includes(e.textContent))"
                           ".map(e => { const b = e.getBoundingClientRect();"
                           " return [b.left, b.right, b.top, b.bottom]; })")
    (a_left, a_right, a_top, a_bottom), (b_left, b_right, b_top, b_bottom) = labels
    apart = min(a_right, b_right) <= max(a_left, b_left) or min(a_bottom, b_bottom) <= max(a_top, b_top)
    assert apart, labels
    # a block's tooltip, at the graph's right end, stays on the graph
    points = [point.bounding_box() for point in page.locator("#arch-plot .scatterlayer .points path").all()]
    rightmost = max((point for point in points if point), key=lambda point: point["x"])
    page.mouse.move(rightmost["x"] + rightmost["width"] / 2, rightmost["y"] + rightmost["height"] / 2)
    tooltip = page.locator("#arch-plot .hoverlayer .hovertext").first
    tooltip.wait_for()
    frame, box = page.locator("#arch-plot .js-plotly-plot").bounding_box(), tooltip.bounding_box()
    right_edge = frame["x"] + frame["width"] + 1
    assert frame["x"] - 1 <= box["x"] and box["x"] + box["width"] <= right_edge, (frame, box)
    _shot(page, "phone_architecture_tooltip")

    page.get_by_role("tab", name="Gradient flow").click()
    page.locator("#grad-run").click()
    page.locator("#grad-plot .js-plotly-plot").wait_for(timeout=240_000)
    page.wait_for_timeout(500)
    _text_fits(page, "#grad-plot")
    _shot(page, "phone_gradient_flow_measured")

    page.get_by_role("tab", name="Paths & signals").click()
    page.get_by_label("a fresh net at initialization").check()
    depth = page.locator("#paths-depth input")
    depth.fill("20")
    depth.blur()
    page.wait_for_timeout(500)
    page.locator("#paths-run").click()
    page.locator("#paths-plot .js-plotly-plot").wait_for(timeout=240_000)
    page.wait_for_timeout(500)
    _text_fits(page, "#paths-plot")
    _shot(page, "phone_paths_lengths")
