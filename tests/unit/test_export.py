"""The BI export's tables and files (shared/export.py) from sample documents, over in-memory ports."""
from __future__ import annotations

import io
import json
import re
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ops import export as export_command
from shared import export as bi
from shared.learning import compaction, dataset
from tests import eventfactory as ef

DAY1 = datetime(2026, 11, 21, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
NOW = DAY2 + timedelta(hours=14, minutes=30)
WINDOW = bi.Window(DAY1, NOW)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "export.md"

OFFERS = [
    {"id": "of-1", "title": "10% off shoes", "kind": "category_discount", "category": "shoes",
     "discountPercent": 10, "validFrom": "2026-11-01T00:00:00Z", "validTo": "2036-11-01T00:00:00Z",
     "rules": {"segments": ["student", "family"], "minCategoryAffinity": 0.2}},
    {"id": "of-2", "title": "Free shipping", "kind": "free_shipping", "minBasket": 35, "productIds": ["p-1", "p-2"],
     "validFrom": "2026-11-01T00:00:00Z", "validTo": "2026-12-01T00:00:00Z", "rules": {"devices": ["mobile"]}},
]
PRODUCTS = [{"id": "p-2", "name": "Eco Kettle", "category": "kitchen", "brand": "Norvik", "price": 45},
            {"id": "p-1", "name": "Pro Sneakers", "category": "shoes", "brand": "Zenlo", "price": 74.5}]


def stats(offer: str, hour: str, by_model: dict, by_minute=None) -> dict:
    doc = {"id": f"{offer}:{hour[:13]}", "offerId": offer, "hour": hour, "byModel": by_model, "watermarks": {},
           "impressions": sum(c["impressions"] for c in by_model.values()),
           "clicks": sum(c["clicks"] for c in by_model.values())}
    if by_minute is not None:
        doc["byMinute"] = by_minute
    return doc


STATS = [
    stats("of-1", "2026-11-21T23:00:00Z", {"m-1": {"impressions": 10, "clicks": 2},
                                           "unknown": {"impressions": 0, "clicks": 1}}),
    stats("of-2", "2026-11-22T05:00:00Z", {"m-2": {"impressions": 4, "clicks": 1}},
          {"07": {"impressions": 3, "clicks": 1, "byModel": {"m-2": {"impressions": 3, "clicks": 1}}},
           "59": {"impressions": 1, "clicks": 0, "byModel": {"m-2": {"impressions": 1, "clicks": 0}}}}),
    stats("of-gone", "2026-11-22T05:00:00Z", {"m-2": {"impressions": 2, "clicks": 0}}),
]


def report(version: str, at: str, promoted: bool = True) -> dict:
    interval = {"estimate": 0.15, "low": 0.12, "high": 0.18}
    return {"version": version, "trainedAt": at, "current": "baseline-1", "promoted": promoted,
            "reason": "promoted: the candidate is not worse", "jobSeconds": 2.5,
            "data": {"decisions": 1000, "examples": 960, "trainExamples": 768, "heldOutExamples": 192,
                     "from": "2026-11-20T00:00:00Z", "to": at, "meanReward": 0.11},
            "evaluation": {"heldOutEvents": 190, "agreementWithBaseline": 0.61,
                           "candidate": {"ips": interval, "snips": interval, "dr": {**interval, "estimate": 0.1567}},
                           "current": {"ips": interval, "snips": interval, "dr": {**interval, "estimate": 0.1041}},
                           "difference": {"ips": interval, "snips": interval,
                                          "dr": {"estimate": 0.0526, "low": -0.01, "high": 0.11}}},
            "timings": {"fitSeconds": 0.3, "evaluateSeconds": 0.9}}


REPORTS = [("offers", report("m20261122T103000Z-1a2b", "2026-11-22T10:30:00Z")),
           ("personalizer", report("m20261121T080000Z-9f9f", "2026-11-21T08:00:00Z", promoted=False)),
           ("offers", report("m20261101T000000Z-0000", "2026-11-01T00:00:00Z"))]  # before the window


def archived() -> list[dict]:
    return [ef.shown("u-1", "d-1", ("of-1", "of-2"), time=DAY1 + timedelta(hours=9)),
            ef.clicked("u-1", "d-1", "of-1", time=DAY1 + timedelta(hours=9, seconds=30)),
            ef.view("u-2", time=DAY2 - timedelta(microseconds=500)),  # the last instant of day 1
            ef.shown("u-2", "d-2", ("of-2",), model="m-2", time=DAY2 + timedelta(hours=5, minutes=7)),
            ef.view("u-3", time=NOW + timedelta(minutes=5))]  # after the window


ARCHIVED = archived()  # the events' ids are random: made once

class Ports:
    """In-memory sources and a dict for the written files."""

    def __init__(self, records=None, documents=STATS, reports=REPORTS):
        self.events, self.decisions = dataset.tables(records if records is not None else ARCHIVED)
        self.documents, self.kept = documents, reports
        self.files: dict[str, bytes] = {}
        self.loaded: list[tuple[datetime, datetime]] = []

    def load(self, start, end, columns):
        self.loaded.append((start, end))
        decisions = self.decisions if columns is None else self.decisions.select(columns)
        return compaction.between(self.events, start, end), compaction.between(decisions, start, end)

    @contextmanager
    def create(self, name: str):
        file = io.BytesIO()
        yield file
        self.files[name] = file.getvalue()

    def ports(self, clock=lambda: NOW) -> bi.ExportPorts:
        return bi.ExportPorts(load=self.load, offer_stats=lambda start, end: self.documents,
                              reports=lambda days: self.kept, offers=lambda: OFFERS, products=lambda: PRODUCTS,
                              create=self.create, delete=lambda name: self.files.pop(name, None), clock=clock)

    def table(self, name: str) -> pa.Table:
        return pq.read_table(io.BytesIO(self.files[name]))

    def folder(self, root: Path) -> Path:
        for name, data in self.files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root


def test_every_table_has_its_fixed_schema_even_when_empty():
    for spec in bi.TABLES.values():
        assert spec.build([]).schema == spec.schema
    assert bi.TABLES[bi.EVENTS].schema == dataset.EVENTS_SCHEMA
    assert bi.TABLES[bi.DECISIONS].schema == dataset.DECISIONS_SCHEMA
    assert {"chosenOfferId", "probability", "modelVersion", "coldStart", "loop"} <= set(dataset.DECISIONS_SCHEMA.names)
    assert bi.TABLES[bi.OFFERS].file() == "offers/part-0.parquet"
    assert bi.TABLES[bi.EVENTS].file(date(2026, 11, 2)) == "events/date=2026-11-02/part-0.parquet"


def test_hourly_statistics_are_one_row_per_offer_hour_and_model_described_by_the_catalog():
    table = bi.offer_stats_hourly(STATS, OFFERS)
    rows = table.to_pylist()
    assert [(r["offerId"], r["modelVersion"], r["impressions"], r["clicks"]) for r in rows] == [
        ("of-1", "m-1", 10, 2), ("of-1", "unknown", 0, 1), ("of-2", "m-2", 4, 1), ("of-gone", "m-2", 2, 0)]
    assert rows[0]["hour"] == datetime(2026, 11, 21, 23, tzinfo=timezone.utc)
    assert (rows[0]["title"], rows[0]["kind"], rows[0]["category"]) == ("10% off shoes", "category_discount", "shoes")
    assert rows[0]["ctr"] == pytest.approx(0.2)
    assert rows[1]["ctr"] is None  # a click credited to no known model: no impressions, no ctr
    assert rows[3]["title"] is None and rows[3]["ctr"] == 0.0  # an offer no longer in the catalog


def test_a_document_without_a_model_breakdown_gives_one_row_of_its_totals():
    doc = {"offerId": "of-1", "hour": "2026-11-22T05:00:00Z", "impressions": 0, "clicks": 0}
    rows = bi.offer_stats_hourly([doc], OFFERS).to_pylist()
    assert [(r["modelVersion"], r["impressions"], r["clicks"], r["ctr"]) for r in rows] == [(None, 0, 0, None)]


def test_minute_statistics_come_from_by_minute_and_only_when_some_document_has_it():
    rows = bi.offer_stats_minutely(STATS, OFFERS).to_pylist()
    assert [(r["minute"], r["offerId"], r["modelVersion"], r["impressions"], r["clicks"]) for r in rows] == [
        (datetime(2026, 11, 22, 5, 7, tzinfo=timezone.utc), "of-2", "m-2", 3, 1),
        (datetime(2026, 11, 22, 5, 59, tzinfo=timezone.utc), "of-2", "m-2", 1, 0)]
    assert rows[0]["ctr"] == pytest.approx(1 / 3) and rows[0]["title"] == "Free shipping"
    assert bi.offer_stats_minutely([STATS[0]], OFFERS) is None
    listed = dict(STATS[2], byMinute=[{"time": "2026-11-22T05:30:00Z", "impressions": 2, "clicks": 0}])
    assert bi.offer_stats_minutely([listed], OFFERS).to_pylist()[0]["minute"] == datetime(
        2026, 11, 22, 5, 30, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        bi.offer_stats_minutely([dict(STATS[2], byMinute={"07": 3})], OFFERS)


def test_a_retrain_report_becomes_a_flat_row_with_the_report_kept_as_text():
    row = bi.retrains(REPORTS[:1]).to_pylist()[0]
    assert row["time"] == datetime(2026, 11, 22, 10, 30, tzinfo=timezone.utc)
    assert (row["loop"], row["version"], row["currentPolicy"], row["promoted"]) == (
        "offers", "m20261122T103000Z-1a2b", "baseline-1", True)
    assert (row["candidateDrEstimate"], row["currentDrEstimate"], row["differenceDrLow"]) == (0.1567, 0.1041, -0.01)
    assert (row["heldOutEvents"], row["agreementWithBaseline"], row["trainExamples"]) == (190, 0.61, 768)
    assert row["dataFrom"] == datetime(2026, 11, 20, tzinfo=timezone.utc) and row["fitSeconds"] == 0.3
    assert json.loads(row["report"]) == REPORTS[0][1]
    rejected = bi.retrain_row("offers", {"version": "v", "trainedAt": "2026-11-22T00:00:00Z", "promoted": False,
                                         "reason": "only 12 settled examples"})
    assert rejected["candidateDrEstimate"] is None and rejected["promoted"] is False
    assert bi.retrains([("offers", {"promoted": False, "skipped": True})]).num_rows == 0


def test_the_catalog_becomes_two_dimension_tables_keyed_by_offer_and_product_id():
    offers = bi.offers_table(OFFERS).to_pylist()
    assert [o["offerId"] for o in offers] == ["of-1", "of-2"]
    assert json.loads(offers[0]["segments"]) == ["student", "family"] and offers[0]["devices"] is None
    assert offers[0]["discountPercent"] == 10.0 and offers[0]["minCategoryAffinity"] == 0.2
    assert json.loads(offers[1]["productIds"]) == ["p-1", "p-2"] and offers[1]["minBasket"] == 35.0
    assert offers[1]["validTo"] == datetime(2026, 12, 1, tzinfo=timezone.utc)
    products = bi.products_table(PRODUCTS).to_pylist()
    assert [(p["productId"], p["price"]) for p in products] == [("p-1", 74.5), ("p-2", 45.0)]


def test_the_window_is_whole_utc_days_up_to_now():
    window = bi.Window.last_days(2, NOW)
    assert window == WINDOW and window.dates == [date(2026, 11, 21), date(2026, 11, 22)]
    assert window.day(date(2026, 11, 21)) == (DAY1, DAY2 - timedelta(microseconds=1))
    assert window.day(date(2026, 11, 22)) == (DAY2, NOW)
    assert bi.Window.last_days(1, NOW).dates == [date(2026, 11, 22)]
    with pytest.raises(ValueError):
        bi.Window.last_days(0, NOW)


def test_an_export_writes_each_table_by_date_and_a_manifest_with_the_row_counts(tmp_path):
    fake = Ports()
    steps = []
    manifest = bi.run(fake.ports(), WINDOW, progress=steps.append)
    assert len(steps) == bi.steps(WINDOW) == 5
    assert sorted(fake.files) == sorted([
        "_export.json", "offers/part-0.parquet", "products/part-0.parquet",
        "offer_stats_hourly/date=2026-11-21/part-0.parquet", "offer_stats_hourly/date=2026-11-22/part-0.parquet",
        "offer_stats_minutely/date=2026-11-22/part-0.parquet",
        "retrains/date=2026-11-21/part-0.parquet", "retrains/date=2026-11-22/part-0.parquet",
        "events/date=2026-11-21/part-0.parquet", "events/date=2026-11-22/part-0.parquet",
        "decisions/date=2026-11-21/part-0.parquet", "decisions/date=2026-11-22/part-0.parquet"])
    assert json.loads(fake.files["_export.json"]) == manifest
    assert manifest["window"] == {"from": "2026-11-21T00:00:00Z", "to": "2026-11-22T14:30:00Z",
                                  "dates": ["2026-11-21", "2026-11-22"]}
    assert manifest["exportedAt"] == "2026-11-22T14:30:00Z"
    rows = {name: t["rows"] for name, t in manifest["tables"].items()}
    assert rows == {"events": 4, "decisions": 2, "offer_stats_hourly": 4, "offer_stats_minutely": 2,
                    "retrains": 2, "offers": 2, "products": 2}
    assert manifest["tables"]["events"]["byDate"] == {"2026-11-21": 3, "2026-11-22": 1}
    assert manifest["tables"]["offers"]["partitionedBy"] is None
    assert manifest["tables"]["offer_stats_hourly"]["columns"]["ctr"] == "double"
    # a day is read CHUNK at a time, each with the next hour, for batches enqueued after the chunk's end
    tick = timedelta(microseconds=1)
    assert fake.loaded == [(DAY1 + n * bi.CHUNK, DAY1 + (n + 1) * bi.CHUNK - tick + bi.LATE) for n in range(4)] + [
        (DAY2, DAY2 + bi.CHUNK - tick + bi.LATE), (DAY2 + bi.CHUNK, DAY2 + 2 * bi.CHUNK - tick + bi.LATE),
        (DAY2 + 2 * bi.CHUNK, NOW)]

    events = ds.dataset(fake.folder(tmp_path) / "events", format="parquet", partitioning="hive").to_table()
    assert events.num_rows == 4 and "date" in events.column_names
    assert ds.dataset(tmp_path / "offers", format="parquet").to_table().num_rows == 2
    last_of_day1 = fake.table("events/date=2026-11-21/part-0.parquet").column("time").to_pylist()[-1]
    assert last_of_day1 == DAY2 - timedelta(microseconds=500)


def test_decisions_keep_their_json_as_text_and_the_flat_columns_bi_needs():
    fake = Ports()
    bi.run(fake.ports(), WINDOW)
    decision = fake.table("decisions/date=2026-11-22/part-0.parquet").to_pylist()[0]
    assert (decision["decisionId"], decision["chosenOfferId"], decision["probability"], decision["modelVersion"],
            decision["coldStart"], decision["loop"]) == ("d-2", "of-2", 0.5, "m-2", False, "offers")
    assert json.loads(decision["candidates"]) == [{"offerId": "of-2", "features": {"kind": "deal"}}]
    assert json.loads(decision["context"]) == {"user": {"segment": "new"}}


def test_without_candidates_the_column_is_null_and_the_schema_unchanged():
    fake = Ports()
    manifest = bi.run(fake.ports(), WINDOW, candidates=False)
    decisions = fake.table("decisions/date=2026-11-21/part-0.parquet")
    assert decisions.schema == dataset.DECISIONS_SCHEMA
    assert decisions.column("candidates").null_count == decisions.num_rows == 1
    assert decisions.column("chosen").null_count == 0 and manifest["decisionCandidates"] is False
    events = fake.table("events/date=2026-11-21/part-0.parquet")
    data = dict(zip(events.column("type").to_pylist(), events.column("data").to_pylist()))
    assert data["offerloop.offer.shown"] is None and json.loads(data["offerloop.offer.clicked"])["offerId"] == "of-1"


def test_exporting_again_gives_the_same_bytes_and_removes_a_day_left_without_rows():
    first, second = Ports(), Ports(records=ARCHIVED[::-1], documents=STATS[::-1])  # the same, in another order
    bi.run(first.ports(), WINDOW)
    second.files = {**first.files, "retrains/date=2026-11-21/part-0.parquet": b"stale"}
    second.kept = REPORTS[:1]  # the 21st's report is gone
    bi.run(second.ports(clock=lambda: NOW + timedelta(minutes=1)), WINDOW)
    assert "retrains/date=2026-11-21/part-0.parquet" not in second.files
    for name, data in first.files.items():
        if name.endswith(".parquet") and name in second.files:
            assert second.files[name] == data, name
    assert json.loads(second.files["_export.json"])["exportedAt"] == "2026-11-22T14:31:00Z"


def test_a_read_failing_midway_leaves_the_days_files_as_they_were():
    fake = Ports()
    bi.run(fake.ports(), WINDOW)
    before = dict(fake.files)
    loads = fake.load

    def failing(start, end, columns):
        if start == DAY1 + 2 * bi.CHUNK:
            raise OSError("storage unavailable")
        return loads(start, end, columns)

    fake.load = failing
    with pytest.raises(OSError):
        bi.run(fake.ports(clock=lambda: NOW + timedelta(hours=1)), WINDOW)
    assert fake.files["events/date=2026-11-21/part-0.parquet"] == before["events/date=2026-11-21/part-0.parquet"]
    assert fake.files["_export.json"] == before["_export.json"]


def test_docs_describe_every_column_of_every_table():
    text = DOCS.read_text()
    for spec in bi.TABLES.values():
        section = re.search(rf"^### `{spec.name}`\n(.*?)(?=^### |\Z)", text, re.S | re.M)
        assert section, f"docs/export.md has no section for {spec.name}"
        described = set(re.findall(r"^\| `(\w+)` \|", section.group(1), re.M))
        assert described == set(spec.schema.names), spec.name


def test_the_command_wants_exactly_one_destination():
    for args in ([], ["--out", "x", "--to-blob"]):
        result = CliRunner().invoke(export_command.export, args)
        assert result.exit_code == 2 and "exactly one of --out DIR and --to-blob" in result.output
