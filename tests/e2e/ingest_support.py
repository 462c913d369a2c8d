"""Helpers of the ingest end-to-end tests: send straight to the hub, read the archive and documents back."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Callable, Iterable, Mapping, Optional

from azure.eventhub import EventData, EventHubProducerClient

from local.eventhubs.partitioning import partition_for_key
from shared import archive, projection_store, settings
from shared.projections import strip_system_fields
from tests.waiting import wait_for  # noqa: F401  (callers import it from here too)


def send_to_hub(app_settings: Mapping[str, str], bodies: Iterable, partitions: int = 4,
                partition_of: Optional[Callable[[object], str]] = None) -> int:
    """Send events (dicts, or raw bytes with `partition_of`) as the API would place them: each
    user's events in order on the partition its userId hashes to, users interleaved. Returns
    how many were sent."""
    by_partition: dict[str, list[bytes]] = defaultdict(list)
    for body in bodies:
        partition = (partition_of(body) if partition_of else
                     str(partition_for_key(body["subject"], partitions)))
        by_partition[partition].append(body if isinstance(body, bytes) else json.dumps(body).encode())
    producer = EventHubProducerClient.from_connection_string(
        app_settings["EventHubConnection"], eventhub_name=app_settings.get("EVENTHUB_NAME") or "activity")
    with producer:
        for partition, items in by_partition.items():
            batch = producer.create_batch(partition_id=partition)
            for item in items:
                try:
                    batch.add(EventData(item))
                except ValueError:  # full
                    producer.send_batch(batch)
                    batch = producer.create_batch(partition_id=partition)
                    batch.add(EventData(item))
            producer.send_batch(batch)
    return sum(len(v) for v in by_partition.values())


class ArchiveWatch:
    """Counts archived copies of a set of event ids, re-reading a blob whenever its etag changes.

    A batch redelivered after a crash rewrites the blob of the same name, possibly with more
    events than the first write, so a blob read once may change later.
    """

    def __init__(self, app_settings: Mapping[str, str], ids: Iterable[str]):
        self.store = archive.from_settings(settings.load(app_settings))
        self.ids = set(ids)
        self.etags: dict[str, str] = {}
        self.by_blob: dict[str, list[dict]] = {}
        self.copies: Counter = Counter()
        self.records: dict[str, dict] = {}

    def poll(self) -> int:
        changed = [b for b in (archive.parse_name(p.name) for p in self._listing()) if b]
        for batch, records in self.store.read_all(changed):
            self.by_blob[batch.name] = [r for r in records if r["event"]["id"] in self.ids]
        if changed:
            self.copies = Counter(r["event"]["id"] for rs in self.by_blob.values() for r in rs)
            self.records = {r["event"]["id"]: r for rs in self.by_blob.values() for r in rs}
        return len(self.copies)

    def _listing(self):
        """Blobs that are new or rewritten since the last poll."""
        for properties in self.store.raw.list_blobs():
            if self.etags.get(properties.name) != properties.etag:
                self.etags[properties.name] = properties.etag
                yield properties

    def dead_letters(self) -> list[dict]:
        return [r for b, records in self.store.read_all(self.store.list_batches(dead_letters=True), dead_letters=True)
                for r in records]


def documents(app_settings: Mapping[str, str]) -> tuple[projection_store.DocumentStore, projection_store.DocumentStore]:
    config = settings.load(app_settings)
    return projection_store.profiles(config), projection_store.offer_stats(config)


def read_docs(store: projection_store.DocumentStore, ids: Iterable[str]) -> dict[str, dict]:
    return {i: v.document for i, v in store.read_many(list(ids)).items()}


def with_etags(store: projection_store.DocumentStore, ids: Iterable[str]) -> dict[str, tuple[str, dict]]:
    return {i: (v.etag, strip_system_fields(v.document)) for i, v in store.read_many(list(ids)).items()}
