"""The three-step start above the tabs: each step opens its tab with its view drawn."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_three_steps_open_their_views(page, screenshot):
    page.locator("#start-here").wait_for()
    screenshot("start_here")
    page.locator("#start-1").click()
    page.get_by_text("ResNet-20 v1: 274,442 parameters").first.wait_for(timeout=60_000)
    assert page.get_by_role("tab", name="Architecture").get_attribute("aria-selected") == "true"
    page.locator("#arch-twin .js-plotly-plot").wait_for(timeout=60_000)  # the plain twin beside it

    page.locator("#start-2").click()
    page.locator("#grad-plot .js-plotly-plot").wait_for(timeout=180_000)
    assert page.get_by_role("tab", name="Gradient flow").get_attribute("aria-selected") == "true"
    page.locator("#grad-reading").get_by_text("ResNet-110 v1").first.wait_for(timeout=180_000)

    page.locator("#start-3").click()
    page.locator("#tour-step-1").wait_for()
    assert page.get_by_role("tab", name="Tour").get_attribute("aria-selected") == "true"


def test_teacher_mode_hides_the_start_row(page, app_url):
    page.goto(f"{app_url}/?tab=gradients&hide=controls")
    page.locator("#grad-plot").wait_for(state="attached", timeout=60_000)
    page.wait_for_timeout(1000)
    assert not page.locator("#start-here").is_visible()


def test_a_glossary_word_opens_its_entry(page, screenshot):
    page.get_by_text("ResNet-56 v1: 861,770 parameters").first.wait_for(timeout=60_000)
    page.locator("#arch-headline a[href='#glossary-multiply-adds']").click()
    entry = page.locator("#glossary").get_by_text("one multiplication and one addition")
    entry.wait_for(timeout=10_000)
    assert entry.is_visible()
    assert page.url.endswith("/") or "#" not in page.url or "glossary" in page.url
    screenshot("glossary_opened")
