"""The ingest service over in-memory fakes of Blob storage and Cosmos DB."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest

from shared import archive, ingest, projection_store
from shared.ingest import Message
from tests import eventfactory as ef
from tests.unit.ingest_fakes import Outage, World

ENQUEUED = datetime(2026, 11, 22, 7, 59, 58, tzinfo=timezone.utc)


def messages(bodies: list, partition: str = "2", first: int = 500) -> list[Message]:
    encoded = [b if isinstance(b, bytes) else json.dumps(b).encode() for b in bodies]
    return [Message(body, partition, first + i, ENQUEUED + timedelta(milliseconds=i)) for i, body in enumerate(encoded)]


def test_a_batch_is_archived_under_its_partition_and_first_sequence_number_in_the_enqueued_hour():
    world = World()
    raws = ef.workload(50, 5, seed=2)
    report = ingest.ingest(messages(raws), world.ports)
    assert list(world.raw.blobs) == ["2026/11/22/07/2-500.jsonl"]
    records = world.archived_records()
    assert [r["event"]["id"] for r in records] == [r["id"] for r in raws]
    assert [r["sequence"] for r in records] == list(range(500, 550))
    assert records[0]["partition"] == "2" and records[0]["enqueuedTime"] == "2026-11-22T07:59:58Z"
    assert report.applied == 50 and report.archived == 50 and report.invalid == 0


def test_each_profile_reflects_exactly_its_users_events():
    world = World()
    raws = ef.workload(300, 12, seed=3, with_shown=True)
    ingest.ingest(messages(raws), world.ports)
    want_users, want_stats = ef.expected(raws)
    profiles = world.profiles()
    assert set(profiles) == set(want_users)
    for user, want in want_users.items():
        got = profiles[user]
        assert {k: got[k] for k in want} == want
    stats = {(s["offerId"], s["hour"]): {"impressions": s["impressions"], "clicks": s["clicks"]}
             for s in world.stats().values()}
    assert stats == want_stats


def test_a_batch_reads_and_writes_each_touched_document_once():
    world = World()
    raws = ef.workload(400, 10, seed=4, with_shown=True)
    ingest.ingest(messages(raws), world.ports)
    users, stats = ef.expected(raws)
    assert world.profiles_container.calls.count("query") == 1
    assert world.profiles_container.calls.count("create") == len(users)
    assert world.stats_container.calls.count("query") == 1
    assert world.stats_container.calls.count("create") == len(stats)
    assert "read" not in world.profiles_container.calls + world.stats_container.calls

    again = ef.workload(400, 10, seed=4, with_shown=True)  # same users, new event ids
    for r in again:
        r["id"] += "-2"
    world.profiles_container.calls.clear()
    ingest.ingest(messages(again, first=900), world.ports)
    assert world.profiles_container.calls == ["query"] + ["replace"] * len(users)


def test_invalid_events_go_to_the_dead_letter_with_their_reasons_and_the_rest_is_processed():
    world = World()
    good = [ef.view("u-1"), ef.cart("u-1")]
    wrong_type = ef.view("u-2")
    wrong_type["data"]["productId"] = 42
    unknown = ef.view("u-3")
    unknown["type"] = "offerloop.thing.happened"
    bodies = [good[0], b"\xff\xfe not json", wrong_type, b"[1, 2", unknown, good[1]]
    report = ingest.ingest(messages(bodies, first=10), world.ports)
    assert report.invalid == 4 and report.applied == 2
    assert list(world.dead.blobs) == ["2026/11/22/07/2-10.jsonl"]
    dead = world.archive.read("2026/11/22/07/2-10.jsonl", dead_letters=True)
    assert [d["sequence"] for d in dead] == [11, 12, 13, 14]
    assert dead[0]["bodyBase64"] and dead[0]["errors"][0]["message"].startswith("not a JSON document")
    assert dead[1]["errors"] == [{"field": "data.productId", "message": "Input should be a valid string"}]
    assert json.loads(dead[1]["body"]) == wrong_type
    assert dead[3]["errors"][0]["field"] == "type" and "offerloop.thing.happened" in dead[3]["errors"][0]["message"]
    assert [r["event"]["id"] for r in world.archived_records()] == [good[0]["id"], good[1]["id"]]
    assert world.profiles()["u-1"]["eventCount"] == 2 and "u-2" not in world.profiles()


def test_bodies_that_cannot_be_read_back_as_json_are_dead_lettered_not_retried_forever():
    world = World()
    huge = json.dumps(ef.view("u-1")).replace('"category"', '"price": 1e999, "category"').encode()
    nan = json.dumps(ef.view("u-1")).replace('"category"', '"price": NaN, "category"').encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    report = ingest.ingest(messages([huge, nan, deep, ef.view("u-1")]), world.ports)
    assert report.invalid == 3 and report.applied == 1
    dead = world.archive.read("2026/11/22/07/2-500.jsonl", dead_letters=True)
    assert "out of range" in dead[0]["errors"][0]["message"] and "NaN" in dead[1]["errors"][0]["message"]
    assert dead[2]["errors"][0]["message"].startswith("not a JSON document")


def test_a_redelivered_batch_rewrites_the_same_blobs_and_changes_no_document():
    world = World()
    batch = messages(ef.workload(60, 4, seed=6, with_shown=True) + [b"garbage"])
    ingest.ingest(batch, world.ports)
    raw, dead = dict(world.raw.blobs), dict(world.dead.blobs)
    profiles, stats = world.profiles_container.items.copy(), world.stats_container.items.copy()
    report = ingest.ingest(batch, world.ports)
    assert world.raw.blobs == raw and world.dead.blobs == dead and len(world.raw.uploads) == 2
    assert world.profiles_container.items == profiles and world.stats_container.items == stats  # etags too
    assert report.applied == 0 and report.redelivered == 60
    assert report.profiles_written == 0 and report.offer_stats_written == 0


def test_reposting_the_same_events_changes_nothing_not_even_the_archive():
    world = World()
    raws = ef.workload(80, 5, seed=7)
    ingest.ingest(messages(raws, first=0), world.ports)
    raw, profiles = dict(world.raw.blobs), world.profiles_container.items.copy()
    report = ingest.ingest(messages(raws, first=80), world.ports)  # new hub messages, same event ids
    assert report.repeated == 80 and report.applied == 0 and report.archived == 0
    assert world.raw.blobs == raw and world.profiles_container.items == profiles


def test_an_event_without_a_time_gets_the_time_the_hub_enqueued_it():
    world = World()
    ingest.ingest(messages([ef.view("u-9", time=None)]), world.ports)
    assert world.archived_records()[0]["event"]["time"] == "2026-11-22T07:59:58Z"
    assert world.profiles()["u-9"]["affinityAsOf"] == "2026-11-22T07:59:58Z"


def test_an_outage_after_archiving_is_repaired_by_redelivery_without_double_counting():
    world = World()
    raws = ef.workload(120, 6, seed=8, with_shown=True)
    batch = messages(raws)
    world.stats_container.fail_next = 1  # the profiles are written, the offer statistics are not
    with pytest.raises(Outage):
        ingest.ingest(batch, world.ports)
    assert world.raw.blobs and world.profiles()
    ingest.ingest(batch, world.ports)  # the trigger's retry
    users, stats = ef.expected(raws)
    assert {u: p["eventCount"] for u, p in world.profiles().items()} == {u: v["eventCount"] for u, v in users.items()}
    assert {(s["offerId"], s["hour"]): {"impressions": s["impressions"], "clicks": s["clicks"]}
            for s in world.stats().values()} == stats


def test_nothing_is_projected_when_the_archive_cannot_be_written():
    world = World()
    world.raw.fail_next = 1
    with pytest.raises(Outage):
        ingest.ingest(messages(ef.workload(10, 2, seed=9)), world.ports)
    assert world.profiles() == {} and world.stats() == {}


def test_a_conflicting_write_is_recomputed_from_the_stored_document():
    world = World()
    ingest.ingest(messages([ef.view("u-1", "shoes")], first=1), world.ports)

    def another_writer_first(_body):  # e.g. the same user's events from another partition
        stored = world.profiles_container.items[("u-1", "u-1")]
        world.profiles_container.items[("u-1", "u-1")] = {**stored, "carts": 7, "_etag": '"other"'}

    world.profiles_container.on_write = another_writer_first
    ingest.ingest(messages([ef.view("u-1", "books")], first=2), world.ports)
    profile = world.profiles()["u-1"]
    assert profile["carts"] == 7 and profile["eventCount"] == 2
    assert world.profiles_container.calls[-2:] == ["read", "replace"]


def test_a_document_that_keeps_changing_fails_the_batch_after_bounded_attempts():
    world = World()
    ingest.ingest(messages([ef.view("u-1")], first=1), world.ports)
    store = projection_store.DocumentStore(world.profiles_container, attempts=3)
    world.ports = dataclasses.replace(world.ports, profiles=store)
    container = world.profiles_container

    def bump(_body):
        container.items[("u-1", "u-1")]["_etag"] += "x"
        container.on_write = bump

    container.on_write = bump
    with pytest.raises(projection_store.ConflictError):
        ingest.ingest(messages([ef.view("u-1")], first=2), world.ports)
    assert container.calls.count("replace") == 3


def test_archive_names_depend_only_on_the_batch_so_they_are_the_same_on_every_delivery():
    key = archive.BatchKey("3", 1234, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))))
    assert key.blob_name() == "2026/01/02/01/3-1234.jsonl"
    assert key.blob_name(compress=True) == "2026/01/02/01/3-1234.jsonl.gz"
    assert archive.parse_name("2026/01/02/01/3-1234.jsonl.gz") == archive.StoredBatch(
        "2026/01/02/01/3-1234.jsonl.gz", "3", 1234)
    assert archive.parse_name("2026/01/02/01/notes.txt") is None


def test_compressed_batches_are_byte_identical_when_rewritten_and_read_back_alike():
    records = [{"partition": "0", "sequence": 1, "event": {"id": "é"}}]
    assert archive.encode(records, compress=True) == archive.encode(records, compress=True)
    assert archive.decode("a.jsonl.gz", archive.encode(records, compress=True)) == records
    assert archive.decode("a.jsonl", archive.encode(records)) == records


def _count_up(document):
    return {"id": "d", "offerId": "o", "n": (document or {"n": 0})["n"] + 1}


def test_a_writer_with_a_stale_read_starts_from_what_this_process_wrote_last():
    world = World()
    container = world.stats_container
    store = projection_store.DocumentStore(container, remember=10)
    stale = store.read_many(["d"]).get("d")  # two batches read the document before either wrote it
    store.update_many([ingest.Update("d", "o", _count_up, stale)])
    store.update_many([ingest.Update("d", "o", _count_up, stale)])
    assert container.calls == ["query", "create", "replace"]  # no conflict, no second read
    assert container.documents()["d"]["n"] == 2


def test_without_memory_a_stale_writer_conflicts_and_reads_again():
    world = World()
    container = world.stats_container
    store = projection_store.DocumentStore(container)
    store.update_many([ingest.Update("d", "o", _count_up, None)])
    store.update_many([ingest.Update("d", "o", _count_up, None)])
    assert container.calls == ["create", "create", "read", "replace"]
    assert container.documents()["d"]["n"] == 2


def test_personalizer_events_are_archived_in_order_and_project_into_no_profile():
    from tests.unit.test_learning_rewards import T0, activated, ranked, rewarded
    world = World()
    shoppers = ef.workload(6, 2, seed=4)
    loop = [ranked("e1", T0), rewarded("e1", 1.0, T0), activated("e1", T0)]
    report = ingest.ingest(messages([shoppers[0], *loop, *shoppers[1:]]), world.ports)
    records = world.archived_records()
    assert [r["event"]["id"] for r in records] == [shoppers[0]["id"], *(e["id"] for e in loop),
                                                   *(r["id"] for r in shoppers[1:])]
    assert report.archived == 9 and report.invalid == 0
    assert "personalizer" not in world.profiles()
    assert set(world.profiles()) == {r["subject"] for r in shoppers}


def test_a_batch_counts_its_archived_events_as_traffic_once_and_says_so():
    world = World()
    raws = ef.workload(40, 4, seed=10, with_shown=True)
    batch = messages(raws + [b"garbage"])
    report = ingest.ingest(batch, world.ports)
    traffic = world.traffic()
    assert report.traffic_stats_written == len(traffic) > 0
    assert "traffic statistics written" in report.summary() and "traffic_stats=" in report.summary()
    assert sum(t["events"] for t in traffic.values()) == 40  # the dead letter is no event
    assert {t["partition"] for t in traffic.values()} == {"2"}
    assert world.traffic_container.calls.count("query") == 1  # read with the batch's other documents
    stored = world.traffic_container.items.copy()
    again = ingest.ingest(batch, world.ports)  # redelivered
    assert again.traffic_stats_written == 0 and world.traffic_container.items == stored
    reposted = ingest.ingest(messages(raws, first=900), world.ports)  # the same events in new messages
    assert reposted.traffic_stats_written == 0 and world.traffic_container.items == stored
