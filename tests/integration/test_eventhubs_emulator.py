"""The local Event Hubs emulator driven by the official azure-eventhub SDK (sync and aio).

Each module run starts its own emulator (and Azurite for the checkpoint store)
on free loopback ports with a temporary data directory.
"""
from __future__ import annotations

import asyncio
import collections
import datetime
import json
import signal
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import pytest
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.aio import EventHubConsumerClient as AioConsumerClient
from azure.eventhub.aio import EventHubProducerClient as AioProducerClient
from azure.eventhub.exceptions import ConnectionLostError, EventHubError

try:
    from .eventhubs_helpers import AzuriteProcess, EmulatorProcess, RawAmqpClient, emulator_config
except ImportError:  # collected without a package (rootdir-relative import)
    from eventhubs_helpers import AzuriteProcess, EmulatorProcess, RawAmqpClient, emulator_config

from local.eventhubs.amqp import codec  # noqa: E402 - helpers put the repo root on sys.path
from local.eventhubs.amqp import performatives as amqp
from local.eventhubs.amqp.framing import PROTOCOL_AMQP, PROTOCOL_SASL, SASL_FRAME
from local.eventhubs.amqp.message import Message
from local.eventhubs.amqp.types import Described, Symbol
from local.eventhubs.partitioning import partition_for_key

pytestmark = [pytest.mark.integration]

KEYED_EVENTS = 10_000
KEYS = 200
RETENTION_SECONDS = 6.0

