"""The Parquet archive's rules: raw hours, closed hours, which hours need compacting, Parquet bytes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from shared.learning import compaction, dataset
from tests import eventfactory as f

H5 = datetime(2026, 11, 22, 5, tzinfo=timezone.utc)
H6 = H5 + timedelta(hours=1)
A = ("2026/11/22/05/0-0.jsonl", '"0x1"')
B = ("2026/11/22/05/1-40.jsonl.gz", '"0x2"')
C = ("2026/11/22/06/0-17.jsonl", '"0x3"')


def test_hour_of_a_raw_name_is_its_utc_hour():
    assert compaction.hour_of("2026/11/22/05/0-12.jsonl") == H5
    assert compaction.hour_of("2026/01/02/23/p-1.jsonl.gz") == datetime(2026, 1, 2, 23, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        compaction.hour_of("events/2026-11-22/0-1.jsonl")


def test_an_hour_is_closed_five_minutes_after_its_end():
    assert not compaction.closed(H5, H5 + timedelta(minutes=30))
    assert not compaction.closed(H5, H6 + timedelta(minutes=4, seconds=59))
    assert compaction.closed(H5, H6 + timedelta(minutes=5))
    assert compaction.closed(H5, H6.replace(tzinfo=None) + timedelta(hours=1))  # naive is UTC
    assert not compaction.closed(H5, H6.astimezone(timezone(timedelta(hours=2))))  # 08:00+02:00 is 06:00Z, in the grace period


def test_names_of_the_layout():
    assert compaction.parquet_name("events", H5) == "events/date=2026-11-22/hour=05/part-0.parquet"
    assert compaction.parquet_name("decisions", H5) == "decisions/date=2026-11-22/hour=05/part-0.parquet"
    assert compaction.manifest_name(H5 + timedelta(minutes=12)) == "_manifests/2026/11/22/05.json"
    assert compaction.manifest_hour("_manifests/2026/11/22/05.json") == H5
    assert compaction.day_prefixes(H5 - timedelta(days=1), H5) == ["2026/11/21/", "2026/11/22/"]


def test_sources_group_by_hour_and_skip_foreign_names():
    grouped = compaction.by_hour([C, B, ("notes.txt", "x"), A])
    assert grouped == {H5: [A, B], H6: [C]}


def test_stale_hours_are_closed_hours_with_no_or_another_manifest():
    now = H6 + timedelta(hours=1, minutes=5)  # 05 and 06 closed
    raw = {H5: [A, B], H6: [C]}
    assert compaction.stale_hours(raw, {}, now) == [H5, H6]  # missing manifests
    done = {H5: compaction.manifest(H5, [B, A], 3, 1, now), H6: compaction.manifest(H6, [C], 1, 0, now)}
    assert compaction.stale_hours(raw, done, now) == []
    changed = {H5: [A, (B[0], '"0x9"')], H6: [C]}  # batch B rewritten
    assert compaction.stale_hours(changed, done, now) == [H5]
    late = {H5: [A, B], H6: [C, ("2026/11/22/06/1-3.jsonl", '"0x4"')]}  # a late batch in 06
    assert compaction.stale_hours(late, done, now) == [H6]


def test_the_open_hour_and_the_grace_period_are_never_stale():
    raw = {H5: [A], H6: [C]}
    assert compaction.stale_hours(raw, {}, H6 + timedelta(minutes=4)) == []
    assert compaction.stale_hours(raw, {}, H6 + timedelta(minutes=5)) == [H5]


def test_a_listed_digest_matches_like_the_manifest_it_came_from():
    written = compaction.manifest(H5, [A, B], 3, 1, H6)
    listed = {"sourcesDigest": written["sourcesDigest"]}
    assert compaction.current(listed, [B, A])
    assert not compaction.current(listed, [A])
    assert not compaction.current({"sourcesDigest": None}, [A])
    assert written["sources"] == [list(A), list(B)] and written["hour"] == "2026-11-22T05:00:00Z"


def _records():
    base = f.BASE
    return [f.shown("u-1", "d-1", ("of-1", "of-2"), time=base),
            f.clicked("u-1", "d-1", "of-2", time=base + timedelta(seconds=30)),
            f.view("u-2", "books", "p-7", time=base + timedelta(seconds=40)),
            f.shown("u-2", "d-2", ("of-3",), time=base + timedelta(seconds=50))]


def test_parquet_bytes_are_deterministic_and_compressed_with_zstd():
    import pyarrow.parquet as pq

    first = compaction.parquet_bytes(dataset.tables(_records())[1])
    assert first == compaction.parquet_bytes(dataset.tables(_records())[1])
    column = pq.ParquetFile(pa.BufferReader(first)).metadata.row_group(0).column(0)
    assert column.compression == "ZSTD"


def test_tables_round_trip_through_parquet_with_their_schemas():
    events, decisions = dataset.tables(_records())
    for table, schema in ((events, dataset.EVENTS_SCHEMA), (decisions, dataset.DECISIONS_SCHEMA)):
        back = compaction.read_parquet(compaction.parquet_bytes(table))
        assert back.schema.equals(schema)
        assert back.equals(table)
    some = compaction.read_parquet(compaction.parquet_bytes(decisions), columns=["decisionId", "time"])
    assert some.column_names == ["decisionId", "time"] and some.column("decisionId").to_pylist() == ["d-1", "d-2"]


def test_an_older_file_conforms_to_the_current_schema():
    events, _ = dataset.tables(_records())
    older = events.drop_columns(["value"]).append_column("extra", pa.array([1] * events.num_rows))
    conformed = compaction.conform(older, dataset.EVENTS_SCHEMA)
    assert conformed.schema.equals(dataset.EVENTS_SCHEMA)
    assert conformed.column("value").null_count == events.num_rows
    assert conformed.column("id").to_pylist() == events.column("id").to_pylist()


def test_unique_by_keeps_the_first_row_of_each_key_in_order():
    table = pa.table({"id": ["a", "b", "a", "c", "b"], "n": [1, 2, 3, 4, 5]})
    assert compaction.unique_by(table, "id").column("n").to_pylist() == [1, 2, 4]


def test_between_keeps_rows_in_the_closed_window():
    events, _ = dataset.tables(_records())
    picked = compaction.between(events, f.BASE + timedelta(seconds=30), f.BASE + timedelta(seconds=40))
    assert picked.column("type").to_pylist() == ["offerloop.offer.clicked", "offerloop.product.viewed"]
