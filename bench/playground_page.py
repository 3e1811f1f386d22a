"""Benchmark: the Playground tab in a browser (issue #34). On a settled app (the default pair
compiled ahead: playground_status' default_ready), the seconds from a click on Start to the
first decision boundary drawn, alternating pairs against a Start of settings nobody compiled
ahead (a new seed: build and compile on the worker); then, training a 4-block pair (the
browser test's) and a 32-block one, both width 16, the boundary's redraws a second (the
distinct steps its chart shows in ten seconds). Targets: at most 2 s to the first boundary; at
least 2 redraws a second at 32 blocks; at 4 blocks the issue's ten in ten seconds.

    nice python bench/playground_page.py [--pairs 3] [--seconds 10]

Needs Debian's chromium (CHROMIUM, default /usr/bin/chromium) and Playwright.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import app_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TITLE_JS = "() => document.querySelector('#pg-boundary .js-plotly-plot')?.layout?.title?.text || ''"
BOUNDARY_JS = ("() => (document.querySelector('#pg-boundary .js-plotly-plot')?.data || [])"
               ".some(trace => trace.type === 'heatmap')")


def wait_until_settled(url: str, most: float = 600.0) -> float:
    """Seconds until the app says the default pair is compiled ahead."""
    from gradio_client import Client

    client, start = Client(url, verbose=False), time.perf_counter()
    while not client.predict(api_name="/playground_status")["default_ready"]:
        if time.perf_counter() - start > most:
            raise SystemExit(f"the default pair was not compiled ahead within {most:.0f} s")
        time.sleep(2)
    return time.perf_counter() - start


def first_boundary(browser, url: str, query: str = "") -> float:
    """Opens the tab (a new browser session), clicks Start, returns the seconds until the first
    boundary is drawn; pauses before leaving."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(300_000)
    try:
        page.goto(f"{url}/?tab=playground{query}")
        page.locator("#pg-boundary .js-plotly-plot").wait_for()
        page.wait_for_timeout(1500)  # the link's values set (page load events)
        start = time.perf_counter()
        page.locator("#pg-start").click()
        page.wait_for_function(BOUNDARY_JS, polling=20)
        seconds = time.perf_counter() - start
        page.locator("#pg-pause").click()
        page.locator("#pg-status").get_by_text("paused").first.wait_for()
        return seconds
    finally:
        page.close()


def redraws(browser, url: str, seconds: float, blocks: int) -> dict:
    """Trains a `blocks`-block, width-16 pair and counts the distinct steps its boundary chart
    shows in `seconds`; also the pair steps a second the page reports."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(300_000)
    try:
        page.goto(f"{url}/?tab=playground&blocks={blocks}&width=16")
        page.wait_for_function("() => document.querySelector('#pg-blocks input[type=number]')"
                               f"?.value === '{blocks}'")
        page.locator("#pg-start").click()
        page.wait_for_function(f"() => /\\(step [1-9]/.test(({TITLE_JS})())")
        seen, start = set(), time.perf_counter()
        while time.perf_counter() - start < seconds:
            seen.add(page.evaluate(TITLE_JS))
            page.wait_for_timeout(50)
        status = page.locator("#pg-status").inner_text()
        page.locator("#pg-pause").click()
        page.locator("#pg-status").get_by_text("paused").first.wait_for()
        found = re.search(r"(\d+) pair steps/s", status)
        return {"redraws": len(seen), "seconds": seconds, "per_second": round(len(seen) / seconds, 2),
                "pair_steps_per_s": int(found.group(1)) if found else None}
    finally:
        page.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = {"EXPLORER_DATA": "synthetic", "EXPLORER_RUNS": str(Path("/tmp") / f"pg-bench-{os.getpid()}")}
    with app_server(**env) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        print(f"settled after {wait_until_settled(url):.1f} s (the default pair compiled ahead)", flush=True)
        warm, cold = [], []
        for pair in range(args.pairs):
            warm.append(first_boundary(browser, url))
            cold.append(first_boundary(browser, url, f"&seed={100 + pair}"))
            print(f"pair {pair + 1}: first boundary after Start {warm[-1]:.2f} s (default, compiled ahead)   "
                  f"{cold[-1]:.2f} s (new seed, compiled on Start)", flush=True)
            wait_until_settled(url)  # the next default Start finds its pair compiled again
        live = {f"redraws_{blocks}_blocks": redraws(browser, url, args.seconds, blocks) for blocks in (4, 32)}
        print(json.dumps({"first_boundary_s": {"compiled_ahead_median": round(statistics.median(warm), 2),
                                               "compiled_on_start_median": round(statistics.median(cold), 2),
                                               "compiled_ahead": [round(v, 2) for v in warm],
                                               "compiled_on_start": [round(v, 2) for v in cold]},
                          **live}))
        browser.close()


if __name__ == "__main__":
    main()
