"""How fast the local stand-ins are: Event Hubs send/receive, Cosmos DB point reads/upserts.

Event Hubs: 1 KB events in batches of 100 through the official sync SDK, sent to a
4-partition hub and received back by a consumer group. Cosmos DB: documents the size of
a user profile, one client, sequential and from 8 threads.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from azure.cosmos import PartitionKey
from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient
from tqdm import tqdm

from shared.cosmos import client_from_connection_string

EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
BATCH = 100
EVENT_BYTES = 1024
DOCUMENTS = int(os.environ.get("BENCH_DOCUMENTS", "2000"))
THREADS = 8


def _eventhubs(stack) -> dict:
    connection, hub = stack.settings["EventHubConnection"], stack.settings.get("EVENTHUB_NAME", "activity")
    body = b"x" * EVENT_BYTES
    producer = EventHubProducerClient.from_connection_string(connection, eventhub_name=hub)
    with producer, tqdm(total=EVENTS, desc="event hubs send", unit="ev") as bar:
        began = time.perf_counter()
        for start in range(0, EVENTS, BATCH):
            batch = producer.create_batch(partition_key=f"user-{start // BATCH}")
            for _ in range(BATCH):
                batch.add(EventData(body))
            producer.send_batch(batch)
            bar.update(BATCH)
        send_seconds = time.perf_counter() - began

    received = 0
    first_at = None
    done = threading.Event()
    lock = threading.Lock()
    consumer = EventHubConsumerClient.from_connection_string(
        connection, consumer_group="$Default", eventhub_name=hub, prefetch=1000)
    bar = tqdm(total=EVENTS, desc="event hubs receive", unit="ev")

    def on_batch(context, events):
        nonlocal received, first_at
        with lock:
            first_at = first_at or time.perf_counter()
            received += len(events)
            bar.update(len(events))
            if received >= EVENTS:
                done.set()

    began = time.perf_counter()
    worker = threading.Thread(target=consumer.receive_batch, daemon=True,
                              kwargs={"on_event_batch": on_batch, "max_batch_size": 300,
                                      "starting_position": "-1", "max_wait_time": 1})
    worker.start()
    done.wait(timeout=300)
    finished = time.perf_counter()
    consumer.close()
    bar.close()
    return {"eventhubs_send_events_per_s": EVENTS / send_seconds,
            # steady state, from the first event received to the last
            "eventhubs_receive_events_per_s": received / (finished - (first_at or began)),
            "eventhubs_receive_first_event_s": (first_at or finished) - began,
            "eventhubs_events": EVENTS, "eventhubs_events_received": received}


def _cosmos(stack) -> dict:
    client = client_from_connection_string(stack.settings["CosmosDBConnection"])
    database = client.create_database_if_not_exists(f"bench{uuid.uuid4().hex[:6]}")
    container = database.create_container_if_not_exists("profiles", PartitionKey(path="/userId"))
    documents = [{"id": f"u{i}", "userId": f"u{i}", "views": [f"p{j}" for j in range(50)],
                  "affinity": {f"c{j}": j / 20 for j in range(20)}} for i in range(DOCUMENTS)]

    def timed(label, work, items, threads=1):
        began = time.perf_counter()
        with tqdm(total=len(items), desc=label, unit="op") as bar:
            if threads == 1:
                for item in items:
                    work(item)
                    bar.update()
            else:
                with ThreadPoolExecutor(threads) as pool:
                    for _ in pool.map(work, items):
                        bar.update()
        return len(items) / (time.perf_counter() - began)

    figures = {
        "cosmos_upserts_per_s": timed("cosmos upsert", container.upsert_item, documents),
        "cosmos_point_reads_per_s": timed(
            "cosmos read", lambda d: container.read_item(d["id"], partition_key=d["userId"]), documents),
        f"cosmos_upserts_per_s_{THREADS}_threads": timed(
            "cosmos upsert x8", container.upsert_item, documents, THREADS),
        f"cosmos_point_reads_per_s_{THREADS}_threads": timed(
            "cosmos read x8", lambda d: container.read_item(d["id"], partition_key=d["userId"]),
            documents, THREADS),
        "cosmos_documents": DOCUMENTS,
    }
    client.delete_database(database.id)
    return figures


def run(stack) -> dict:
    return {**_eventhubs(stack), **_cosmos(stack)}
