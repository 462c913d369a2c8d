"""The BI export against the local stack: offer statistics and the catalog in the Cosmos DB server,
retrain reports and the raw and Parquet archives in Azurite, exported to a folder and to a blob
container, and read back as Hive-partitioned datasets (from the container through pyarrow's
Azure filesystem, as a BI tool reads it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from pyarrow import fs

from local.provision import provision
from shared import archive, cosmos, export as bi, export_store, model_store, personalizer_store, resources, settings
from shared.parquet_archive import ParquetArchive, ParsedBatches
from tests import eventfactory as ef

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "exporttest"  # its own database, so other tests' catalogs and statistics do not mix in
DAY21, DAY22 = datetime(2026, 11, 21, tzinfo=timezone.utc), datetime(2026, 11, 22, tzinfo=timezone.utc)
H3 = DAY22 + timedelta(hours=3)  # closed: compacted to Parquet
H4 = H3 + timedelta(hours=1)  # open: read from the raw archive
NOW = H4 + timedelta(minutes=20)
WINDOW = bi.Window(DAY21, NOW)

OFFERS = [{"id": "of-1", "title": "10% off shoes", "kind": "category_discount", "category": "shoes",
           "discountPercent": 10, "validFrom": "2026-11-01T00:00:00Z", "validTo": "2036-11-01T00:00:00Z", "rules": {}},
          {"id": "of-2", "title": "Free shipping", "kind": "free_shipping", "minBasket": 35,
           "validFrom": "2026-11-01T00:00:00Z", "validTo": "2026-12-01T00:00:00Z", "rules": {"devices": ["mobile"]}}]
PRODUCTS = [{"id": "p-1", "name": "Pro Sneakers", "category": "shoes", "brand": "Zenlo", "price": 74.5},
            {"id": "p-2", "name": "Eco Kettle", "category": "kitchen", "brand": "Norvik", "price": 45.0}]


def counts(impressions: int, clicks: int, **more) -> dict:
    return {"impressions": impressions, "clicks": clicks, **more}


STATS = [  # as shared/projections.py writes them
    {"id": "of-1:2026112203", "offerId": "of-1", "hour": "2026-11-22T03:00:00Z", **counts(5, 2),
     "byModel": {"m-1": counts(5, 1), "unknown": counts(0, 1)}, "watermarks": {"0": 4},
     "byMinute": {"10": counts(5, 1, byModel={"m-1": counts(5, 1)}),
                  "11": counts(0, 1, byModel={"unknown": counts(0, 1)})}},
    {"id": "of-2:2026112204", "offerId": "of-2", "hour": "2026-11-22T04:00:00Z", **counts(3, 0),
     "byModel": {"m-2": counts(3, 0)}, "watermarks": {"0": 9}},
    {"id": "of-2:2026111004", "offerId": "of-2", "hour": "2026-11-10T04:00:00Z", **counts(50, 5),  # before the window
     "byModel": {"m-0": counts(50, 5)}, "watermarks": {"0": 1}},
]


def report(version: str, at: str, promoted: bool) -> dict:
    dr = {"estimate": 0.15, "low": 0.1, "high": 0.2}
    return {"version": version, "trainedAt": at, "current": "baseline-1", "promoted": promoted, "reason": "test",
            "data": {"decisions": 400, "examples": 380}, "skipped": False,
            "evaluation": {"heldOutEvents": 76, "candidate": {"dr": dr}, "current": {"dr": dr},
                           "difference": {"dr": {"estimate": 0.0, "low": -0.05, "high": 0.05}}}}


@pytest.fixture(scope="module")
def config(stack):
    values = {**stack.settings, "COSMOS_DATABASE": DATABASE}
    provision(values)
    config = settings.load(values)
    database = cosmos.database(config.cosmos, config.cosmos_database)
    for name, docs in ((resources.OFFERS, OFFERS), (resources.PRODUCTS, PRODUCTS), (resources.OFFER_STATS, STATS)):
        for doc in docs:
            database.get_container_client(name).upsert_item(doc)
    return config


@pytest.fixture(scope="module")
def blobs(stack) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])


@pytest.fixture(scope="module")
def containers(blobs):
    """Fresh raw, parquet, models and exports containers, holding this test's archive and reports."""
    suffix = uuid.uuid4().hex[:10]
    names = {kind: f"{kind}-{suffix}" for kind in ("raw", "parquet", "models", "exports")}
    for kind in ("raw", "parquet", "models"):
        blobs.create_container(names[kind])
    fill_archive(blobs, names)
    offers_loop = model_store.from_service(blobs, names["models"])
    offers_loop.keep_report(report("m20261122T033000Z-aaaa", "2026-11-22T03:30:00Z", True))
    offers_loop.keep_report(report("m20261101T000000Z-old0", "2026-11-01T00:00:00Z", True))  # before the window
    model_store.from_service(blobs, names["models"], prefix=personalizer_store.PREFIX).keep_report(
        report("m20261121T120000Z-bbbb", "2026-11-21T12:00:00Z", False))
    yield names
    for name in names.values():
        try:
            blobs.delete_container(name)
        except ResourceNotFoundError:  # exports: made by the blob test only
            pass


