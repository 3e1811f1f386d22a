"""Screenshots of the app on the shipped checkpoints for the README: the Train tab's
degradation view and the Insight lab's lesion study (2,000 test images), in Chromium.

    python docs/screenshots.py [--data ../shared/data/cifar10-jpeg.tar.gz]

Needs Debian's chromium and the archive; prints the lesion reading shown on the page (the
same numbers as `python -m explorer lesion ... --compare ... --samples 2000`).
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from common import app_server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/cifar10-jpeg.tar.gz")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    log = Path(tempfile.gettempdir()) / "screenshots_app.log"  # the app's output, should it fail
    with app_server(log, EXPLORER_DATA=args.data, EXPLORER_RUNS=tempfile.mkdtemp()) as url, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Train").click()
        page.get_by_text("Degradation: plain against residual over training").click()
        page.locator("#train-degradation-plot .js-plotly-plot").wait_for(timeout=120_000)
        page.wait_for_timeout(1500)
        page.locator("#train-degradation-plot").screenshot(path=str(ROOT / "docs" / "degradation.png"))
        page.get_by_role("tab", name="Insight lab").click()  # opens on the shipped pair
        page.locator("#ins-lesion-samples input").fill("2000")
        page.locator("#ins-lesion").click()
        page.locator("#ins-lesion-plot .js-plotly-plot").wait_for(timeout=600_000)
        page.wait_for_timeout(1500)
        page.locator("#ins-lesion-plot").screenshot(path=str(ROOT / "docs" / "lesion.png"))
        print(page.locator("#ins-lesion-text").inner_text())
        browser.close()


if __name__ == "__main__":
    main()
