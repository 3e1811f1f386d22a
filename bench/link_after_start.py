"""Benchmark: the first visitor of an app that just started. Starts `python app.py`, waits until it
answers HTTP, then `--after` seconds (default 5), opens `/?tab=gradients&depth=110&version=1` in
headless Chromium and prints the seconds until its chart is drawn; `--runs` fresh apps, the
median. Target (issue #32): within 15 s (28 s before the engine).

    python bench/link_after_start.py [--runs 3] [--after 5]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from common import ARCHIVE, app_server

LINK = "/?tab=gradients&depth=110&version=1"
PLOT = "#grad-plot .js-plotly-plot"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh apps, one after the other")
    parser.add_argument("--after", type=float, default=5.0, help="seconds after the app first answers")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = {"EXPLORER_DATA": str(ARCHIVE)} if ARCHIVE.exists() else {}
    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for run in range(args.runs):
            with app_server(**env) as url:
                time.sleep(args.after)
                page = browser.new_page()
                start = time.perf_counter()
                page.goto(url + LINK)
                page.locator(PLOT).wait_for(timeout=300_000)
                times.append(time.perf_counter() - start)
                page.close()
                print(f"run {run + 1}: chart drawn {times[-1]:.1f} s after the link was opened "
                      f"({args.after:.0f} s after the app first answered)", flush=True)
        browser.close()
    print(f"median of {args.runs}: {statistics.median(times):.1f} s (target <= 15 s)")


if __name__ == "__main__":
    main()