def fill_archive(blobs: BlobServiceClient, names: dict[str, str]) -> None:
    store = ParquetArchive(blobs, archive.BlobArchive(blobs, raw_container=names["raw"]),
                           container=names["parquet"], parsed=ParsedBatches())
    batches = [
        ("0", 0, DAY22 + timedelta(seconds=1), [ef.view("u-0", id="e-late", time=DAY22 - timedelta(seconds=1))]),
        ("0", 1, H3 + timedelta(minutes=15), [ef.shown("u-1", "d-1", ("of-1", "of-2"), time=H3 + timedelta(minutes=10)),
                                              ef.view("u-1", id="e-view", time=H3 + timedelta(minutes=10))]),
        ("1", 0, H3 + timedelta(minutes=16), [ef.clicked("u-1", "d-1", "of-1", id="e-click",
                                                         time=H3 + timedelta(minutes=11))]),
        ("0", 3, H4 + timedelta(minutes=5), [ef.shown("u-2", "d-2", ("of-2",), model="m-2",
                                                      time=H4 + timedelta(minutes=4))]),
    ]
    for partition, first, enqueued, batch in batches:
        records = [archive.event_record(partition, first + i, enqueued, e) for i, e in enumerate(batch)]
        store.raw.write_events(archive.BatchKey(partition, first, enqueued), records)
    assert store.compact(NOW)["hoursCompacted"] == 2  # 00:00 and 03:00 of the 22nd; 04:00 is open


def ports(config, blobs, containers, sink) -> bi.ExportPorts:
    made = export_store.ports(config, sink, service=blobs, raw=containers["raw"], parquet=containers["parquet"],
                              models=containers["models"])
    made.clock = lambda: NOW
    return made


def read(path, filesystem=None):
    return ds.dataset(path, format="parquet", partitioning="hive", filesystem=filesystem).to_table()


def check(root, manifest: dict, filesystem=None) -> None:
    """The exported tables, read back as datasets: the rows the stores hold for the window."""
    events = read(f"{root}/events", filesystem)
    assert sorted(zip(events.column("date").to_pylist(), events.column("id").to_pylist())) == sorted([
        ("2026-11-21", "e-late"), ("2026-11-22", "d-1"), ("2026-11-22", "e-view"), ("2026-11-22", "e-click"),
        ("2026-11-22", "d-2")])
    decisions = read(f"{root}/decisions", filesystem).sort_by("decisionId").to_pylist()
    assert [(d["decisionId"], d["chosenOfferId"], d["modelVersion"], d["probability"], d["loop"], d["coldStart"])
            for d in decisions] == [("d-1", "of-1", "m-1", 0.5, "offers", False),
                                    ("d-2", "of-2", "m-2", 0.5, "offers", False)]
    assert [c["offerId"] for c in json.loads(decisions[0]["chosen"])] == ["of-1", "of-2"]
    hourly = read(f"{root}/offer_stats_hourly", filesystem).sort_by([("hour", "ascending"),
                                                                      ("modelVersion", "ascending")]).to_pylist()
    assert [(h["hour"], h["offerId"], h["title"], h["kind"], h["modelVersion"], h["impressions"], h["clicks"], h["ctr"])
            for h in hourly] == [
        (H3, "of-1", "10% off shoes", "category_discount", "m-1", 5, 1, 0.2),
        (H3, "of-1", "10% off shoes", "category_discount", "unknown", 0, 1, None),
        (H4, "of-2", "Free shipping", "free_shipping", "m-2", 3, 0, 0.0)]
    minutely = read(f"{root}/offer_stats_minutely", filesystem).sort_by("minute").to_pylist()
    assert [(m["minute"], m["modelVersion"], m["impressions"], m["clicks"]) for m in minutely] == [
        (H3 + timedelta(minutes=10), "m-1", 5, 1), (H3 + timedelta(minutes=11), "unknown", 0, 1)]
    retrains = read(f"{root}/retrains", filesystem).sort_by("time").to_pylist()
    assert [(r["loop"], r["version"], r["promoted"], r["heldOutEvents"], r["differenceDrLow"]) for r in retrains] == [
        ("personalizer", "m20261121T120000Z-bbbb", False, 76, -0.05),
        ("offers", "m20261122T033000Z-aaaa", True, 76, -0.05)]
    offers, products = read(f"{root}/offers", filesystem), read(f"{root}/products", filesystem)
    assert sorted(offers.column("offerId").to_pylist()) == ["of-1", "of-2"]
    assert sorted(products.column("price").to_pylist()) == [45.0, 74.5]
    counted = {"events": events, "decisions": decisions, "offer_stats_hourly": hourly,
               "offer_stats_minutely": minutely, "retrains": retrains, "offers": offers, "products": products}
    assert {name: t["rows"] for name, t in manifest["tables"].items()} == {k: len(v) for k, v in counted.items()}


