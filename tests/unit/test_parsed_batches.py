"""The parsed raw batches' cache: by key, least recently used out first, bounded in bytes."""
from __future__ import annotations

import pyarrow as pa

from shared.parquet_archive import ParsedBatches


def tables(rows: int) -> tuple[pa.Table, pa.Table]:
    return pa.table({"id": pa.array(range(rows), pa.int64())}), pa.table({"id": pa.array([], pa.int64())})


def key(name: str) -> tuple[str, str, str]:
    return ("http://127.0.0.1:10000/devstoreaccount1/raw", name, '"0x1"')


def test_a_batch_is_found_under_its_container_name_and_etag_only():
    cache = ParsedBatches(max_bytes=10_000)
    cache.put(key("a"), tables(10))
    assert cache.get(key("a"))[0].num_rows == 10
    assert cache.get(("http://127.0.0.1:10000/devstoreaccount1/raw", "a", '"0x2"')) is None  # rewritten
    assert cache.get(("http://127.0.0.1:10000/devstoreaccount1/other", "a", '"0x1"')) is None


def test_the_least_recently_used_batches_go_first_once_over_the_bound():
    cache = ParsedBatches(max_bytes=3 * 8 * 100)  # three batches of 100 int64s
    for name in "abc":
        cache.put(key(name), tables(100))
    assert cache.get(key("a")) is not None  # a is now the most recently used
    cache.put(key("d"), tables(100))
    assert cache.get(key("b")) is None and len(cache) == 3
    assert all(cache.get(key(n)) is not None for n in "acd")
    assert cache.bytes <= cache.max_bytes


def test_a_batch_bigger_than_the_bound_is_not_kept_and_evicts_nothing():
    cache = ParsedBatches(max_bytes=8 * 100)
    cache.put(key("a"), tables(100))
    cache.put(key("huge"), tables(1000))
    assert cache.get(key("huge")) is None and cache.get(key("a")) is not None and cache.bytes == 800
