import pytest

from explorer.views.charts import PLAIN_COLOR, RESIDUAL_COLOR

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _run(page, button: str, plot: str, text: str) -> str:
    page.locator(button).click()
    page.locator(f"{plot} .js-plotly-plot").wait_for(timeout=240_000)
    return page.locator(text).inner_text()


def test_paths_and_signals_of_a_fresh_resnet20(page, screenshot, fill_and_keep):
    page.get_by_role("tab", name="Paths & signals").click()
    page.get_by_label("a fresh net at initialization").check()
    fill_and_keep(page.locator("#paths-depth input"), "20")  # held by the page before the click reads it
    reading = _run(page, "#paths-run", "#paths-plot", "#paths-text")
    assert "ResNet-20 v1 at initialization" in reading and "Veit et al." in reading, reading
    assert "9 blocks" in reading
    page.wait_for_timeout(500)
    screenshot("paths_lengths")

    page.get_by_text("Signal propagation (Brock, De and Smith 2021)").click()
    page.locator("#signals-samples input").fill("32")
    reading = _run(page, "#signals-run", "#signals-plot", "#signals-text")
    # the panel opens on the paper's setting: a v2 net (20 is 9n+2 too) at initialization (#36 item 12)
    assert "ResNet-20 v2 at initialization" in reading and "Plain-20 v2 at initialization" in reading, reading
    colors = page.evaluate("() => Object.fromEntries(document.querySelector('#signals-plot .js-plotly-plot')"
                           ".data.map(trace => [trace.name, trace.line.color]))")
    assert colors == {"ResNet-20 v2 at initialization": RESIDUAL_COLOR,
                      "Plain-20 v2 at initialization": PLAIN_COLOR}
    # the plain net has no residual branch: no line of its own in the branch-variance panel
    traces = page.evaluate(
        "() => document.querySelector('#signals-plot .js-plotly-plot').data.map(t => t.name)")
    assert traces.count("Plain-20 v2 at initialization") == 2 and traces.count(
        "ResNet-20 v2 at initialization") == 3, traces
    page.wait_for_timeout(500)
    screenshot("paths_signals")

    page.get_by_text("Shattered gradients (Balduzzi et al. 2017)").click()
    depths = page.locator("#shattered-depths textarea, #shattered-depths input").first
    fill_and_keep(depths, "8, 20")
    fill_and_keep(page.locator("#shattered-points input"), "64")
    reading = _run(page, "#shattered-run", "#shattered-plot", "#shattered-text")
    assert "Plain-20 v1" in reading and "Balduzzi et al." in reading, reading
    legend = page.locator("#shattered-plot .legend").text_content()
    assert "ResNet-8 v1" in legend and "Plain-20 v1" in legend
    page.wait_for_timeout(500)
    screenshot("paths_shattered")