def test_an_export_to_a_folder_reads_back_as_hive_partitioned_tables(config, blobs, containers, tmp_path):
    manifest = bi.run(ports(config, blobs, containers, export_store.FolderSink(tmp_path)), WINDOW)
    check(tmp_path, manifest)
    assert json.loads((tmp_path / bi.MANIFEST).read_text()) == manifest
    assert manifest["exportedAt"] == "2026-11-22T04:20:00Z" and manifest["window"]["dates"] == ["2026-11-21",
                                                                                                 "2026-11-22"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_export_to_a_blob_container_reads_back_through_the_azure_filesystem(stack, config, blobs, containers,
                                                                               tmp_path):
    sink = export_store.BlobSink(blobs.get_container_client(containers["exports"]))  # creates the container
    manifest = bi.run(ports(config, blobs, containers, sink), WINDOW)
    check(containers["exports"], manifest, azurite_filesystem(stack.settings["AzureWebJobsStorage"]))
    exported = blobs.get_container_client(containers["exports"])
    content_type = exported.get_blob_client("offers/part-0.parquet").get_blob_properties().content_settings.content_type
    assert content_type == "application/vnd.apache.parquet"
    # the same rows, the same bytes: a folder export's files equal the container's
    bi.run(ports(config, blobs, containers, export_store.FolderSink(tmp_path)), WINDOW)
    names = sorted(exported.list_blob_names())
    assert names == sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    for name in names:
        if name.endswith(".parquet"):
            assert exported.download_blob(name).readall() == (tmp_path / name).read_bytes(), name


def azurite_filesystem(connection_string: str) -> fs.AzureFileSystem:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    endpoint = urlparse(parts["BlobEndpoint"])
    return fs.AzureFileSystem(parts["AccountName"], account_key=parts["AccountKey"],
                              blob_storage_authority=endpoint.netloc, blob_storage_scheme=endpoint.scheme,
                              dfs_storage_authority=endpoint.netloc, dfs_storage_scheme=endpoint.scheme)


def test_the_export_command_writes_to_a_new_blob_container(stack, config, blobs):
    container = f"exports-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, **stack.settings, "COSMOS_DATABASE": DATABASE}
    done = subprocess.run([sys.executable, "-m", "ops", "export", "--days", "1", "--to-blob", "--container", container,
                           "--no-candidates"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    try:
        assert done.returncode == 0, done.stderr
        assert "exported" in done.stdout and "2 offers, 2 products" in done.stdout
        exported = blobs.get_container_client(container)
        manifest = json.loads(exported.download_blob(bi.MANIFEST).readall())
        assert manifest["decisionCandidates"] is False and len(manifest["window"]["dates"]) == 1
        offers = read(f"{container}/offers", azurite_filesystem(stack.settings["AzureWebJobsStorage"]))
        assert sorted(offers.column("title").to_pylist()) == ["10% off shoes", "Free shipping"]
    finally:
        blobs.delete_container(container)
