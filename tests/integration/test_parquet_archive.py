"""The Parquet archive against Azurite: compaction of closed hours, recompaction of changed ones,
and the training window read from Parquet and the raw archive together."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pyarrow.dataset as ds
import pytest
from azure.storage.blob import BlobServiceClient

from shared import archive
from shared import events as ev
from shared.learning import compaction, dataset
from shared.parquet_archive import ParquetArchive, ParsedBatches

pytestmark = pytest.mark.timeout(120)

H3 = datetime(2026, 11, 22, 3, tzinfo=timezone.utc)
H4 = H3 + timedelta(hours=1)
H5 = H3 + timedelta(hours=2)  # the open hour
NOW = H5 + timedelta(minutes=20)


@pytest.fixture
def blobs(stack) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])


@pytest.fixture
def store(blobs):
    suffix = uuid.uuid4().hex[:10]
    raw, parquet = blobs.create_container(f"raw-{suffix}"), blobs.create_container(f"parquet-{suffix}")
    yield ParquetArchive(blobs, archive.BlobArchive(blobs, raw_container=raw.container_name),
                         container=parquet.container_name, parsed=ParsedBatches())
    raw.delete_container()
    parquet.delete_container()


def shown(user: str, decision: str, at: datetime, offers=("of-1", "of-2")) -> dict:
    data = ev.OfferShownV1(
        decisionId=decision, context={"user": {"segment": "new"}, "hour": at.hour},
        candidates=[ev.Candidate(offerId=o, features={"kind": "deal", "discount": 0.1}) for o in offers],
        chosen=[ev.Chosen(offerId=o, slot=i, probability=0.5) for i, o in enumerate(offers)],
        modelVersion="baseline-1", exploration=ev.Exploration(policy="epsilon-greedy", epsilon=0.2))
    return ev.new(ev.OFFER_SHOWN, user, data, source=ev.OFFERS_SOURCE, id=decision, time=at).to_dict()


def clicked(user: str, decision: str, at: datetime, offer: str = "of-1") -> dict:
    data = ev.OfferClickedV1(offerId=offer, decisionId=decision)
    return ev.new(ev.OFFER_CLICKED, user, data, source="/shop", time=at).to_dict()


def viewed(user: str, at: datetime) -> dict:
    data = ev.ProductViewedV1(productId="p-7", category="books", price=12.5)
    return ev.new(ev.PRODUCT_VIEWED, user, data, source="/shop", time=at).to_dict()


def write(store: ParquetArchive, partition: str, first: int, enqueued: datetime, batch: list[dict]) -> str:
    records = [archive.event_record(partition, first + i, enqueued, e) for i, e in enumerate(batch)]
    return store.raw.write_events(archive.BatchKey(partition, first, enqueued), records)


def fill(store: ParquetArchive) -> dict[datetime, list[dict]]:
    """Two closed hours and the open one, each in batches of two partitions."""
    at = {h: h + timedelta(minutes=10) for h in (H3, H4, H5)}
    batches = {
        H3: [("0", 0, [shown("u-1", "d-1", at[H3]), viewed("u-1", at[H3])]),
             ("1", 0, [clicked("u-1", "d-1", at[H3] + timedelta(seconds=20))])],
        H4: [("0", 2, [shown("u-2", "d-2", at[H4]), shown("u-3", "d-3", at[H4])]),
             ("1", 1, [clicked("u-3", "d-3", at[H4] + timedelta(seconds=5), "of-2"), viewed("u-2", at[H4])])],
        H5: [("0", 4, [shown("u-4", "d-4", at[H5])]), ("1", 3, [viewed("u-4", at[H5])])],
    }
    for hour, parts in batches.items():
        for partition, first, batch in parts:
            write(store, partition, first, hour + timedelta(minutes=15), batch)
    return {hour: [e for _, _, batch in parts for e in batch] for hour, parts in batches.items()}


def names(store: ParquetArchive, prefix: str = "") -> list[str]:
    return sorted(store.container.list_blob_names(name_starts_with=prefix or None))


def ids(events: list[dict]) -> list[str]:
    return sorted(e["id"] for e in events)


def test_closed_hours_are_compacted_once_with_their_manifests(store):
    written = fill(store)
    summary = store.compact(NOW)
    assert summary["hoursCompacted"] == 2
    assert summary["hours"] == ["2026-11-22T03:00:00Z", "2026-11-22T04:00:00Z"]
    assert (summary["events"], summary["decisions"]) == (7, 3)
    assert names(store) == sorted(["_manifests/2026/11/22/03.json", "_manifests/2026/11/22/04.json",
                                   *(compaction.parquet_name(k, h) for k in ("events", "decisions")
                                     for h in (H3, H4))])
    manifest = store.manifest(H4)
    etags = {b.name: b.etag for b in store.raw.raw.list_blobs()}
    assert manifest["sources"] == sorted([n, etags[n]] for n in etags if n.startswith("2026/11/22/04/"))
    assert (manifest["events"], manifest["decisions"], manifest["hour"]) == (4, 2, "2026-11-22T04:00:00Z")
    decisions = compaction.read_parquet(store.container.download_blob(
        compaction.parquet_name("decisions", H4)).readall())
    assert sorted(decisions.column("decisionId").to_pylist()) == ["d-2", "d-3"]
    events = compaction.read_parquet(store.container.download_blob(
        compaction.parquet_name("events", H3)).readall())
    assert sorted(events.column("id").to_pylist()) == ids(written[H3])

    again = store.compact(NOW + timedelta(minutes=10))
    assert (again["hoursCompacted"], again["hours"]) == (0, [])


def test_a_late_batch_makes_its_hour_stale_and_it_is_recompacted(store):
    fill(store)
    store.compact(NOW)
    late = [shown("u-5", "d-5", H3 + timedelta(minutes=59)), viewed("u-5", H3 + timedelta(minutes=59))]
    name = write(store, "2", 7, H3 + timedelta(minutes=59, seconds=58), late)
    summary = store.compact(NOW + timedelta(minutes=1), since=H3)
    assert (summary["hoursCompacted"], summary["hours"]) == (1, ["2026-11-22T03:00:00Z"])
    assert (summary["events"], summary["decisions"]) == (5, 2)
    manifest = store.manifest(H3)
    assert name in [n for n, _ in manifest["sources"]] and manifest["events"] == 5

    write(store, "2", 7, H3 + timedelta(minutes=59, seconds=58), late)  # redelivered: rewritten, a new etag
    assert store.compact(NOW + timedelta(minutes=2))["hours"] == ["2026-11-22T03:00:00Z"]
    assert store.compact(NOW + timedelta(minutes=3))["hoursCompacted"] == 0


def test_the_window_holds_every_event_once_from_parquet_and_the_raw_archive(store):
    written = fill(store)
    store.compact(NOW)
    # H4 gets a batch after compaction (read from raw now); the open hour repeats an H3 event.
    extra = [viewed("u-6", H4 + timedelta(minutes=50))]
    write(store, "2", 9, H4 + timedelta(minutes=51), extra)
    write(store, "2", 10, H5 + timedelta(minutes=1), [written[H3][1]])
    everything = [e for h in (H3, H4, H5) for e in written[h]] + extra

    events, decisions = store.load(H3, NOW)
    assert sorted(events.column("id").to_pylist()) == ids(everything)
    assert sorted(decisions.column("decisionId").to_pylist()) == ["d-1", "d-2", "d-3", "d-4"]
    shown_d4 = decisions.filter(decisions.column("decisionId").to_numpy(zero_copy_only=False) == "d-4")
    assert shown_d4.column("chosenOfferId").to_pylist() == ["of-1"]

    # only some decisions (d-1 and d-3 from Parquet, d-4 from the open hour's raw batches), as the
    # retrain reads the candidates of the decisions it scores
    _, some = store.load(H3, NOW, (), dataset.CANDIDATE_COLUMNS, decision_ids=["d-1", "d-3", "d-4", "d-9"])
    assert sorted(some.column("decisionId").to_pylist()) == ["d-1", "d-3", "d-4"]
    assert some.column_names == list(dataset.CANDIDATE_COLUMNS) and None not in some.column("candidates").to_pylist()
    _, none = store.load(H3, NOW, (), dataset.CANDIDATE_COLUMNS, decision_ids=[])
    assert none.num_rows == 0
    # only product events' columns and no decisions, as the product-affinity step reads them
    products, no_decisions = store.load(H3, NOW, ("id", "type", "userId", "productId", "time"), ())
    assert sorted(products.column("id").to_pylist()) == ids(everything) and no_decisions.num_rows == 0
    assert products.column_names == ["id", "type", "userId", "productId", "time"]

    later, _ = store.load(H4, NOW)  # the window's start excludes H3's events
    assert sorted(later.column("id").to_pylist()) == ids([e for e in everything if e["time"] >= "2026-11-22T04"])

    for blob in store.raw.raw.list_blob_names(name_starts_with="2026/11/22/03/"):
        store.raw.raw.delete_blob(blob)  # H3 is now only in Parquet
    events, _ = store.load(H3, H4)
    assert sorted(events.column("id").to_pylist()) == ids(written[H3])


def test_decisions_read_as_a_hive_partitioned_dataset(store, tmp_path):
    fill(store)
    store.compact(NOW)
    for name in names(store, "decisions/"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.container.download_blob(name).readall())
    table = ds.dataset(tmp_path / "decisions", format="parquet", partitioning="hive").to_table()
    assert {"date", "hour", "decisionId", "time"} <= set(table.column_names)
    rows = sorted(zip(table.column("decisionId").to_pylist(), map(str, table.column("date").to_pylist()),
                      table.column("hour").to_pylist()))
    assert rows == [("d-1", "2026-11-22", 3), ("d-2", "2026-11-22", 4), ("d-3", "2026-11-22", 4)]


def test_a_compacted_hour_is_read_from_its_parquet_files_not_its_raw_batches(store):
    written = fill(store)
    store.compact(NOW)
    name = compaction.parquet_name("events", H4)
    table = compaction.read_parquet(store.container.download_blob(name).readall())
    kept = table.filter(table.column("type").to_numpy(zero_copy_only=False) != ev.PRODUCT_VIEWED)
    store.container.upload_blob(name, compaction.parquet_bytes(kept), overwrite=True)  # the manifest still matches

    events, _ = store.load(H4, H4 + timedelta(minutes=59))
    assert sorted(events.column("id").to_pylist()) == ids([e for e in written[H4] if e["type"] != ev.PRODUCT_VIEWED])


def test_the_open_hours_batches_are_downloaded_once_and_again_only_when_rewritten(store, monkeypatch):
    written = fill(store)
    downloaded: list[str] = []
    read = store.raw.read
    monkeypatch.setattr(store.raw, "read", lambda name, *a, **k: downloaded.append(name) or read(name, *a, **k))
    first_events, first_decisions = store.load(H5, NOW)
    assert sorted(downloaded) == names_of(store, "2026/11/22/05/") and len(store.parsed) == 2

    downloaded.clear()
    again_events, again_decisions = store.load(H5, NOW)  # a later retrain: nothing new in the hour
    assert downloaded == []
    assert again_events.equals(first_events) and again_decisions.equals(first_decisions)

    # a new batch, and a redelivered one rewritten with other content (a new etag): only those two are read
    new = write(store, "2", 5, H5 + timedelta(minutes=16), [viewed("u-8", H5 + timedelta(minutes=16))])
    rewritten = write(store, "0", 4, H5 + timedelta(minutes=15), [shown("u-4", "d-4", H5 + timedelta(minutes=10),
                                                                      offers=("of-3",))])
    downloaded.clear()
    events, decisions = store.load(H5, NOW)
    assert sorted(downloaded) == sorted([new, rewritten])
    assert decisions.column("chosenOfferId").to_pylist() == ["of-3"]
    assert set(ids(written[H5])) < set(events.column("id").to_pylist()) and events.num_rows == 3


def names_of(store: ParquetArchive, prefix: str) -> list[str]:
    return sorted(store.raw.raw.list_blob_names(name_starts_with=prefix))
