import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_insight_lab_lesion_and_landscape(page, screenshot, ensure_checkpoint):
    ensure_checkpoint()
    page.get_by_role("tab", name="Insight lab").click()
    page.get_by_role("button", name="Refresh lists").click()
    page.wait_for_function("() => document.querySelector('#ins-first input').value !== ''")
    # the test app ships a ResNet-20 and its plain twin: the lab opens on the pair
    assert "r20_untrained" in page.locator("#ins-first input").input_value()
    assert "plain20_untrained" in page.locator("#ins-second input").input_value()
    page.locator("#ins-lesion").click()
    page.locator("#ins-lesion-plot .js-plotly-plot").wait_for(timeout=180_000)
    reading = page.locator("#ins-lesion-text").inner_text()
    assert "ResNet-20 v1" in reading and "Plain-20 v1" in reading, reading
    legend = page.locator("#ins-lesion-plot .legend").text_content()
    assert "ResNet-20 v1" in legend and "Plain-20 v1" in legend
    page.get_by_text("Loss landscape (Li et al. 2018)").click()
    page.get_by_label("Grid steps per axis").fill("3")
    page.get_by_label("Test images", exact=True).last.fill("32")
    page.locator("#ins-landscape").click()
    page.locator("#ins-landscape-plot .js-plotly-plot").wait_for(timeout=180_000)
    assert "at the checkpoint" in page.locator("#ins-landscape-text").inner_text()
    page.wait_for_timeout(1000)
    screenshot("insight_lab")
    # a second checkpoint of the visitor's own choosing stays when the first list merely gets
    # and loses focus (that sent Gradio's `input`, and the twin replaced the choice)
    page.locator("#ins-second input").click()
    page.get_by_role("option", name="r20_untrained").first.click()
    page.wait_for_function(
        "() => document.querySelector('#ins-second input').value.includes('r20_untrained')")
    page.locator("#ins-first input").click()
    page.mouse.click(5, 5)  # away, on the page's margin
    page.wait_for_timeout(1500)
    assert "r20_untrained" in page.locator("#ins-second input").input_value()
