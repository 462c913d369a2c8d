"""The related-products table in Azurite: saved, read back whole, then only when it changed."""
from __future__ import annotations


import pytest

from shared import affinity
from shared.affinity import AffinityParams, Interactions
from shared.affinity_store import RelatedCache, RelatedStore

pytestmark = pytest.mark.timeout(60)


def table(version: str):
    rows = [(f"u{i}", "a", 1, 0) for i in range(3)] + [(f"u{i}", "b", 1, 0) for i in range(2)] + [("u0", "c", 1, 0)]
    return affinity.fit(Interactions.of(rows), AffinityParams()).related({"u0": "student"}, version)


def test_a_saved_table_reads_back_and_an_unchanged_one_is_not_downloaded_again(container):
    store = RelatedStore(container)
    assert store.load() == (None, None)  # none yet
    store.save(table("v1"))
    loaded, etag = store.load()
    assert loaded.version == "v1" and loaded.of("a") == table("v1").of("a") and etag
    assert store.load(etag) == (None, etag)  # 304: not modified
    store.save(table("v2"))
    again, newer = store.load(etag)
    assert again.version == "v2" and newer != etag


def test_the_cache_keeps_the_table_through_a_corrupt_blob_and_drops_it_when_deleted(container):
    clock = [0.0]
    store = RelatedStore(container)
    cache = RelatedCache(store, refresh_seconds=10, monotonic=lambda: clock[0])
    assert cache.get() is None
    store.save(table("v1"))
    assert cache.get() is None  # not looked for again within refresh_seconds
    clock[0] = 10
    assert cache.get().version == "v1"
    container.upload_blob(store.name, b"not a table", overwrite=True)
    clock[0] = 20
    assert cache.get().version == "v1" and "unreadable" in cache.error
    container.delete_blob(store.name)
    clock[0] = 30
    assert cache.get() is None and cache.error is None
