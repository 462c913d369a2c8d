"""Profiles, offer statistics and traffic in Cosmos DB: batched reads and etag-conditional writes.

A batch of events touches each document once: `read_many` fetches every touched document
with a query per chunk of ids (one round trip for hundreds of documents, where point reads
cost one each), then `update_many` writes each changed document once, a few in parallel,
each conditional on the etag it was read with. On a conflict (another writer got there
first) the document is read again and the change recomputed from it, a bounded number of
times; the changes are pure functions of the document, so recomputing is safe.

Offer statistics are hot: every partition's batches touch the same offer-hour documents at
the same time. Writers of one document in this process take turns (a lock per id stripe),
and a store made with `remember=N` keeps the last version it wrote of up to N documents, so
the next writer starts from that instead of its older read and does not conflict at all.
Only writers in other processes (other instances) still meet etag conflicts.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Iterator, Optional, Sequence

from azure.core import MatchConditions
from azure.cosmos import ContainerProxy
from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from . import cosmos, resources
from .catalog_store import PAGE_SIZE
from .ingest import Update, Versioned
from .projections import strip_system_fields
from .settings import Settings

log = logging.getLogger(__name__)
READ_CHUNK = 200  # ids per query: well within the query size limits, few round trips
THREADS = 8
STRIPES = 64  # locks for writers of the same document; ids hash onto them


class ConflictError(Exception):
    """A document kept changing under us; the batch should be retried later."""


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="cosmos-write")


def _versioned(item: dict) -> Versioned:
    return Versioned(strip_system_fields(item), item["_etag"])


class DocumentStore:
    """One container's documents, read in batches and written with optimistic concurrency."""

    def __init__(self, container: ContainerProxy, attempts: int = 10, remember: int = 0):
        self.container = container
        self.attempts = attempts
        self.remember = remember
        self._stripes = [threading.Lock() for _ in range(STRIPES)]
        self._written: OrderedDict[str, Versioned] = OrderedDict()  # the last version this process wrote
        self._written_lock = threading.Lock()

    def read_many(self, ids: Sequence[str]) -> dict[str, Versioned]:
        """The documents with these ids that exist, by id (one query per READ_CHUNK ids)."""
        found: dict[str, Versioned] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), READ_CHUNK):
            chunk = unique[start:start + READ_CHUNK]
            query = "SELECT * FROM c WHERE ARRAY_CONTAINS(@ids, c.id)"
            for item in self.container.query_items(query, parameters=[{"name": "@ids", "value": chunk}],
                                                   enable_cross_partition_query=True):
                found[item["id"]] = _versioned(item)
        return found

    def read(self, id: str, partition_key: str) -> Optional[Versioned]:
        """One document by id and partition key, or None."""
        try:
            return _versioned(self.container.read_item(id, partition_key=partition_key))
        except CosmosResourceNotFoundError:
            return None

    def update_many(self, updates: Sequence[Update]) -> int:
        """Apply every update (in parallel); returns how many documents were written.

        Raises the first failure after all have finished (ConflictError when retries ran out).
        """
        if not updates:
            return 0
        if len(updates) == 1:
            return int(self._update(updates[0]))
        futures = [_pool().submit(self._update, u) for u in updates]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return sum(f.result() for f in futures)

    def _update(self, update: Update) -> bool:
        with self._stripes[hash(update.id) % STRIPES]:
            current = self._newest(update.id, update.current)
            for attempt in range(self.attempts):
                document = update.change(current.document if current else None)
                if document is None:
                    return False
                try:
                    if current is None:
                        result = self.container.create_item(document, no_response=True)
                    else:
                        result = self.container.replace_item(update.id, document, etag=current.etag,
                                                             match_condition=MatchConditions.IfNotModified,
                                                             no_response=True)
                    self._remember(update.id, document, result)
                    return True
                except (CosmosAccessConditionFailedError, CosmosResourceExistsError, CosmosResourceNotFoundError):
                    log.info("Document %s changed while updating it (attempt %s); reading it again", update.id,
                             attempt + 1)
                    time.sleep(random.uniform(0, 0.02 * 2 ** min(attempt, 5)))  # desynchronise the writers
                    current = self.read(update.id, update.partition_key)
        raise ConflictError(f"document {update.id!r} still changing after {self.attempts} attempts")

    def _newest(self, id: str, read: Optional[Versioned]) -> Optional[Versioned]:
        # A version this process wrote after `read` was taken is newer; should another process
        # have written since, the etag check fails and the document is read again.
        with self._written_lock:
            written = self._written.get(id)
        if written is not None and (read is None or written.etag != read.etag):
            return written
        return read

    def _remember(self, id: str, document: dict, result) -> None:
        if not self.remember:
            return
        headers = result.get_response_headers() if hasattr(result, "get_response_headers") else {}
        etag = headers.get("etag") or (result or {}).get("_etag")
        with self._written_lock:
            if etag is None:
                self._written.pop(id, None)
                return
            self._written[id] = Versioned(document, etag)
            self._written.move_to_end(id)
            while len(self._written) > self.remember:
                self._written.popitem(last=False)

    # -- whole-container operations, for rebuilds ------------------------------------------
    def read_all(self) -> Iterator[Versioned]:
        """Every document of the container."""
        for item in self.container.query_items("SELECT * FROM c", enable_cross_partition_query=True):
            yield _versioned(item)

    def put(self, document: dict) -> None:
        """Write the document as it is, whatever is stored (rebuilds replace documents wholesale)."""
        self.container.upsert_item(document, no_response=True)

    def delete(self, id: str, partition_key: str) -> None:
        try:
            self.container.delete_item(id, partition_key=partition_key)
        except CosmosResourceNotFoundError:
            pass


def of_hours(container: ContainerProxy, query: str, first: str, last: str) -> Iterator[dict]:
    """The statistics documents (offerstats, trafficstats: both index /hour) of the hours from `first`
    to `last` ("2026-11-22T23:00:00Z"), as `query` selects them with @first and @last; across
    partitions, a page at a time."""
    parameters = [{"name": "@first", "value": first}, {"name": "@last", "value": last}]
    yield from container.query_items(query, parameters=parameters, enable_cross_partition_query=True,
                                     max_item_count=PAGE_SIZE)


def profiles(config: Settings) -> DocumentStore:
    return DocumentStore(cosmos.database(config.cosmos, config.cosmos_database)
                         .get_container_client(resources.PROFILES))


def offer_stats(config: Settings) -> DocumentStore:
    return DocumentStore(cosmos.database(config.cosmos, config.cosmos_database)
                         .get_container_client(resources.OFFER_STATS), remember=10_000)


def traffic_stats(config: Settings) -> DocumentStore:
    # Each document has one writer, its hub partition's (batch after batch): nothing to remember.
    return DocumentStore(cosmos.database(config.cosmos, config.cosmos_database)
                         .get_container_client(resources.TRAFFIC_STATS))
