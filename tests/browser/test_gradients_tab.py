import pytest

from explorer.views.charts import PLAIN_COLOR, RESIDUAL_COLOR

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_gradient_tab_measures_plain_against_residual(page, screenshot):
    page.get_by_role("tab", name="Gradient flow").click()
    page.locator("#grad-depth input").fill("56")
    page.locator("#grad-run").click()
    # the start-up view (ResNet-110) is drawn already: wait for the reading of the depth asked for
    page.wait_for_function("() => (document.querySelector('#grad-reading') || {}).innerText"
                           "?.includes('ResNet-56 v1')", timeout=180_000)
    page.locator("#grad-plot .js-plotly-plot").wait_for(timeout=30_000)
    legend = page.locator("#grad-plot .legend").text_content()
    assert "plain" in legend and "residual" in legend
    reading = page.locator("#grad-reading").inner_text()
    assert "ResNet-56 v1" in reading and "orders of magnitude" in reading
    colors = page.evaluate("() => Object.fromEntries(document.querySelector('#grad-plot .js-plotly-plot')"
                           ".data.map(trace => [trace.name, trace.line.color]))")
    assert colors["plain"] == PLAIN_COLOR and colors["residual"] == RESIDUAL_COLOR  # as on the Train tab
    assert "at initialization" in reading
    screenshot("gradients_flow")


def test_the_race_draws_its_first_heatmap_column_and_stops(page, screenshot):
    """The race's own depth (20 by default) fills a first column quickly; Stop ends both jobs."""
    page.get_by_role("tab", name="Gradient flow").click()
    page.get_by_text("Over training").click()
    page.locator("#grad-race").click()
    # a heatmap trace appears with the first logged column (generous: CI shares its cores)
    page.wait_for_function(
        "() => { const p = document.querySelector('#grad-heat .js-plotly-plot');"
        " return p && p.data && p.data.some(t => t.type === 'heatmap' && t.x && t.x.length >= 1); }",
        timeout=240_000)
    screenshot("gradients_race_first_column")
    page.locator("#grad-race-stop").click()
    page.wait_for_function("() => [...document.querySelectorAll('.prose, .md')].some("
                           "e => (e.innerText.match(/stopped/g) || []).length >= 2)", timeout=60_000)
    screenshot("gradients_race_stopped")
