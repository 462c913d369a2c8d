"""The Parquet archive in Blob storage: compaction of the raw archive's closed hours, and the
training window's tables read from it (layout and rules: shared/learning/compaction.py).

`compact` is the retrain job's first step; `load` its second: an hour whose manifest matches
the raw archive is read from its Parquet files, any other hour (the open one, a closed one
not compacted yet or changed since) from its raw batches, so the window is complete either way.

The open hour is read from its raw batches at every retrain, and it grows all hour. So each
batch, once downloaded and parsed, is kept as its two tables in a process-wide cache
(`PARSED`, bounded in bytes, least recently used first out) under its container, name and
etag: the next retrain downloads and parses only the batches written since, and a batch
rewritten in between (a redelivery) has a new etag and is read again.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Collection, Optional, Sequence

import pyarrow as pa
from azure.storage.blob import BlobServiceClient, ContentSettings

from . import archive, resources
from .learning import compaction, dataset
from .learning.compaction import DECISIONS, EVENTS, Source

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)
PARSED_BYTES = 256 * 1024 * 1024  # the parsed batches' cache: about 400,000 offer decisions with their events
Tables = tuple[pa.Table, pa.Table]  # (events, decisions)


class ParsedBatches:
    """Raw batches' (events, decisions) tables by (container URL, blob name, etag), the least
    recently used dropped first once they hold more than `max_bytes`. Thread-safe."""

    def __init__(self, max_bytes: int = PARSED_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._tables: OrderedDict[tuple[str, str, str], Tables] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Optional[Tables]:
        with self._lock:
            found = self._tables.get(key)
            if found is not None:
                self._tables.move_to_end(key)
            return found

    def put(self, key: tuple[str, str, str], tables: Tables) -> None:
        size = sum(t.nbytes for t in tables)
        with self._lock:
            if key in self._tables or size > self.max_bytes:
                return
            self._tables[key] = tables
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, dropped = self._tables.popitem(last=False)
                self.bytes -= sum(t.nbytes for t in dropped)

    def __len__(self) -> int:
        return len(self._tables)


PARSED = ParsedBatches()


class ParquetArchive:
    """Compacts the raw archive of `raw` into `container` and reads windows of both."""

    def __init__(self, service: BlobServiceClient, raw: archive.BlobArchive,
                 container: str = resources.PARQUET_ARCHIVE, threads: int = 8, parsed: ParsedBatches = PARSED):
        self.service = service
        self.raw = raw
        self.container = service.get_container_client(container)
        self.threads = threads
        self.parsed = parsed

    def raw_sources(self, since: Optional[datetime] = None,
                    until: Optional[datetime] = None) -> dict[datetime, list[Source]]:
        """hour -> the raw archive's (name, etag) of that hour, for the hours from since's to until's."""
        prefixes = compaction.day_prefixes(since, until or datetime.now(timezone.utc)) if since else [None]
        found = compaction.by_hour((b.name, b.etag) for prefix in prefixes
                                   for b in self.raw.raw.list_blobs(name_starts_with=prefix)
                                   if archive.parse_name(b.name))
        return _in_range(found, since, until)

    def manifests(self, since: Optional[datetime] = None,
                  until: Optional[datetime] = None) -> dict[datetime, dict[str, Any]]:
        """hour -> {"sourcesDigest"} of the compacted hours, from the manifests' metadata (one listing)."""
        prefixes = ([compaction.MANIFESTS + p for p in
                     compaction.day_prefixes(since, until or datetime.now(timezone.utc))] if since
                    else [compaction.MANIFESTS])
        found = {}
        for prefix in prefixes:
            for blob in self.container.list_blobs(name_starts_with=prefix, include=["metadata"]):
                try:
                    hour = compaction.manifest_hour(blob.name)
                except ValueError:
                    continue
                metadata = {k.lower(): v for k, v in (blob.metadata or {}).items()}
                found[hour] = {"sourcesDigest": metadata.get(compaction.DIGEST)}
        return _in_range(found, since, until)

    def manifest(self, hour: datetime) -> dict[str, Any]:
        """The full manifest of a compacted hour."""
        return json.loads(self.container.download_blob(compaction.manifest_name(hour)).readall())

    def compact(self, now: datetime, since: Optional[datetime] = None) -> dict[str, Any]:
        """Compact every closed hour (from since's, when given) that has no current manifest; the
        files first and the manifest last, so an hour interrupted midway is redone next time."""
        began = time.perf_counter()
        now = compaction.utc(now)
        sources = self.raw_sources(since, now)
        stale = compaction.stale_hours(sources, self.manifests(since, now), now)
        log.info("compaction: %d of %d archived hours need compacting", len(stale), len(sources))
        summary: dict[str, Any] = {"hoursCompacted": 0, "events": 0, "decisions": 0, "hours": []}
        for hour in stale:
            written = self.compact_hour(hour, sources[hour], now)
            summary["hoursCompacted"] += 1
            summary["events"] += written["events"]
            summary["decisions"] += written["decisions"]
            summary["hours"].append(written["hour"])
        summary["seconds"] = round(time.perf_counter() - began, 3)
        log.info("compaction: %d hours, %d events, %d decisions in %.1f s", summary["hoursCompacted"],
                 summary["events"], summary["decisions"], summary["seconds"])
        return summary

    def compact_hour(self, hour: datetime, sources: list[Source], now: datetime) -> dict[str, Any]:
        """Write one hour's two Parquet files from its raw batches, then its manifest; returns the manifest."""
        events, decisions = self._raw_tables(sources)
        parquet = ContentSettings(content_type=compaction.CONTENT_TYPE)
        for kind, table in ((EVENTS, events), (DECISIONS, decisions)):
            self.container.upload_blob(compaction.parquet_name(kind, hour), compaction.parquet_bytes(table),
                                       overwrite=True, content_settings=parquet)
        written = compaction.manifest(hour, sources, events.num_rows, decisions.num_rows, now)
        self.container.upload_blob(compaction.manifest_name(hour), json.dumps(written, indent=1).encode("utf-8"),
                                   overwrite=True, metadata={compaction.DIGEST: written["sourcesDigest"]},
                                   content_settings=ContentSettings(content_type="application/json"))
        log.info("compacted %s: %d batches, %d events, %d decisions", written["hour"], len(sources),
                 events.num_rows, decisions.num_rows)
        return written

    def load(self, start: datetime, end: datetime, event_columns: Optional[Sequence[str]] = None,
             decision_columns: Optional[Sequence[str]] = None,
             decision_ids: Optional[Collection[str]] = None) -> tuple[pa.Table, pa.Table]:
        """(events, decisions) with start <= time <= end, each event and decision once: the hours from
        start's to end's, from Parquet where the hour's manifest matches its raw batches (or the raw
        batches are gone), from the raw batches otherwise. With `*_columns`, only those columns are
        read (they must include `id`/`decisionId` and `time`); an empty tuple reads none of that kind. With
        `decision_ids`, only those decisions are kept, as each file is decoded."""
        start, end = compaction.utc(start), compaction.utc(end)
        sources = self.raw_sources(start, end)
        manifests = self.manifests(start, end)
        compacted = sorted(h for h, m in manifests.items()
                           if h not in sources or compaction.current(m, sources[h]))
        pending = sorted(set(sources) - set(compacted))
        columns = {EVENTS: event_columns, DECISIONS: decision_columns}
        schemas = {kind: dataset.projected(compaction.SCHEMAS[kind], columns[kind]) for kind in (EVENTS, DECISIONS)}
        only = compaction.id_array(decision_ids)
        parts = self._parquet(compacted, columns, schemas, only)
        raw_events, raw_decisions = self._raw_tables([s for h in pending for s in sources[h]])
        events = dataset.concat([*parts[EVENTS], dataset.select(raw_events, event_columns)], schemas[EVENTS])
        if event_columns == ():
            events = schemas[EVENTS].empty_table()
        else:
            events = compaction.between(compaction.unique_by(events, "id"), start, end)
        if decision_columns == ():
            decisions = schemas[DECISIONS].empty_table()
        else:
            decisions = dataset.concat([*parts[DECISIONS], compaction.keep_only(dataset.select(
                raw_decisions, decision_columns), only)], schemas[DECISIONS])
            decisions = compaction.between(dataset.dedupe(decisions), start, end)
        log.info("loaded %s..%s: %d hours from Parquet, %d from the raw archive, %d events, %d decisions",
                 compaction.iso(start), compaction.iso(end), len(compacted), len(pending), events.num_rows,
                 decisions.num_rows)
        return events, decisions

    def _parquet(self, hours: list[datetime], columns: dict, schemas: dict,
                 only: Optional[pa.Array] = None) -> dict[str, list[pa.Table]]:
        kinds = [kind for kind in (EVENTS, DECISIONS) if columns[kind] != ()]
        names = [(kind, compaction.parquet_name(kind, hour)) for hour in hours for kind in kinds]

        def read(item: tuple[str, str]) -> pa.Table:
            kind, name = item
            data = self.container.download_blob(name).readall()
            return compaction.conform(compaction.read_parquet(data, columns[kind], only if kind == DECISIONS else None),
                                      schemas[kind])

        out: dict[str, list[pa.Table]] = {EVENTS: [], DECISIONS: []}
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="parquet") as pool:
            for (kind, _), table in zip(names, pool.map(read, names)):
                out[kind].append(table)
        return out

    def _raw_tables(self, sources: Sequence[Source]) -> Tables:
        """(events, decisions) of these raw batches, each event and decision once (the first, by
        partition and sequence number): parsed batches from the cache, the others downloaded."""
        order = {name: etag for name, etag in sources}
        batches = sorted((b for b in map(archive.parse_name, order) if b),
                         key=lambda b: (b.partition, b.first_sequence, b.name))
        keys = {b.name: (self.raw.raw.url, b.name, order[b.name]) for b in batches}
        found = {b.name: self.parsed.get(keys[b.name]) for b in batches}
        missing = [b for b in batches if found[b.name] is None]
        for batch, records in self.raw.read_all(missing, threads=self.threads):
            found[batch.name] = dataset.tables(records)
            self.parsed.put(keys[batch.name], found[batch.name])
        if missing:
            log.info("raw batches: %d parsed before, %d read now", len(batches) - len(missing), len(missing))
        events = dataset.concat([found[b.name][0] for b in batches], dataset.EVENTS_SCHEMA)
        decisions = dataset.concat([found[b.name][1] for b in batches], dataset.DECISIONS_SCHEMA)
        return compaction.unique_by(events, "id"), dataset.dedupe(decisions)


def _in_range(by_hour: dict[datetime, Any], since: Optional[datetime], until: Optional[datetime]) -> dict:
    low = compaction.floor_hour(since) if since else None
    high = compaction.floor_hour(until) if until else None
    return {h: v for h, v in by_hour.items() if (low is None or h >= low) and (high is None or h <= high)}


def from_settings(config: Settings, compress: bool = False) -> ParquetArchive:
    raw = archive.from_settings(config, compress=compress)
    return ParquetArchive(raw.service, raw)
