"""The Playground tab in a browser (issue #34): Start draws a first boundary, the boundary is
redrawn ten times while the twins train (the seconds printed; the rate is the bench's), Pause
stops it, the depth sweep draws; the link sets the controls; desktop and phone screenshots
(look at them)."""

import re
import time

import pytest

from explorer.views.charts import PLAIN_COLOR, RESIDUAL_COLOR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# the bar: the boundary changes ten times while the twins train. The test counts the
# seconds those ten redraws take and prints them; it fails only when the redraws stall
# (STALL_SECONDS). The rate itself is a benchmark's (`bench/playground_page.py`, which prints the
# redraws a second): CI's load (two apps, their workers and two browsers on two cores) drew 7 in
# ten seconds, the bench's settled app 2.4 a second at 32 blocks
MIN_REDRAWS = 10
STALL_SECONDS = 60

TITLE_JS = ("() => { const plot = document.querySelector('#pg-boundary .js-plotly-plot');"
            " return plot && plot.layout && plot.layout.title ? plot.layout.title.text : ''; }")
HAS_BOUNDARY_JS = ("() => { const plot = document.querySelector('#pg-boundary .js-plotly-plot');"
                   " return !!plot && !!plot.data && plot.data.some(trace => trace.type === 'heatmap'); }")


def _drawn_step(page) -> int | None:
    """The step in the boundary chart's title (the figure Plotly has drawn), None before any."""
    found = re.search(r"\(step ([\d,]+)\)", page.evaluate(TITLE_JS))
    return int(found.group(1).replace(",", "")) if found else None


def _status_step(page) -> int | None:
    found = re.search(r"Step ([\d,]+)", page.locator("#pg-status").inner_text())
    return int(found.group(1).replace(",", "")) if found else None


def _start_small(page, fill_and_keep, blocks="4"):
    fill_and_keep(page.locator("#pg-blocks input[type=number]"), blocks)
    page.locator("#pg-start").click()
    page.wait_for_function(HAS_BOUNDARY_JS, timeout=180_000)  # the first boundary (a compile if not warm)


def test_start_redraws_live_pause_stops_and_the_sweep_draws(page, screenshot, fill_and_keep):
    page.get_by_role("tab", name="Playground").click()
    page.locator("#pg-boundary .js-plotly-plot").wait_for()  # the points, before any training
    assert "press Start" in page.evaluate(TITLE_JS)
    _start_small(page, fill_and_keep)
    # training has begun (past the compile): then count the redraws of the boundary for ten seconds
    page.wait_for_function(f"() => /\\(step [1-9]/.test(({TITLE_JS})())", timeout=120_000)
    seen, start = {_drawn_step(page)}, time.monotonic()
    while len(seen) < MIN_REDRAWS and time.monotonic() - start < STALL_SECONDS:
        page.wait_for_timeout(100)
        seen.add(_drawn_step(page))
    seconds = time.monotonic() - start
    print(f"the boundary drawn at {len(seen)} steps in {seconds:.1f} s: {sorted(seen)}")
    assert len(seen) >= MIN_REDRAWS, f"redraws stalled: {len(seen)} steps in {seconds:.0f} s: {sorted(seen)}"
    assert "tab=playground" in page.url and "blocks=4" in page.url  # the address bar follows the settings
    screenshot("playground_training")
    page.locator("#pg-pause").click()
    page.locator("#pg-status").get_by_text("paused").first.wait_for(timeout=90_000)
    stopped, drawn = _status_step(page), _drawn_step(page)
    page.wait_for_timeout(2_000)
    assert _status_step(page) == stopped and _drawn_step(page) == drawn == stopped  # nothing moves
    # the curves and the strip are the twins', in the app's colours
    colors = page.evaluate("() => Object.fromEntries(document.querySelector('#pg-loss .js-plotly-plot')"
                           ".data.map(trace => [trace.name, trace.line.color]))")
    assert colors["plain, train"] == PLAIN_COLOR and colors["residual, train"] == RESIDUAL_COLOR
    rows = page.evaluate("() => document.querySelector('#pg-gradients .js-plotly-plot').data[0].y")
    assert rows == ["Plain net", "Residual net"]
    screenshot("playground_paused")
    # the depth sweep, small
    page.get_by_text("Depth sweep: final training loss against depth").click()
    fill_and_keep(page.locator("#pg-sweep-depths textarea, #pg-sweep-depths input").first, "1,4")
    fill_and_keep(page.locator("#pg-sweep-steps input"), "40")
    page.locator("#pg-sweep-run").click()
    page.locator("#pg-sweep-reading").get_by_text("What the sweep measured").wait_for(timeout=180_000)
    sweep = page.evaluate("() => document.querySelector('#pg-sweep-plot .js-plotly-plot').data"
                          ".map(trace => [trace.name, trace.x, trace.line.color])")
    assert ["Plain net", [1, 4], PLAIN_COLOR] in sweep and ["Residual net", [1, 4], RESIDUAL_COLOR] in sweep
    page.locator("#pg-sweep-plot").scroll_into_view_if_needed()
    screenshot("playground_sweep")


def test_a_link_sets_the_playground_and_it_trains_on_a_phone(phone_page, app_url):
    page = phone_page
    page.goto(f"{app_url}/?tab=playground&data=moons&blocks=3&norm=layer&features=x,y,xy")
    page.wait_for_function("() => document.querySelector('#pg-blocks input[type=number]')?.value === '3'")
    assert page.locator("#pg-data input").input_value() == "moons"
    assert page.locator("#pg-features input[type=checkbox]").nth(2).is_checked()  # x·y
    page.locator("#pg-start").click()
    page.wait_for_function(HAS_BOUNDARY_JS, timeout=180_000)
    page.wait_for_function(f"() => /\\(step [1-9]/.test(({TITLE_JS})())", timeout=120_000)
    page.locator("#pg-pause").click()
    page.locator("#pg-status").get_by_text("paused").first.wait_for(timeout=90_000)
    box = page.locator("#pg-boundary").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1  # the chart fits the screen
    from conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "phone_playground.png"), full_page=True)


def test_the_api_scripts_the_playground(app_url):
    """gradio_client drives the same session: start, status, stop, step, reset, the sweep,
    and a bad value gets its bound in words."""
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    small = dict(blocks=2, width=8, points=100, batch_size=16, seed=3)
    state = client.predict(**small, api_name="/playground_start")
    assert state["state"] in ("starting", "training") and state["settings"]["blocks"] == 2
    deadline = time.monotonic() + 180
    while not (state["step"] or 0) > 0:
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
        state = client.predict(api_name="/playground_status")
    assert set(state["plain"]) >= {"train_loss", "test_loss", "train_accuracy", "gradient_norms"}
    assert len(state["residual"]["gradient_norms"]) == 2
    stopped = client.predict(api_name="/playground_stop")
    assert stopped["state"] == "paused" and stopped["ended"] == "paused"
    stepped = client.predict(steps=5, api_name="/playground_step")
    assert stepped["state"] == "paused" and stepped["step"] == stopped["step"] + 5  # from where it stopped
    assert client.predict(api_name="/playground_reset")["step"] == 0
    sweep = client.predict(depths="1,2", steps=5, width=8, points=100, batch_size=16,
                           api_name="/playground_sweep")
    assert [(row["blocks"], row["net"]) for row in sweep["rows"]] == [
        (1, "residual"), (1, "plain"), (2, "residual"), (2, "plain")]
    assert "What the sweep measured" in sweep["reading"]
    with pytest.raises(Exception, match="blocks must be a whole number from 1 to 128"):
        client.predict(blocks=500, api_name="/playground_start")
