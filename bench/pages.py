"""Page load times of the demo storefront and the dashboard in headless Chromium.

On a throwaway stack with the default seeded catalog (1,000 products, 100 offers), each page
is loaded LOADS (20) times in a fresh browser context (an empty cache, like a first visit),
after one warm-up load: the navigation's `load` event (HTML, scripts, styles and the
vendored Chart.js), and the time until the page shows its data (the store's offer banner,
the dashboard's first statistics). The target is under 1 s for both.

Chromium is the OS's (`local/install-chromium.sh`, `CHROMIUM`), driven by Playwright.
"""
from __future__ import annotations

import os
import statistics

from tqdm import tqdm

from bench import seed_catalog

LOADS = int(os.environ.get("BENCH_PAGE_LOADS", "20"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PAGES = {"store": "#offer-banner .offer", "dashboard": "#last-updated:not(:empty)"}
TARGET_SECONDS = 1.0


def _load(browser, url: str, ready: str) -> tuple[float, float]:
    """(seconds to the load event, seconds until `ready` shows) of one visit with an empty cache."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        page.wait_for_selector(ready, timeout=30_000)
        shown = page.evaluate("performance.now()") / 1000
        loaded = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
        return loaded, shown
    finally:
        context.close()


def _summary(name: str, values: list[float]) -> dict:
    ordered = sorted(values)
    return {f"{name}_p50_s": round(statistics.median(ordered), 3),
            f"{name}_p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
            f"{name}_max_s": round(ordered[-1], 3)}


def run(stack) -> dict:
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"no Chromium at {CHROMIUM}: run local/install-chromium.sh or set CHROMIUM")
    from playwright.sync_api import sync_playwright

    seed_catalog(stack)
    stack.up(["host"])
    api = f"http://127.0.0.1:{stack.config.ports.host}/api"
    figures: dict = {"loads": LOADS, "target_s": TARGET_SECONDS}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                for name, ready in PAGES.items():
                    _load(browser, f"{api}/{name}", ready)  # warm-up: the host's first request
                    times = [_load(browser, f"{api}/{name}", ready)
                             for _ in tqdm(range(LOADS), desc=f"{name} page loads", unit="load")]
                    figures.update(_summary(f"{name}_load", [t[0] for t in times]))
                    figures.update(_summary(f"{name}_ready", [t[1] for t in times]))
            finally:
                browser.close()
    finally:
        stack.down(["host"])
    return figures