HUBS = [
    {"name": "activity", "partitions": 4, "groups": ["ingest", "analytics"]},
    {"name": "management", "partitions": 2},
    {"name": "positions", "partitions": 2},
    {"name": "epochs", "partitions": 2},
    {"name": "durability", "partitions": 2},
    {"name": "roundtrip", "partitions": 2},
    {"name": "bigevents", "partitions": 1},
    {"name": "raw", "partitions": 1},
    {"name": "retention", "partitions": 1, "retention_hours": RETENTION_SECONDS / 3600},
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("eventhubs")
    config = workdir / "Config.json"
    config.write_text(json.dumps(emulator_config(HUBS)))
    process = EmulatorProcess(config, workdir / "data", workdir / "emulator.log")
    process.start()
    yield process
    if process.proc is not None:
        process.stop()


@pytest.fixture(scope="module")
def small_frame_emulator(tmp_path_factory: pytest.TempPathFactory):
    """An emulator accepting only 4 KiB frames (so the SDK must split its transfers) with a 3 s idle timeout."""
    workdir = tmp_path_factory.mktemp("eventhubs-small-frames")
    config = workdir / "Config.json"
    config.write_text(json.dumps(emulator_config([{"name": "frames", "partitions": 1}])))
    process = EmulatorProcess(config, workdir / "data", workdir / "emulator.log",
                              extra_args=["--max-frame-size", "4096", "--idle-timeout", "3"])
    process.start()
    yield process
    if process.proc is not None:
        process.stop()


@pytest.fixture(scope="module")
def azurite():
    from azure.storage.blob import BlobServiceClient

    process = AzuriteProcess()
    process.start()
    with BlobServiceClient.from_connection_string(process.connection_string) as service:
        service.create_container("checkpoints")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def keyed_events(emulator: EmulatorProcess) -> List[Dict[str, Any]]:
    """10,000 events sent (aio producer) in batches of 25, one partition key per batch, 200 keys."""
    sent: List[Dict[str, Any]] = []

    async def send() -> None:
        producer = AioProducerClient.from_connection_string(emulator.connection_string, eventhub_name="activity")
        async with producer:
            for round_number in range(KEYED_EVENTS // (KEYS * 25)):
                for k in range(KEYS):
                    key = f"key-{k:03d}"
                    batch = await producer.create_batch(partition_key=key)
                    for _ in range(25):
                        record = {"id": len(sent), "key": key, "round": round_number}
                        event = EventData(json.dumps(record))
                        event.properties = {"id": record["id"], "key": key}
                        batch.add(event)
                        sent.append(record)
                    await producer.send_batch(batch)

    asyncio.run(send())
    assert len(sent) == KEYED_EVENTS
    return sent


# --------------------------------------------------------------------------- helpers


def producer(emulator: EmulatorProcess, hub: str, **kwargs: Any) -> EventHubProducerClient:
    return EventHubProducerClient.from_connection_string(emulator.connection_string, eventhub_name=hub, **kwargs)


def read_partition(emulator: EmulatorProcess, hub: str, partition: str, count: int, *,
                   starting_position: Any = "-1", inclusive: bool = False, timeout: float = 20.0,
                   settle: float = 0.0, group: str = "$Default", contexts: Optional[List[Any]] = None,
                   **receive_kwargs: Any) -> List[EventData]:
    """Receive with the sync client until ``count`` events (then ``settle`` more seconds) or timeout."""
    client = EventHubConsumerClient.from_connection_string(
        emulator.connection_string, consumer_group=group, eventhub_name=hub)
    events: List[EventData] = []
    enough = threading.Event()

    def on_event(context: Any, event: Optional[EventData]) -> None:
        if event is not None:
            events.append(event)
            if contexts is not None:
                contexts.append(context)
            if len(events) >= count:
                enough.set()

    thread = threading.Thread(target=client.receive, kwargs=dict(
        on_event=on_event, partition_id=partition, starting_position=starting_position,
        starting_position_inclusive=inclusive, **receive_kwargs), daemon=True)
    thread.start()
    enough.wait(timeout)
    time.sleep(settle)
    client.close()
    thread.join(10)
    return list(events)


def body(event: EventData) -> Dict[str, Any]:
    return json.loads(event.body_as_str())


def raw_body(event: EventData) -> bytes:
    return b"".join(event.body)  # data bodies come back as an iterable of sections


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


async def async_wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


# --------------------------------------------------------------------------- tests


@pytest.mark.timeout(240)
def test_ten_thousand_keyed_events_are_consumed_exactly_once_in_partition_order_with_blob_checkpoints(
        emulator: EmulatorProcess, azurite: AzuriteProcess, keyed_events: List[Dict[str, Any]]) -> None:
    from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

    records: List[Dict[str, Any]] = []

    async def consume(stop_at: int, quiet_seconds: float) -> None:
        """Run a consumer until ``stop_at`` events are recorded, then stop it between batches."""
        store = BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints")
        client = AioConsumerClient.from_connection_string(
            emulator.connection_string, consumer_group="ingest", eventhub_name="activity",
            checkpoint_store=store, load_balancing_interval=1, load_balancing_strategy="greedy")
        state = {"stopping": False, "in_flight": 0}

        async def on_batch(context: Any, events: List[EventData]) -> None:
            if state["stopping"] or not events:
                return  # not recorded, not checkpointed: will be redelivered after the restart
            state["in_flight"] += 1
            try:
                await context.update_checkpoint(events[-1])
                for event in events:
                    records.append({**body(event), "partition": context.partition_id,
                                    "sequence_number": event.sequence_number, "app_id": event.properties[b"id"],
                                    "partition_key": event.partition_key})
            finally:
                state["in_flight"] -= 1

        task = asyncio.create_task(client.receive_batch(on_batch, max_batch_size=100, starting_position="-1"))
        assert await async_wait_until(lambda: len(records) >= stop_at, 90), \
            f"only {len(records)} events received (wanted {stop_at})"
        await asyncio.sleep(quiet_seconds)  # duplicates, if any, would show up here
        state["stopping"] = True
        await async_wait_until(lambda: state["in_flight"] == 0, 10)
        await client.close()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):  # noqa: BLE001
            pass
        await store.close()

    async def checkpoints() -> Dict[str, Dict[str, Any]]:
        store = BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints")
        async with store:
            found = await store.list_checkpoints(f"localhost:{emulator.port}", "activity", "ingest")
        return {c["partition_id"]: c for c in found}

    asyncio.run(consume(stop_at=KEYED_EVENTS // 2, quiet_seconds=0))
    first_phase = len(records)
    assert KEYED_EVENTS // 2 <= first_phase < KEYED_EVENTS
    asyncio.run(consume(stop_at=KEYED_EVENTS, quiet_seconds=1.5))  # resumes from the blob checkpoints

    ids = collections.Counter(r["id"] for r in records)
    assert sorted(ids) == list(range(KEYED_EVENTS)), "some events were never received"
    assert [i for i, n in ids.items() if n > 1] == [], "some events were received more than once"
    assert all(r["app_id"] == r["id"] for r in records), "application properties differ from the body"
    assert all(r["partition_key"] == r["key"].encode() for r in records)

    partitions_of_key = collections.defaultdict(set)
    for r in records:
        partitions_of_key[r["key"]].add(r["partition"])
    assert all(len(p) == 1 for p in partitions_of_key.values()), "a key's events landed in several partitions"
    # Routing is a pure function of the key (not Python's per-process hash()), so it survives restarts.
    assert all(p == {str(partition_for_key(key, 4))} for key, p in partitions_of_key.items())
    assert len({p for ps in partitions_of_key.values() for p in ps}) == 4, "keys should spread over all partitions"

    by_partition = collections.defaultdict(list)
    for r in records:
        by_partition[r["partition"]].append(r)
    for partition_id, rows in by_partition.items():
        rows.sort(key=lambda r: r["sequence_number"])
        assert [r["sequence_number"] for r in rows] == list(range(len(rows))), f"gaps in partition {partition_id}"
        assert [r["id"] for r in rows] == sorted(r["id"] for r in rows), \
            f"partition {partition_id} is not in send order"

    saved = asyncio.run(checkpoints())
    assert sorted(saved) == ["0", "1", "2", "3"]
    for partition_id, rows in by_partition.items():
        assert saved[partition_id]["sequence_number"] == len(rows) - 1


@pytest.mark.timeout(180)
def test_a_second_consumer_group_reads_all_the_same_events_independently_with_the_sync_client(
        emulator: EmulatorProcess, keyed_events: List[Dict[str, Any]]) -> None:
    client = EventHubConsumerClient.from_connection_string(
        emulator.connection_string, consumer_group="analytics", eventhub_name="activity")
    received: List[Dict[str, Any]] = []
    lock = threading.Lock()

    def on_batch(context: Any, events: List[EventData]) -> None:
        with lock:
            for event in events:
                received.append({**body(event), "partition": context.partition_id,
                                 "sequence_number": event.sequence_number})

    thread = threading.Thread(target=client.receive_batch, kwargs=dict(
        on_event_batch=on_batch, starting_position="-1", max_batch_size=300), daemon=True)
    thread.start()
    assert wait_until(lambda: len(received) >= KEYED_EVENTS, 120), f"only {len(received)} events"
    time.sleep(1.0)
    client.close()
    thread.join(10)

    assert sorted(r["id"] for r in received) == list(range(KEYED_EVENTS))
    assert len({(r["partition"], r["sequence_number"]) for r in received}) == KEYED_EVENTS
    # The default consumer group is unaffected by what "analytics" read.
    again = read_partition(emulator, "activity", "0", 5)
    assert [e.sequence_number for e in again[:5]] == [0, 1, 2, 3, 4]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_no_accepted_event_is_lost_when_the_emulator_restarts_and_sequence_numbers_continue(
        emulator: EmulatorProcess, stop_signal: signal.Signals) -> None:
    partition = "0" if stop_signal == signal.SIGTERM else "1"
    before = producer(emulator, "durability").get_partition_properties(partition)
    accepted: List[int] = []
    stopped = threading.Event()

    def keep_sending() -> None:
        client = producer(emulator, "durability", retry_total=0)
        n = 0
        try:
            while not stopped.is_set():
                batch = client.create_batch(partition_id=partition)
                ids = list(range(n, n + 10))
                for i in ids:
                    batch.add(EventData(json.dumps({"id": i, "signal": stop_signal.name})))
                client.send_batch(batch)
                accepted.extend(ids)  # only after the emulator settled the transfer as accepted
                n += 10
        except Exception:  # noqa: BLE001 - the send in flight when the emulator dies may fail
            pass
        finally:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    assert wait_until(lambda: len(accepted) >= 200, 30)
    exit_code = emulator.stop(stop_signal)
    stopped.set()
    sender.join(30)
    if stop_signal == signal.SIGTERM:
        assert exit_code == 0, "graceful shutdown should exit 0"
    emulator.start()

    after_restart = producer(emulator, "durability").get_partition_properties(partition)
    stored = after_restart["last_enqueued_sequence_number"] - before["last_enqueued_sequence_number"]
    assert stored >= len(accepted)

    events = read_partition(emulator, "durability", partition, stored,
                            starting_position=before["last_enqueued_sequence_number"])
    ids = [body(e)["id"] for e in events]
    assert set(accepted) <= set(ids), f"{len(set(accepted) - set(ids))} accepted events were lost"
    assert len(ids) == len(set(ids))
    assert [e.sequence_number for e in events] == list(
        range(before["last_enqueued_sequence_number"] + 1, after_restart["last_enqueued_sequence_number"] + 1))

    with producer(emulator, "durability") as client:
        client.send_event(EventData(json.dumps({"id": -1, "signal": "after"})), partition_id=partition)
        latest = client.get_partition_properties(partition)
    assert latest["last_enqueued_sequence_number"] == after_restart["last_enqueued_sequence_number"] + 1
    assert int(latest["last_enqueued_offset"]) > int(after_restart["last_enqueued_offset"])


@pytest.mark.timeout(120)
def test_an_epoch_receiver_takes_a_partition_over_and_lower_or_no_epoch_receivers_are_refused(
        emulator: EmulatorProcess) -> None:
    async def scenario() -> None:
        def receiver(owner_level: Optional[int]) -> Dict[str, Any]:
            client = AioConsumerClient.from_connection_string(
                emulator.connection_string, consumer_group="$Default", eventhub_name="epochs", retry_total=0)
            state: Dict[str, Any] = {"client": client, "events": [], "errors": []}

            async def on_event(_context: Any, event: Optional[EventData]) -> None:
                state["events"].append(body(event)["n"])

            async def on_error(_context: Any, error: Exception) -> None:
                state["errors"].append(error)

            kwargs: Dict[str, Any] = {"partition_id": "0", "starting_position": "-1", "on_error": on_error}
            if owner_level is not None:
                kwargs["owner_level"] = owner_level
            state["task"] = asyncio.create_task(client.receive(on_event, **kwargs))
            return state

        async def send(n: int) -> None:
            async with AioProducerClient.from_connection_string(
                    emulator.connection_string, eventhub_name="epochs") as client:
                await client.send_event(EventData(json.dumps({"n": n})), partition_id="0")

        old = receiver(owner_level=1)
        await send(1)
        assert await async_wait_until(lambda: old["events"] == [1], 20), old

        new = receiver(owner_level=2)
        assert await async_wait_until(lambda: new["events"] == [1], 20), new
        assert await async_wait_until(lambda: bool(old["errors"]), 20), "the old receiver was not disconnected"
        assert isinstance(old["errors"][0], ConnectionLostError)  # amqp:link:stolen
        assert "higher epoch" in str(old["errors"][0]), str(old["errors"][0])

        await send(2)
        assert await async_wait_until(lambda: new["events"] == [1, 2], 20), new
        await asyncio.sleep(0.5)
        assert old["events"] == [1], "the old receiver kept receiving after losing the partition"

        lower = receiver(owner_level=1)
        plain = receiver(owner_level=None)
        assert await async_wait_until(lambda: bool(lower["errors"]) and bool(plain["errors"]), 20)
        assert "epoch" in str(lower["errors"][0]) and "epoch" in str(plain["errors"][0])
        assert lower["events"] == [] and plain["events"] == []
        assert not new["errors"], new["errors"]

        await send(3)
        assert await async_wait_until(lambda: new["events"] == [1, 2, 3], 20), new
        for state in (old, new, lower, plain):
            await state["client"].close()
            state["task"].cancel()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_management_reports_hub_and_partition_properties_before_and_after_sending(
        emulator: EmulatorProcess) -> None:
    with producer(emulator, "management") as client:
        hub = client.get_eventhub_properties()
        empty = client.get_partition_properties("1")
        start = datetime.datetime.now(datetime.timezone.utc)
        batch = client.create_batch(partition_id="1")
        for n in range(3):
            batch.add(EventData(f"event {n}"))
        client.send_batch(batch)
        filled = client.get_partition_properties("1")
        other = client.get_partition_properties("0")

    assert hub["eventhub_name"] == "management"
    assert hub["partition_ids"] == ["0", "1"]
    assert abs((datetime.datetime.now(datetime.timezone.utc) - hub["created_at"]).total_seconds()) < 600

    assert empty["id"] == "1" and empty["eventhub_name"] == "management"
    assert empty["is_empty"] is True
    assert empty["beginning_sequence_number"] == 0
    assert empty["last_enqueued_sequence_number"] == -1
    assert empty["last_enqueued_offset"] == "-1"

    assert filled["is_empty"] is False
    assert filled["beginning_sequence_number"] == 0
    assert filled["last_enqueued_sequence_number"] == 2
    assert abs((filled["last_enqueued_time_utc"] - start).total_seconds()) < 5
    assert other["is_empty"] is True

    contexts: List[Any] = []
    events = read_partition(emulator, "management", "1", 3, contexts=contexts,
                            track_last_enqueued_event_properties=True)
    assert [e.body_as_str() for e in events] == ["event 0", "event 1", "event 2"]
    assert events[-1].offset == filled["last_enqueued_offset"]
    assert events[-1].enqueued_time == filled["last_enqueued_time_utc"]
    # Receiver runtime metrics (delivery annotations) describe the partition's last event.
    last = contexts[0].last_enqueued_event_properties
    assert last["sequence_number"] == 2
    assert last["offset"] == filled["last_enqueued_offset"]
    assert last["enqueued_time"] == filled["last_enqueued_time_utc"]
    assert isinstance(last["retrieval_time"], datetime.datetime)


@pytest.mark.timeout(120)
def test_receivers_start_at_offsets_sequence_numbers_enqueued_times_and_latest_with_annotations(
        emulator: EmulatorProcess) -> None:
    with producer(emulator, "positions") as client:
        for first in (0, 5):
            batch = client.create_batch(partition_id="0")
            for n in range(first, first + 5):
                batch.add(EventData(json.dumps({"n": n})))
            client.send_batch(batch)
            time.sleep(0.05)  # the two batches get different enqueued times
        before_keyed = {p: client.get_partition_properties(p)["last_enqueued_sequence_number"] for p in ("0", "1")}
        client.send_event(EventData(json.dumps({"n": "keyed"})), partition_key="customer-42")
        after_keyed = {p: client.get_partition_properties(p)["last_enqueued_sequence_number"] for p in ("0", "1")}

    events = read_partition(emulator, "positions", "0", 10)[:10]  # the keyed event may follow
    assert [body(e)["n"] for e in events] == list(range(10))
    assert [e.sequence_number for e in events] == list(range(10))
    offsets = [int(e.offset) for e in events]
    assert offsets == sorted(offsets) and len(set(offsets)) == 10 and offsets[0] == 0
    assert all(isinstance(e.enqueued_time, datetime.datetime) for e in events)
    assert events[0].enqueued_time < events[5].enqueued_time
    assert all(e.partition_key is None for e in events)
    system = events[3].system_properties
    assert system[b"x-opt-sequence-number"] == 3 and system[b"x-opt-offset"] == events[3].offset.encode()

    def first_from(position: Any, inclusive: bool) -> int:
        return body(read_partition(emulator, "positions", "0", 1, starting_position=position,
                                   inclusive=inclusive)[0])["n"]

    assert first_from(events[3].offset, inclusive=False) == 4
    assert first_from(events[3].offset, inclusive=True) == 3
    assert first_from(5, inclusive=False) == 6
    assert first_from(5, inclusive=True) == 5
    assert first_from(events[0].enqueued_time, inclusive=True) == 0
    assert first_from(events[0].enqueued_time, inclusive=False) == 5

    keyed_partition = next(p for p in ("0", "1") if after_keyed[p] == before_keyed[p] + 1)
    keyed = read_partition(emulator, "positions", keyed_partition, 1, starting_position=before_keyed[keyed_partition])
    assert [body(e)["n"] for e in keyed] == ["keyed"]
    assert keyed[0].partition_key == b"customer-42"
    assert keyed[0].system_properties[b"x-opt-partition-key"] == b"customer-42"

    # "@latest": only events enqueued after the receiver attached.
    client = EventHubConsumerClient.from_connection_string(
        emulator.connection_string, consumer_group="$Default", eventhub_name="positions")
    latest: List[EventData] = []
    thread = threading.Thread(target=client.receive, kwargs=dict(
        on_event=lambda _c, e: latest.append(e), partition_id="0", starting_position="@latest"), daemon=True)
    thread.start()
    time.sleep(2.0)
    with producer(emulator, "positions") as sender:
        sender.send_event(EventData(json.dumps({"n": "new"})), partition_id="0")
    assert wait_until(lambda: len(latest) >= 1, 20)
    client.close()
    thread.join(10)
    assert [body(e)["n"] for e in latest] == ["new"]


@pytest.mark.timeout(120)
def test_sync_and_aio_producers_and_consumers_round_trip_bodies_and_properties_exactly(
        emulator: EmulatorProcess) -> None:
    def make_events(tag: str) -> List[EventData]:
        events = []
        for n in range(20):
            event = EventData(f"{tag}-{n}".encode() + bytes(range(256)))
            event.properties = {"n": n, "tag": tag, "ratio": n / 4, "flag": n % 2 == 0}
            event.content_type = "application/octet-stream"
            event.correlation_id = f"corr-{tag}-{n}"
            event.message_id = f"msg-{tag}-{n}"
            events.append(event)
        return events

    with producer(emulator, "roundtrip") as sync_producer:
        sync_producer.send_batch(make_events("sync"), partition_id="0")

    async def aio_side() -> List[EventData]:
        async with AioProducerClient.from_connection_string(emulator.connection_string,
                                                            eventhub_name="roundtrip") as aio_producer:
            await aio_producer.send_batch(make_events("aio"), partition_id="1")
        received: List[EventData] = []
        consumer = AioConsumerClient.from_connection_string(
            emulator.connection_string, consumer_group="$Default", eventhub_name="roundtrip")

        async def on_event(_context: Any, event: EventData) -> None:
            received.append(event)

        task = asyncio.create_task(consumer.receive(on_event, partition_id="0", starting_position="-1"))
        await async_wait_until(lambda: len(received) >= 20, 20)
        await consumer.close()
        task.cancel()
        return received

    aio_received = asyncio.run(aio_side())  # aio consumer reads what the sync producer sent
    sync_received = read_partition(emulator, "roundtrip", "1", 20)  # and vice versa

    for tag, received in (("sync", aio_received), ("aio", sync_received)):
        assert len(received) == 20, tag
        for n, event in enumerate(received):
            assert raw_body(event) == f"{tag}-{n}".encode() + bytes(range(256))
            assert event.properties == {b"n": n, b"tag": tag.encode(), b"ratio": n / 4, b"flag": n % 2 == 0}
            assert event.content_type == "application/octet-stream"
            assert event.correlation_id == f"corr-{tag}-{n}"
            assert event.message_id == f"msg-{tag}-{n}"


@pytest.mark.timeout(90)
def test_large_events_cross_multi_frame_transfers_in_both_directions(
        emulator: EmulatorProcess, small_frame_emulator: EmulatorProcess) -> None:
    # The 4 KiB-frame emulator makes the SDK split every 20 KB event into several frames.
    payloads = [bytes([n]) * 20_000 for n in range(10)]
    with producer(small_frame_emulator, "frames") as client:
        client.send_batch([EventData(p) for p in payloads], partition_id="0")
    received = read_partition(small_frame_emulator, "frames", "0", 10)
    assert [raw_body(e) for e in received] == payloads

    # Near the 1 MiB message limit, the delivered message (with the emulator's
    # annotations) exceeds the SDK's 1 MiB frame, so the emulator splits it.
    big = (bytes(range(256)) * 4096)[:1024 * 1024 - 64]
    with producer(emulator, "bigevents") as client:
        batch = client.create_batch(partition_id="0")
        batch.add(EventData(big))
        client.send_batch(batch)
    received = read_partition(emulator, "bigevents", "0", 1, timeout=30)
    assert len(received) == 1 and raw_body(received[0]) == big


@pytest.mark.timeout(60)
def test_heartbeats_honour_the_peer_idle_timeout_and_silent_peers_are_closed(
        small_frame_emulator: EmulatorProcess) -> None:
    client = RawAmqpClient(small_frame_emulator.port)
    try:
        client.sock.sendall(PROTOCOL_AMQP)
        assert client.recv_exact(8) == PROTOCOL_AMQP
        client.send(0, amqp.Open(container_id="heartbeats", idle_timeout=1000))
        _, opened, _, _ = client.expect(amqp.Open)
        assert opened.idle_timeout == 3000  # this emulator runs with --idle-timeout 3

        # We keep talking (empty frames); the emulator must send its own at least every 1 s.
        heartbeats, started = [], time.monotonic()
        while time.monotonic() - started < 3.0:
            client.send_empty()
            frame = client.read_any(timeout=1.5)
            assert frame is None, f"unexpected {frame!r}"
            heartbeats.append(time.monotonic())
        gaps = [b - a for a, b in zip(heartbeats, heartbeats[1:])]
        assert len(heartbeats) >= 3 and max(gaps) < 1.0 + 0.5

        # Now silence: the emulator closes the connection after its 3 s idle timeout.
        silent_since = time.monotonic()
        while True:
            frame = client.read_any(timeout=6)
            if frame is not None:
                break
        assert isinstance(frame, amqp.Close)
        assert frame.error.condition == "amqp:resource-limit-exceeded"
        assert 2.5 <= time.monotonic() - silent_since <= 6
    finally:
        client.close()


@pytest.mark.timeout(60)
def test_unknown_hubs_consumer_groups_and_partitions_are_reported_as_not_found(
        emulator: EmulatorProcess) -> None:
    def receive_error(hub: str, group: str, partition: str) -> str:
        client = EventHubConsumerClient.from_connection_string(
            emulator.connection_string, consumer_group=group, eventhub_name=hub, retry_total=0)
        errors: List[Exception] = []
        thread = threading.Thread(target=client.receive, kwargs=dict(
            on_event=lambda _c, _e: None, on_error=lambda _c, e: errors.append(e), partition_id=partition),
            daemon=True)
        thread.start()
        wait_until(lambda: bool(errors), 20)
        client.close()
        thread.join(10)
        assert errors, f"no error for {hub}/{group}/{partition}"
        return str(errors[0])

    assert "could not be found" in receive_error("no-such-hub", "$Default", "0")
    assert "consumer group 'nobody'" in receive_error("positions", "nobody", "0")
    assert "7" in receive_error("positions", "$Default", "7")  # the SDK checks partition ids itself

    with pytest.raises(EventHubError) as raised:
        with producer(emulator, "positions", retry_total=0) as client:
            client.get_partition_properties("7")
    assert "Partition '7' does not exist" in str(raised.value)

    with pytest.raises(EventHubError) as raised:
        with producer(emulator, "no-such-hub", retry_total=0) as client:
            client.get_eventhub_properties()
    assert "404" in str(raised.value) or "could not be found" in str(raised.value)

    with pytest.raises(EventHubError) as raised:
        with producer(emulator, "no-such-hub", retry_total=0) as client:
            client.send_event(EventData("lost"), partition_id="0")
    assert "could not be found" in str(raised.value)


@pytest.mark.timeout(60)
def test_garbage_and_abrupt_disconnects_do_not_disturb_other_clients(emulator: EmulatorProcess) -> None:
    for payload in (b"GET / HTTP/1.1\r\n\r\n", b"AMQP\x00\x01\x00\x00" + b"\xff" * 64, b"AMQP\x03\x01\x00\x00"):
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
            sock.sendall(payload)
            try:
                sock.recv(1024)
            except OSError:
                pass
    with producer(emulator, "management") as client:
        assert client.get_eventhub_properties()["eventhub_name"] == "management"
    assert emulator.proc is not None and emulator.proc.poll() is None


@pytest.mark.timeout(60)
def test_retention_drops_expired_events_and_advances_the_beginning_sequence_number(
        emulator: EmulatorProcess) -> None:
    with producer(emulator, "retention") as client:
        client.send_batch([EventData(f"old {n}") for n in range(5)], partition_id="0")
        fresh = client.get_partition_properties("0")
        time.sleep(RETENTION_SECONDS + 1.0)
        expired = client.get_partition_properties("0")
        client.send_batch([EventData(f"new {n}") for n in range(2)], partition_id="0")
        refilled = client.get_partition_properties("0")

    assert fresh["beginning_sequence_number"] == 0 and fresh["last_enqueued_sequence_number"] == 4
    assert expired["is_empty"] is True
    assert expired["beginning_sequence_number"] == 5
    assert expired["last_enqueued_sequence_number"] == 4
    assert refilled["beginning_sequence_number"] == 5 and refilled["last_enqueued_sequence_number"] == 6

    events = read_partition(emulator, "retention", "0", 2, settle=0.5)
    assert [e.body_as_str() for e in events] == ["new 0", "new 1"]
    assert [e.sequence_number for e in events] == [5, 6]


@pytest.mark.timeout(60)
def test_raw_amqp_peers_get_sasl_plain_drain_echo_and_full_length_performatives(
        emulator: EmulatorProcess) -> None:
    selector = "apache.org:selector-filter:string"
    client = RawAmqpClient(emulator.port)
    try:
        client.sock.sendall(PROTOCOL_SASL)
        assert client.recv_exact(8) == PROTOCOL_SASL
        _, mechanisms, _, _ = client.expect(amqp.SaslMechanisms)
        assert {"ANONYMOUS", "PLAIN"} <= set(mechanisms.sasl_server_mechanisms)
        client.send(0, amqp.SaslInit(mechanism="PLAIN", initial_response=b"\0user\0any-password"),
                    frame_type=SASL_FRAME)
        _, outcome, _, _ = client.expect(amqp.SaslOutcome)
        assert outcome.code == 0
        client.sock.sendall(PROTOCOL_AMQP)
        assert client.recv_exact(8) == PROTOCOL_AMQP

        client.send(0, amqp.Open(container_id="raw", max_frame_size=65536, channel_max=9))
        _, opened, _, _ = client.expect(amqp.Open)
        assert opened.max_frame_size >= 512
        client.send(5, amqp.Begin(next_outgoing_id=0, incoming_window=100, outgoing_window=100))
        channel, begun, _, _ = client.expect(amqp.Begin)
        assert begun.remote_channel == 5 and channel <= 9

        source = amqp.Source(address="raw/ConsumerGroups/$Default/Partitions/0", filter={
            Symbol(selector): Described(Symbol(selector), "amqp.annotation.x-opt-offset > '@latest'")})
        client.send(5, amqp.Attach(name="raw-receiver", handle=7, role=True, snd_settle_mode=1, rcv_settle_mode=0,
                                   source=source, target=amqp.Target(address="raw-client")))
        _, attached, attach_body, _ = client.expect(amqp.Attach)
        assert len(codec.decode(attach_body)[0].value) == 14, "attach replies must carry every field"
        assert attached.role is False and attached.initial_delivery_count == 0
        assert attached.source.address == source.address and attached.target.address == "raw-client"

        # Drain with nothing to deliver: the credit is consumed and reported back.
        client.send(5, amqp.Flow(next_incoming_id=0, incoming_window=100, next_outgoing_id=0, outgoing_window=100,
                                 handle=7, delivery_count=0, link_credit=5, drain=True))
        _, drained, _, _ = client.expect(amqp.Flow)
        assert drained.handle == attached.handle
        assert (drained.link_credit, drained.delivery_count, drained.drain) == (0, 5, True)

        # Echo returns the link state; the new credit is then used for a real event.
        client.send(5, amqp.Flow(next_incoming_id=0, incoming_window=100, next_outgoing_id=0, outgoing_window=100,
                                 handle=7, delivery_count=5, link_credit=3, echo=True))
        _, echoed, _, _ = client.expect(amqp.Flow)
        assert (echoed.link_credit, echoed.delivery_count) == (3, 5)

        with producer(emulator, "raw") as sender:
            event = EventData(b"over raw amqp")
            event.properties = {"kind": "raw"}
            sender.send_event(event, partition_id="0")
        _, transfer, transfer_body, payload = client.expect(amqp.Transfer)
        fields = codec.decode(transfer_body)[0].value
        assert len(fields) == 11, "transfers must carry all 11 fields (the SDK reads them by position)"
        assert transfer.handle == attached.handle and transfer.settled is True and not transfer.more
        message = Message.parse(payload)
        assert message.annotations["x-opt-sequence-number"] == 0
        assert message.annotations["x-opt-offset"] == "0"
        assert message.application_properties == {"kind": "raw"}
        assert [bytes(d) for d in message.data_sections()] == [b"over raw amqp"]

        client.send(0, amqp.Close())
        client.expect(amqp.Close)
    finally:
        client.close()

    # A peer may also skip SASL entirely.
    plain = RawAmqpClient(emulator.port)
    try:
        plain.sock.sendall(PROTOCOL_AMQP)
        assert plain.recv_exact(8) == PROTOCOL_AMQP
        plain.send(0, amqp.Open(container_id="no-sasl"))
        plain.expect(amqp.Open)
        plain.send(0, amqp.Close())
        plain.expect(amqp.Close)
    finally:
        plain.close()


@pytest.mark.timeout(30)
def test_invalid_configs_are_refused_with_a_message_naming_the_problem(tmp_path: Any) -> None:
    import subprocess
    import sys

    bad = emulator_config([{"name": "activity", "partitions": 0}])
    config = tmp_path / "Config.json"
    config.write_text(json.dumps(bad))
    result = subprocess.run([sys.executable, "-m", "local.eventhubs", "--config", str(config), "--port", "0",
                             "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=20,
                            cwd=EmulatorProcess.root())
    assert result.returncode == 2
    assert "PartitionCount must be between 1 and 32" in result.stderr


@pytest.mark.timeout(30)
def test_the_amqp_codec_round_trips_every_type_and_partition_hashing_matches_lookup3() -> None:
    import uuid

    from local.eventhubs.amqp import types as t
    from local.eventhubs.partitioning import hashlittle2

    values = [
        None, True, False, t.UByte(255), t.UShort(65535), t.UInt(0), t.UInt(7), t.UInt(2**32 - 1), t.ULong(0),
        t.ULong(200), t.ULong(2**64 - 1), t.Byte(-128), t.Short(-32768), t.Int(-5), t.Int(2**31 - 1), -1,
        2**63 - 1, t.Timestamp(1_700_000_000_123), t.Float(1.5), 2.25, t.Char("é"), uuid.uuid4(), b"", b"x" * 300,
        "", "ünïcode" * 60, t.Symbol("x-opt-offset"), [], [1, "a", [t.UInt(3)]], {"k": {"nested": [None]}},
        t.Array([t.Symbol("a"), t.Symbol("b")], t.Symbol), t.Array(["s" * 300], str), t.Array([1, 2], t.Long),
        t.Array([True, False], bool), t.Described(t.ULong(0x24), []), t.Described(t.Symbol("x:y"), "v"),
        t.Decimal64(b"\x01" * 8),
    ]
    for value in values:
        encoded = codec.encode(value)
        decoded, end = codec.decode(encoded)
        assert end == len(encoded) == codec.skip(encoded, 0), value
        expected_type = t.Long if type(value) is int else type(value)  # plain ints travel as AMQP long
        assert decoded == value and type(decoded) is expected_type, (value, decoded)
        if isinstance(value, t.Array):
            assert decoded.element_type is value.element_type
    with pytest.raises(codec.DecodeError):
        codec.decode(b"\xa1\x05ab")  # truncated string

    # Published lookup3 test vectors: the partition of a key must never depend on the process.
    assert hashlittle2(b"") == (0xDEADBEEF, 0xDEADBEEF)
    assert hashlittle2(b"", 0, 0xDEADBEEF) == (0xBD5B7DDE, 0xDEADBEEF)
    assert hashlittle2(b"Four score and seven years ago")[0] == 0x17770551
    assert hashlittle2(b"Four score and seven years ago", 1)[0] == 0xCD628161
