"""Browser tests: the real app in a subprocess, driven by Debian's Chromium via Playwright.

Screenshots land in tests/artifacts/ (look at them). Skipped when Chromium is missing.
"""

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test leaves the page as it was (tests/artifacts/failed_<test>.png) and
    its page's text in the report: what the test waited for and what the page showed instead."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") or item.funcargs.get("phone_page")
    if report.when != "call" or not report.failed or page is None or page.is_closed():
        return
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed_{item.name}.png"), full_page=True)
        report.sections.append(("the page's text when it failed", page.locator("body").inner_text()[-3000:]))
    except PlaywrightError as error:  # a page that went away says so, the failure itself still reports
        report.sections.append(("the page when it failed", f"unreadable: {error}"))


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def phone_page(browser):
    """A page at a phone's 390x844 (mobile, touch), not yet opened on the app."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """screenshot(name) saves the full page to tests/artifacts/<name>.png."""

    def take(name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def ensure_checkpoint(page):
    """ensure_checkpoint() makes sure the page has a checkpoint to use: a shipped one when
    there is one, else a tiny model trained in this browser session on the Train tab."""

    def ensure():
        page.get_by_role("tab", name="Classify").click()
        if page.locator("#cls-checkpoint input").input_value():
            return
        page.get_by_role("tab", name="Train").click()
        page.locator("#train-epochs input").fill("1")
        page.locator("#train-subset input").fill("256")
        page.locator("#train-start").click()
        page.locator("#train-progress").get_by_text("done").first.wait_for(timeout=180_000)
        page.get_by_role("tab", name="Classify").click()
        page.get_by_role("button", name="Refresh list").click()
        page.wait_for_function("() => document.querySelector('#cls-checkpoint input').value !== ''")

    return ensure


@pytest.fixture
def fill_and_keep(page):
    """fill_and_keep(box, value) fills `box` (a locator), leaves it so the page commits the
    value, and checks it is still there half a second later, filling again if not: a box in a
    just-opened accordion can be mounted again with its first value while a loaded machine is
    still drawing it (the click then sent the old value)."""

    def fill(box, value: str, tries: int = 3):
        for _ in range(tries):
            box.fill(value)
            box.blur()
            page.wait_for_timeout(500)
            if box.input_value() == value:
                return
        raise AssertionError(f"the box kept {box.input_value()!r}, not {value!r}")

    return fill


EXAMPLE = ROOT / "examples" / "red_car.png"


def classify_example(page) -> None:
    """On the Classify tab: uploads examples/red_car.png and waits for the top 5."""
    page.get_by_role("tab", name="Classify").click()
    page.get_by_role("tab", name="Upload").click()
    upload_on_classify(page, EXAMPLE)
    page.locator("#cls-upload-run").click()
    page.wait_for_function("() => document.querySelector('#cls-label').innerText.includes('%')",
                           timeout=120_000)


def upload_on_classify(page, path) -> None:
    """Uploads `path` on the Classify tab's Upload panel and waits until the upload is done (its
    name shown) and its change event answered: a button clicked sooner may classify the file
    before that event's clearing step comes back, which clears every answer (CI, loaded: the
    top 5 came, then went; a fixed 300 ms wait was not enough, "the note for None")."""
    # the clearing step is not queued (`queue=False`): Gradio posts it to /run/
    with page.expect_response(lambda response: "/run/" in response.url, timeout=60_000):
        page.locator("#cls-upload input[type=file]").set_input_files(str(path))
    page.locator("#cls-upload").get_by_text(Path(path).stem).first.wait_for(timeout=60_000)


def draw_three_strokes(page, sketch: str = "#cls-sketch") -> None:
    """On a drawing canvas (the Classify tab's Draw panel, or another `ui.sketch` canvas):
    three red strokes on a grey road."""
    page.locator(f"{sketch}-background input").click()
    page.get_by_role("option", name="grey road").click()
    page.locator(sketch).get_by_role("button", name="Brush", exact=True).click()
    canvas = page.locator(f"{sketch} canvas").last
    canvas.wait_for()
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dy in (-30, 0, 30):  # three red strokes across the middle of the picture
        page.mouse.move(cx - 90, cy + dy)
        page.mouse.down()
        # a few points a stroke: the editor joins them with a line, and every point costs the
        # headless browser's software-drawn canvas about half a second (54 of them took 66 s)
        page.mouse.move(cx + 90, cy + dy, steps=4)
        page.mouse.up()


def architecture_on_resnet20(page) -> None:
    """On the Architecture tab: draws ResNet-20 v1 and waits until its checkpoint (the test
    app's untrained r20) is the one the block panel measures."""
    page.get_by_role("tab", name="Architecture").click()
    depth = page.locator("#arch-depth input")
    depth.fill("20")
    depth.press("Enter")
    info = page.locator("#arch-block-info")
    info.get_by_text("measures r20_untrained without it").wait_for(timeout=120_000)
