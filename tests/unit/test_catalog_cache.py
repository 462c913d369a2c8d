"""The in-memory catalog: loaded once, refreshed in the background, kept when a refresh fails."""

from shared import catalog_cache
from shared.catalog_cache import CatalogCache, build_snapshot
from tests.waiting import wait_until

OFFER = {"id": "o1", "title": "t", "kind": "free_shipping", "minBasket": 50,
         "validFrom": "2026-01-01T00:00:00Z", "validTo": "2036-01-01T00:00:00Z", "rules": {}}


class Loader:
    def __init__(self):
        self.calls = 0
        self.failing = False
        self.offers = [OFFER]

    def __call__(self):
        self.calls += 1
        if self.failing:
            raise ConnectionError("cosmos is down")
        return build_snapshot([{"id": "p1", "category": "books"}], self.offers,
                              [{"id": "u1", "segment": "student"}])


def test_the_first_get_loads_and_later_gets_answer_from_memory():
    loader = Loader()
    cache = CatalogCache(loader, refresh_seconds=60)
    try:
        first = cache.get()
        assert cache.get() is first and loader.calls == 1
        assert [o.id for o in first.offers] == ["o1"] and first.users["u1"].segment == "student"
        assert first.fallback(None) == ["o1"]
    finally:
        cache.close()


def test_the_background_refresh_replaces_the_snapshot():
    loader = Loader()
    cache = CatalogCache(loader, refresh_seconds=0.05)
    try:
        cache.get()
        loader.offers = [OFFER, {**OFFER, "id": "o2"}]
        assert wait_until(lambda: len(cache.get().offers) == 2)
    finally:
        cache.close()


def test_a_failed_refresh_keeps_the_previous_snapshot():
    loader = Loader()
    cache = CatalogCache(loader, refresh_seconds=60)
    try:
        before = cache.get()
        loader.failing = True
        assert cache.refresh() is False and cache.get() is before and cache.failures == 1
    finally:
        cache.close()


def test_a_failed_first_load_answers_empty_and_retries_soon(monkeypatch):
    monkeypatch.setattr(catalog_cache, "EMPTY_RETRY_SECONDS", 0.05)
    loader = Loader()
    loader.failing = True
    cache = CatalogCache(loader, refresh_seconds=60)
    try:
        assert cache.get().is_empty
        loader.failing = False
        assert wait_until(lambda: not cache.get().is_empty)
    finally:
        cache.close()


def test_documents_that_do_not_parse_are_skipped():
    snapshot = build_snapshot([], [OFFER, {"id": "bad", "kind": "bundle"}], [])
    assert [o.id for o in snapshot.offers] == ["o1"]
