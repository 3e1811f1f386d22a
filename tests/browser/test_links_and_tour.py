"""Links that rebuild a view, the address bar that follows the page, teacher mode, and the
guided tour, in a real browser."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_gradient_link_opens_its_tab_and_measures(page, screenshot, app_url):
    # not the tab's default depth (110), so the link's value is what shows
    page.goto(f"{app_url}/?tab=gradients&depth=32&version=1")
    page.locator("#grad-plot .js-plotly-plot").wait_for(timeout=180_000)
    assert page.locator("#grad-depth input").input_value() == "32"
    assert page.get_by_role("tab", name="Gradient flow").get_attribute("aria-selected") == "true"
    page.locator("#grad-reading").get_by_text("ResNet-32 v1").first.wait_for(timeout=120_000)
    screenshot("link_gradients_32")


def test_an_architecture_link_and_the_address_bar_following_the_page(page, screenshot, app_url):
    page.goto(f"{app_url}/?tab=architecture&depth=1202")
    page.get_by_text("ResNet-1202 v1").first.wait_for(timeout=60_000)
    assert page.locator("#arch-depth input").input_value() == "1202"
    screenshot("link_architecture_1202")
    entries = page.evaluate("() => history.length")
    page.locator("#arch-depth input").fill("110")
    page.locator("#arch-depth input").press("Enter")
    page.wait_for_function("() => location.search.includes('depth=110')", timeout=30_000)
    page.get_by_text("ResNet-110 v1").first.wait_for()
    # replaced, not pushed: Back still leaves the app
    assert page.evaluate("() => history.length") == entries


def test_a_bad_link_opens_the_defaults_with_one_line(page, screenshot, app_url):
    page.goto(f"{app_url}/?tab=nope&depth=abc&checkpoint=job:0123456789ab")
    notice = page.locator("#link-notice")
    notice.wait_for()
    text = notice.inner_text()
    assert "tab=nope" in text and "depth=abc" in text and "a job belongs to the browser" in text
    page.get_by_text("ResNet-56 v1: 861,770 parameters").first.wait_for()  # the default view
    screenshot("link_bad")


def test_teacher_mode_hides_controls_and_other_tabs(page, screenshot, app_url):
    page.goto(f"{app_url}/?tab=architecture&depth=20&hide=controls&tab_only=1")
    page.get_by_text("ResNet-20 v1").first.wait_for()
    assert not page.get_by_label("Family").first.is_visible()
    assert not page.get_by_role("tab", name="Train").is_visible()
    screenshot("link_teacher_mode")


def test_the_lecture_link_shows_the_lesion_chart_alone_and_keeps_teacher_mode(page, screenshot, app_url):
    """The README's lecture link (here with the test app's two checkpoints): the lesion chart is
    drawn without a click, no control or other tab is on screen, and the address bar keeps
    `hide=controls` and `tab_only=1`, so copying it keeps teacher mode."""
    page.goto(f"{app_url}/?tab=insight&checkpoint=r20_untrained&compare=plain20_untrained"
              "&hide=controls&tab_only=1")
    page.locator("#ins-lesion-plot .js-plotly-plot").wait_for(timeout=120_000)
    page.locator("#ins-lesion-text").get_by_text("Plain-20").first.wait_for(timeout=60_000)
    for control in ("#ins-first", "#ins-second", "#ins-lesion", "#ins-lesion-stop", "#ins-lesion-samples",
                    "#ins-landscape", "#copy-link"):
        assert not page.locator(control).first.is_visible(), f"{control} is on screen"
    assert not page.get_by_role("tab", name="Train").is_visible()
    page.wait_for_function("() => location.search.includes('tab=insight')", timeout=30_000)
    query = page.evaluate("() => location.search")
    assert "hide=controls" in query and "tab_only=1" in query and "checkpoint=r20_untrained" in query
    screenshot("link_lecture")


def test_walking_the_tour(page, screenshot):
    page.get_by_role("tab", name="Tour").click()
    for step in range(1, 7):
        if step > 1:
            page.locator(f"#tour-step-{step}").get_by_text(f"{step}.").first.click()  # open the step
        reveal = page.locator(f"#tour-reveal-{step}")
        answer = page.locator(f"#tour-answer-{step} label").first
        answer.click()
        reveal.click()
        page.locator(f"#tour-result-{step}").get_by_text("Open the view that shows it").wait_for(
            timeout=300_000)
        text = page.locator(f"#tour-result-{step}").inner_text()
        assert "Traceback" not in text
    screenshot("tour_walked")


def test_the_tour_first_step_link_opens_the_degradation_view_drawn(page, screenshot, app_url):
    """#36 item 11: step 1's link opens the Train tab with the degradation chart drawn, not an
    empty tab with the chart in a closed section below."""
    from explorer.views.tour import STEPS

    page.goto(f"{app_url}/?{STEPS[0].link}")
    page.locator("#train-degradation-plot .js-plotly-plot").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Train").wait_for()
    assert page.get_by_role("tab", name="Train").get_attribute("aria-selected") == "true"
    assert page.locator("#train-degradation-note").inner_text().strip()
    screenshot("link_tour_degradation")
