"""The demo storefront and the dashboard in headless Chromium, against the suite's host.

A shopper opens the store, views three products of one category and sees the offer banner
move toward that category; clicks an offer and sees the dashboard's click count rise. Neither
page logs a console error. Screenshots of both pages go to test-results/screenshots/.

Chromium is the OS's (`local/install-chromium.sh`, `CHROMIUM`), driven by Playwright; no
browser is downloaded. Without it the tests are skipped, except under CI, where they fail.
"""
from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pytest

from shared import events as ev

from .offers_world import seeded  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(300)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
BANNER = "#offer-banner .offer"
WAIT_SECONDS = 45  # events reach the profile and the statistics through Event Hubs and the ingest


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        message = f"no Chromium at {CHROMIUM} (local/install-chromium.sh installs it; CHROMIUM overrides the path)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page and what went wrong on it: console errors, uncaught exceptions, failed requests."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}"))


@pytest.fixture
def pages(browser) -> Iterator[Callable[[], Watched]]:
    contexts = []

    def new() -> Watched:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return Watched(context.new_page())

    yield new
    for context in contexts:
        context.close()


def eventually(probe: Callable[[], object], seconds: float = WAIT_SECONDS, every: float = 1.0):
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def banner(page) -> list[dict]:
    return page.eval_on_selector_all(BANNER, "els => els.map(e => ({id: e.dataset.offerId, "
                                             "category: e.dataset.category || null, kind: e.dataset.kind}))")


def load_seconds(page) -> float:
    timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
    return json.loads(timing)["loadEventEnd"] / 1000


def test_viewing_a_category_moves_the_banner_and_a_click_reaches_the_dashboard(api, seeded, pages):  # noqa: F811
    store = pages()
    store.page.goto(f"{api}/store", wait_until="load")
    store_load = load_seconds(store.page)
    store.page.wait_for_selector(BANNER, timeout=15_000)
    catalog = json.loads(store.page.inner_text("#catalog"))
    before = banner(store.page)
    assert before and all(o["id"] for o in before)

    # The category to view: one with category-bound offers that the banner does not lead with yet.
    offer_categories = Counter(o["category"] for o in catalog["offers"] if o.get("category"))
    shown = Counter(o["category"] for o in before)
    category = min(offer_categories, key=lambda c: (shown[c], -offer_categories[c], c))
    products = [p for p in catalog["products"] if p["category"] == category]
    assert len(products) >= 3

    store.page.click(f".category-tab[data-category='{category}']")
    for product in products[:3]:
        store.page.click(f".product-card[data-product-id='{product['id']}']")
        store.page.wait_for_selector(f"#product-page[data-product-id='{product['id']}']", timeout=10_000)
        store.page.wait_for_selector(BANNER, timeout=10_000)
        store.page.go_back()
        store.page.wait_for_selector(".product-card", timeout=10_000)

    def moved() -> list[dict]:
        store.page.reload(wait_until="load")
        store.page.wait_for_selector(BANNER, timeout=10_000)
        now = banner(store.page)
        return now if sum(o["category"] == category for o in now) > shown[category] \
            and now[0]["category"] == category else []

    after = eventually(moved, every=2.0)
    assert after, f"the banner never moved toward {category}: before {before}, now {banner(store.page)}"

    dashboard = pages()
    dashboard.page.goto(f"{api}/dashboard", wait_until="load")
    dashboard_load = load_seconds(dashboard.page)
    clicks = dashboard.page.locator("#total-clicks")
    assert eventually(lambda: clicks.inner_text().strip().replace(",", "").isdigit(), seconds=15)
    clicks_before = int(clicks.inner_text().replace(",", ""))

    first = store.page.locator(BANNER).first
    clicked_id = first.get_attribute("data-offer-id")
    with store.page.expect_request(lambda r: r.url.endswith("/api/events") and r.method == "POST") as posted:
        first.click()
    sent = json.loads(posted.value.post_data)
    assert [(e["type"], e["data"]["offerId"]) for e in sent] == [(ev.OFFER_CLICKED, clicked_id)]

    risen = eventually(lambda: int(clicks.inner_text().replace(",", "") or 0) > clicks_before)
    assert risen, f"the dashboard's click count stayed at {clicks.inner_text()}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    store.page.screenshot(path=str(SCREENSHOTS / "store.png"), full_page=True)
    dashboard.page.wait_for_timeout(2500)  # one more poll, so the charts show the click
    dashboard.page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    assert (SCREENSHOTS / "store.png").stat().st_size > 10_000
    assert (SCREENSHOTS / "dashboard.png").stat().st_size > 10_000
    print(f"\npages: store loaded in {store_load:.3f} s, dashboard in {dashboard_load:.3f} s; "
          f"banner {[o['category'] for o in before]} -> {[o['category'] for o in after]} after viewing {category}; "
          f"clicks {clicks_before} -> {clicks.inner_text()}; screenshots in {SCREENSHOTS}")

    assert store.errors == [] and dashboard.errors == []
