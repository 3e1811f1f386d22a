import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_gradient_tab_measures_plain_against_residual(page, screenshot):
    page.get_by_role("tab", name="Gradient flow").click()
    page.locator("#grad-depth input").fill("56")
    page.locator("#grad-run").click()
    page.locator("#grad-plot .js-plotly-plot").wait_for(timeout=180_000)
    legend = page.locator("#grad-plot .legend").text_content()
    assert "plain" in legend and "residual" in legend
    reading = page.locator("#grad-reading").inner_text()
    assert "ResNet-56 v1" in reading and "orders of magnitude" in reading
    screenshot("gradients_flow")
