"""Benchmark: opening a link to a Gradient flow view against building the same view by hand
(open the page, pick the tab, type depth and seed, press Measure), in headless Chromium,
alternating, a new seed each time so neither side finds the other's measurement cached.
Target: the link takes no more time than the hand (median ratio hand / link >= 1).

    python bench/links.py [--pairs 3] [--depth 56]
"""

import argparse
import itertools
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import alternate, app_server

TITLE = "() => (document.querySelector('#grad-plot .gtitle') || {}).textContent || ''"


def _drawn(page, depth) -> None:
    """Waits for the chart of the view asked for. Not any chart: the tab opens on its default
    view (ResNet-110, measured at start-up), which a wait for any chart took for the answer
    by hand (sessions 8-19: "by hand" timed the default chart, not the measurement)."""
    page.wait_for_function(f"() => ({TITLE})().startsWith('ResNet-{depth} v1')", timeout=600_000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--depth", type=int, default=56)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    seeds = itertools.count(100)
    with app_server() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])

        def by_link():
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(f"{url}/?tab=gradients&depth={args.depth}&version=1&seed={next(seeds)}")
            _drawn(page, args.depth)
            elapsed = time.perf_counter() - start
            page.close()
            return elapsed

        def by_hand():
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(url)
            page.locator("#arch-plot .js-plotly-plot").wait_for(timeout=600_000)  # the page is ready
            page.get_by_role("tab", name="Gradient flow").click()
            page.locator("#grad-depth input").fill(str(args.depth))
            page.locator("#grad-seed input").fill(str(next(seeds)))
            page.locator("#grad-run").click()
            _drawn(page, args.depth)
            elapsed = time.perf_counter() - start
            page.close()
            return elapsed

        result = alternate("link_s", by_link, "by_hand_s", by_hand, pairs=args.pairs)
        browser.close()
    ratio = result["median_ratio"]
    print(f"by hand takes {ratio:.2f} times the link's time (target >= 1, the link no slower): "
          f"{'met' if ratio >= 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
