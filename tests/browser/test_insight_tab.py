import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_insight_lab_lesion_and_landscape(page, screenshot, ensure_checkpoint):
    ensure_checkpoint()
    page.get_by_role("tab", name="Insight lab").click()
    page.get_by_role("button", name="Refresh lists").click()
    page.wait_for_function("() => document.querySelector('#ins-first input').value !== ''")
    page.locator("#ins-lesion").click()
    page.locator("#ins-lesion-plot .js-plotly-plot").wait_for(timeout=180_000)
    assert "intact" in page.locator("#ins-lesion-text").inner_text()
    page.get_by_text("Loss landscape (Li et al. 2018)").click()
    page.get_by_label("Grid steps per axis").fill("3")
    page.get_by_label("Test images", exact=True).last.fill("32")
    page.locator("#ins-landscape").click()
    page.locator("#ins-landscape-plot .js-plotly-plot").wait_for(timeout=180_000)
    assert "at the checkpoint" in page.locator("#ins-landscape-text").inner_text()
    page.wait_for_timeout(1000)
    screenshot("insight_lab")
