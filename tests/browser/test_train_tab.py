import re

import pytest

from explorer.views.charts import PLAIN_COLOR, RESIDUAL_COLOR

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_train_tab_starts_updates_and_stops(page, screenshot):
    page.get_by_role("tab", name="Train").click()
    assert page.locator("#train-epochs input").input_value() == "2"  # a single job's default
    page.get_by_label("Race: plain vs residual").check()
    # ticking Race sets its defaults: depth 56, where the plain net falls behind
    page.wait_for_function("() => document.querySelector('#train-depth input').value === '56'")
    # and its subset, as measured
    page.wait_for_function("() => document.querySelector('#train-subset input').value === '5000'")
    page.locator("#train-depth input").fill("8")  # a small race for the test
    page.locator("#train-epochs input").fill("3")
    page.locator("#train-subset input").fill("1024")
    page.locator("#train-subset input").blur()
    page.locator("#train-start").click()
    # two job ids, then live progress from the background jobs
    page.wait_for_function("() => document.querySelector('#train-jobs textarea, #train-jobs input')"
                           ".value.includes(',')")
    page.locator("#train-progress").get_by_text("running").first.wait_for(timeout=120_000)
    # both jobs finish their first epoch ("epoch 2/3" or later shows for each), curves fill in
    page.wait_for_function(
        "() => (document.querySelector('#train-progress').innerText.match(/epoch [23]\\/3|: done/g)"
        " || []).length >= 2", timeout=240_000)
    page.wait_for_function(
        "() => document.querySelectorAll('#train-curves .scatterlayer .point').length >= 8")
    screenshot("train_running")
    # one palette for the whole app: plain red, residual blue, as on the Gradient flow tab
    colors = page.evaluate("() => Object.fromEntries(document.querySelector('#train-curves .js-plotly-plot')"
                           ".data.map(trace => [trace.name, trace.line.color]))")
    assert (colors["Plain-8 v1 train loss"] == PLAIN_COLOR
            and colors["ResNet-8 v1 train loss"] == RESIDUAL_COLOR)
    page.locator("#train-stop").click()
    # both jobs end stopped (or done); a timer tick sent before the stop may show "running"
    # once more, so wait for the page to settle rather than read it at the first "stopped"
    page.wait_for_function(
        "() => { const text = document.querySelector('#train-progress').innerText;"
        " return !text.includes('running') && (text.match(/: (stopped|done)/g) || []).length >= 2 }",
        timeout=30_000)
    page.get_by_text("Degradation: plain against residual over training").click()
    page.locator("#train-degradation").click()
    page.locator("#train-degradation-plot .js-plotly-plot").wait_for(timeout=60_000)
    legend = page.locator("#train-degradation-plot .legend").text_content()
    assert "Plain-8 v1 (job" in legend and "ResNet-8 v1 (job" in legend
    # the test app ships no histories, so the note says so rather than comparing anything
    assert "No shipped training histories" in page.locator("#train-degradation-note").inner_text()
    # the last job's model: a real .keras file for the job's last finished epoch
    assert not page.locator("#train-model-file").is_visible()
    page.locator("#train-download").click()
    page.locator("#train-model-file").get_by_text(".keras").first.wait_for(timeout=30_000)
    # named after the net and the job (the last id in the box: either net of the race)
    assert re.search(r"(plain|resnet)8_v1_job-[0-9a-f]{12}", page.locator("#train-model-file").inner_text())
    screenshot("train_stopped")
    # a reloaded page (a new Gradio session) still owns this browser's jobs
    ids = page.locator("#train-jobs textarea, #train-jobs input").first.input_value().split(",")
    page.reload()
    page.get_by_role("tab", name="Train").click()
    page.get_by_text("Your jobs").click()
    for job_id in ids:
        page.locator("#train-jobs-table").get_by_text(job_id.strip()).wait_for(timeout=30_000)
    page.locator("#train-jobs textarea, #train-jobs input").first.fill(ids[0].strip())
    page.locator("#train-download").click()
    page.locator("#train-model-file").get_by_text(".keras").first.wait_for(timeout=30_000)
    # named after the net and the job (the last id in the box: either net of the race)
    assert re.search(r"(plain|resnet)8_v1_job-[0-9a-f]{12}", page.locator("#train-model-file").inner_text())
    screenshot("train_after_reload")
