"""GET /api/stats's reads against the local Cosmos DB server and Azurite: the live ingest's offer
statistics and traffic read back by hour, and the retrain reports newest first."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from azure.storage.blob import BlobServiceClient

from local.provision import provision
from shared import archive, cosmos, events, ingest, model_store, projection_store, projections, resources, settings
from shared import stats, stats_store
from tests import eventfactory as ef

pytestmark = pytest.mark.timeout(180)

DATABASE = "statstest"  # its own database: the hours and partitions below are not shared with other tests


@pytest.fixture(scope="module")
def config(stack):
    values = {**stack.settings, "COSMOS_DATABASE": DATABASE}
    provision(values)
    return settings.load(values)


def database(config):
    return cosmos.database(config.cosmos, config.cosmos_database)


def ingest_live(config, blob_container, raws: list[dict], partition: str, size: int) -> list[ingest.Report]:
    """`raws` through the real ingest path (archive in a throwaway container), in batches of `size`."""
    blobs = BlobServiceClient.from_connection_string(config.storage.connection_string)
    ports = ingest.Ports(
        archive=archive.BlobArchive(blobs, raw_container=blob_container.container_name,
                                    dead_letter_container=blob_container.container_name),
        profiles=projection_store.profiles(config), offer_stats=projection_store.offer_stats(config),
        traffic_stats=projection_store.traffic_stats(config))
    enqueued = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
    messages = [ingest.Message(json.dumps(r).encode(), partition, i, enqueued) for i, r in enumerate(raws)]
    reports = [ingest.ingest(messages[i:i + size], ports) for i in range(0, len(messages), size)]
    reports.append(ingest.ingest(messages[size:2 * size + 5], ports))  # a redelivery with other boundaries
    return reports


def test_the_live_documents_of_the_windows_hours_read_back_as_the_replay_says(config, container):
    tag = uuid.uuid4().hex[:6]
    raws = ef.workload(400, 6, seed=40, with_shown=True, hours=3, prefix=f"st-{tag}",
                       offers=tuple(f"of-{tag}-{i}" for i in range(5)))
    reports = ingest_live(config, container, raws, partition="5", size=60)
    assert reports[-1].traffic_stats_written == 0 and reports[-1].offer_stats_written == 0  # nothing twice
    replayed = projections.replay([projections.Delivered("5", i, events.parse(r)) for i, r in enumerate(raws)])

    first, last = "2026-11-22T03:00:00Z", "2026-11-22T04:00:00Z"
    offer_reader = stats_store.hours_reader(database(config).get_container_client(resources.OFFER_STATS),
                                            stats_store.OFFER_STATS_QUERY)
    traffic_reader = stats_store.hours_reader(database(config).get_container_client(resources.TRAFFIC_STATS),
                                              stats_store.TRAFFIC_QUERY)
    offer_docs = [d for d in offer_reader(first, last) if d["offerId"].startswith(f"of-{tag}-")]
    traffic_docs = [d for d in traffic_reader(first, last) if d["partition"] == "5"]
    want_offers = [d for d in replayed.offer_stats.values() if first <= d["hour"] <= last]
    assert {d["hour"] for d in replayed.offer_stats.values()} > {first, last}  # a later hour exists, not read
    assert sorted(offer_docs, key=lambda d: (d["offerId"], d["hour"])) == sorted(
        ({k: d[k] for k in ("offerId", "hour", "byMinute")} for d in want_offers),
        key=lambda d: (d["offerId"], d["hour"]))  # only what the dashboard uses
    assert sorted(traffic_docs, key=lambda d: d["hour"]) == [
        {k: d[k] for k in ("hour", "partition", "byMinute")}
        for d in sorted(replayed.traffic_stats.values(), key=lambda d: d["hour"]) if first <= d["hour"] <= last]
    assert sum(m["events"] for d in traffic_docs for m in d["byMinute"].values()) == sum(
        1 for r in raws if first <= ef.hour(r["time"]) <= last)

    now = datetime(2026, 11, 22, 4, 59, 30, tzinfo=timezone.utc)
    window = stats.Window.ending(now, 120)
    assert window.hours() == (first, last)
    read = stats.build(window, offer_docs, traffic_docs, [], [], {}, now)
    assert read == stats.build(window, want_offers, [d for d in replayed.traffic_stats.values()], [], [], {}, now)
    assert read["totals"]["impressions"] > 0 and read["totals"]["events"] > 0


def test_a_missing_container_is_unavailable_not_a_crash(config):
    reader = stats_store.hours_reader(database(config).get_container_client(f"gone-{uuid.uuid4().hex[:6]}"),
                                      stats_store.TRAFFIC_QUERY)
    with pytest.raises(stats.Unavailable, match="Cosmos DB container gone-"):
        reader("2026-11-22T03:00:00Z", "2026-11-22T04:00:00Z")


def retrain_report(at: datetime, n: int) -> dict:
    stamp = at.isoformat().replace("+00:00", "Z")
    return {"version": f"m{n:02d}", "trainedAt": stamp, "promoted": n % 2 == 0, "reason": f"report {n}",
            "current": "baseline-1", "evaluation": {"candidate": {"dr": {"estimate": 0.1, "low": 0.05, "high": 0.15}},
                                                    "current": {"dr": {"estimate": 0.08, "low": 0.06, "high": 0.1}}}}


def test_the_newest_retrain_reports_are_read_newest_first_and_new_ones_are_found(container):
    registry = model_store.BlobRegistry(container)
    start = datetime(2026, 11, 21, 20, tzinfo=timezone.utc)
    for n in range(23):  # over two days, every half hour
        registry.keep_report(retrain_report(start + timedelta(minutes=30 * n), n))
    model_store.BlobRegistry(container, prefix="personalizer/").keep_report(
        retrain_report(start + timedelta(days=1), 99))  # the other loop's: not shown
    container.upload_blob(f"{model_store.REPORTS}2026-11-22T090000Z-broken.json", b"{not json")
    clock, today = [0.0], [date(2026, 11, 22)]
    reader = stats_store.ReportReader(container, monotonic=lambda: clock[0], today=lambda: today[0])

    newest = reader.newest()
    assert [r["version"] for r in newest] == [f"m{n:02d}" for n in range(22, 3, -1)]  # 20 names, one unreadable
    registry.keep_report(retrain_report(datetime(2026, 11, 23, 0, 5, tzinfo=timezone.utc), 23))
    assert reader.newest() is newest  # not looked for again within the refresh interval
    clock[0], today[0] = 10.0, date(2026, 11, 23)
    assert [r["version"] for r in reader.newest()][:2] == ["m23", "m22"]
    assert stats.promotion(reader.newest()[0])["current"] == {"version": "baseline-1", "estimate": 0.08,
                                                             "low": 0.06, "high": 0.1}


def test_the_composed_service_answers_from_the_stack(config, container, monkeypatch):
    from shared import bootstrap

    tag = uuid.uuid4().hex[:6]
    offer_id, user = f"of-{tag}", f"u-{tag}"
    database(config).get_container_client(resources.OFFERS).upsert_item(
        {"id": offer_id, "title": "Ten percent off books", "kind": "category_discount", "category": "books",
         "validFrom": "2026-01-01T00:00:00Z", "validTo": "2036-01-01T00:00:00Z", "discountPercent": 10})
    seen = datetime.now(timezone.utc) - timedelta(seconds=1)
    ingest_live(config, container, [ef.shown(user, f"d-{tag}", (offer_id,), "m-live", time=seen),
                                    ef.clicked(user, f"d-{tag}", offer_id, time=seen)], partition="6", size=10)
    made = (bootstrap.stats_answers, bootstrap._catalog_cache, bootstrap.simulation_ports)
    for cached in made:
        cached.cache_clear()
    monkeypatch.setattr(bootstrap, "app_settings", lambda: config)
    try:
        body = bootstrap.stats_answers().get(5)
        assert bootstrap.stats_answers().get(5) is body  # kept for the next poll
    finally:
        bootstrap.catalog_cache().close()
        for cached in made:
            cached.cache_clear()
    assert set(body) == {"generatedAt", "from", "to", "bucketSeconds", "totals", "eventsPerSecond", "series",
                         "byModel", "byKind", "offers", "promotions", "simulation"}
    assert len(body["series"]) == 5 and body["totals"]["events"] >= 2
    mine = next(o for o in body["offers"] if o["offerId"] == offer_id)
    series = mine.pop("series")
    assert mine == {"offerId": offer_id, "title": "Ten percent off books", "kind": "category_discount",
                    "category": "books", "impressions": 1, "clicks": 1, "ctr": 1.0}
    assert sum(s["impressions"] for s in series) == 1 and series[0]["time"] in {s["time"] for s in body["series"]}
    assert any(m["version"] == "m-live" for m in body["byModel"]) and "state" in body["simulation"]
