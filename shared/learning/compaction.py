"""The Parquet archive: closed hours of the raw archive, compacted for training and analysts.

The raw archive (shared/archive.py) holds one JSON-lines blob per delivered batch under
`yyyy/mm/dd/hh/` (the hour the batch was enqueued). Once an hour is closed, compaction turns
its batches into the two tables of `dataset.tables` and writes them to container `parquet`
(resources.PARQUET_ARCHIVE) in Hive-style partitions, which pyarrow.dataset, Spark and
Power BI read as a table with `date` and `hour` columns:

    events/date=YYYY-MM-DD/hour=HH/part-0.parquet
    decisions/date=YYYY-MM-DD/hour=HH/part-0.parquet
    _manifests/YYYY/MM/DD/HH.json   (names starting with "_" are skipped by dataset readers)

A manifest is written after both files and says what they were made from:

    {"hour", "sources": [[raw blob name, etag], ...] (sorted), "sourcesDigest",
     "events": n, "decisions": n, "compactedAt"}

An hour is closed `GRACE` after its end, so the batches still being written for it have
landed. It needs (re)compaction while it has no manifest or its manifest lists other
sources or etags than the raw archive holds now: a late batch, a redelivered (rewritten)
batch, or a crash between the files and the manifest. The digest of the sources is also
kept in the manifest blob's metadata, so a listing says which hours are current without
downloading every manifest.

Parquet files are zstd-compressed and deterministic: the same table gives the same bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import dataset

HOUR = timedelta(hours=1)
GRACE = timedelta(minutes=5)  # after an hour's end, for the batches still being written for it
EVENTS, DECISIONS = "events", "decisions"
KINDS = (EVENTS, DECISIONS)
SCHEMAS = {EVENTS: dataset.EVENTS_SCHEMA, DECISIONS: dataset.DECISIONS_SCHEMA}
MANIFESTS = "_manifests/"
DIGEST = "sourcesdigest"  # the manifest blob's metadata key (metadata keys are case-insensitive)
CONTENT_TYPE = "application/vnd.apache.parquet"
COMPRESSION = "zstd"
FILTER_BATCH = 10_000  # rows decoded at a time when only some decisions are read

_RAW_HOUR = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/(\d{2})/")
_MANIFEST = re.compile(r"^_manifests/(\d{4})/(\d{2})/(\d{2})/(\d{2})\.json$")

Source = tuple[str, str]  # (raw blob name, etag)


def utc(time: datetime) -> datetime:
    """An aware UTC time (a naive one is taken as UTC)."""
    return time.replace(tzinfo=timezone.utc) if time.tzinfo is None else time.astimezone(timezone.utc)


def iso(time: datetime) -> str:
    return utc(time).isoformat().replace("+00:00", "Z")


def floor_hour(time: datetime) -> datetime:
    return utc(time).replace(minute=0, second=0, microsecond=0)


def _hour(match: Optional[re.Match], name: str) -> datetime:
    if match is None:
        raise ValueError(f"not an hour's blob name: {name!r}")
    return datetime(*map(int, match.groups()), tzinfo=timezone.utc)


def hour_of(raw_name: str) -> datetime:
    """The hour of a raw archive blob (`yyyy/mm/dd/hh/...`), as an aware UTC datetime."""
    return _hour(_RAW_HOUR.match(raw_name), raw_name)


def closed(hour: datetime, now: datetime) -> bool:
    """Whether no more batches are expected for this hour: it ended at least GRACE ago."""
    return utc(now) >= floor_hour(hour) + HOUR + GRACE


def day_prefixes(start: datetime, end: datetime) -> list[str]:
    """The raw archive's `yyyy/mm/dd/` prefixes of the days from start to end (both included)."""
    first, last = utc(start).date(), utc(end).date()
    return [f"{first + timedelta(days=n):%Y/%m/%d}/" for n in range((last - first).days + 1)]


def manifest_name(hour: datetime) -> str:
    return f"{MANIFESTS}{floor_hour(hour):%Y/%m/%d/%H}.json"


def manifest_hour(name: str) -> datetime:
    return _hour(_MANIFEST.match(name), name)


def parquet_name(kind: str, hour: datetime) -> str:
    """`events/date=YYYY-MM-DD/hour=HH/part-0.parquet` (or decisions/...)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    return f"{kind}/date={floor_hour(hour):%Y-%m-%d}/hour={floor_hour(hour):%H}/part-0.parquet"


def by_hour(sources: Iterable[Source]) -> dict[datetime, list[Source]]:
    """Raw (name, etag) pairs grouped by their hour, each hour's sorted; names of no hour are skipped."""
    out: dict[datetime, list[Source]] = {}
    for name, etag in sources:
        try:
            out.setdefault(hour_of(name), []).append((name, etag))
        except ValueError:
            continue
    return {hour: sorted(pairs) for hour, pairs in out.items()}


def _sources(pairs: Iterable[Sequence[str]]) -> list[Source]:
    return sorted((str(name), str(etag)) for name, etag in pairs)


def digest(sources: Iterable[Sequence[str]]) -> str:
    """A fingerprint of a set of (name, etag) pairs, whatever their order."""
    text = json.dumps(_sources(sources), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest(hour: datetime, sources: Iterable[Sequence[str]], events: int, decisions: int,
             compacted_at: datetime) -> dict[str, Any]:
    pairs = _sources(sources)
    return {"hour": iso(floor_hour(hour)), "sources": [list(p) for p in pairs], "sourcesDigest": digest(pairs),
            "events": events, "decisions": decisions, "compactedAt": iso(compacted_at)}


def current(found: Optional[Mapping[str, Any]], sources: Iterable[Sequence[str]]) -> bool:
    """Whether a manifest (or a listing's {"sourcesDigest"}) was made from exactly these sources."""
    if not found:
        return False
    if "sources" in found:
        return _sources(found["sources"]) == _sources(sources)
    return found.get("sourcesDigest") == digest(sources)


def stale_hours(raw_sources_by_hour: Mapping[datetime, Iterable[Sequence[str]]],
                manifests_by_hour: Mapping[datetime, Mapping[str, Any]], now: datetime) -> list[datetime]:
    """The closed hours with raw batches whose manifest is missing or lists other sources/etags, oldest first."""
    manifests = {floor_hour(h): m for h, m in manifests_by_hour.items()}
    return sorted(floor_hour(hour) for hour, sources in raw_sources_by_hour.items()
                  if closed(hour, now) and not current(manifests.get(floor_hour(hour)), sources))


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as one zstd-compressed Parquet file; the same table gives the same bytes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=COMPRESSION, write_statistics=True)
    return sink.getvalue()


def read_parquet(data: Union[bytes, str, Path], columns: Optional[Sequence[str]] = None,
                 only: Optional[pa.Array] = None, key: str = "decisionId",
                 row_groups: Optional[Sequence[int]] = None) -> pa.Table:
    """The file's table (its bytes, or its path), or only these of its columns (columns the file does
    not have are left out: `conform` adds them as nulls); with `only`, only the rows whose `key` is
    one of those values, kept batch by batch as the file is decoded (a few of a big column's rows
    never hold it all), from these `row_groups` (default: all)."""
    file = pq.ParquetFile(pa.BufferReader(data) if isinstance(data, bytes) else data)
    present = set(file.schema_arrow.names)
    names = None if columns is None else [c for c in columns if c in present]
    if only is None:
        return file.read(columns=names) if row_groups is None else file.read_row_groups(row_groups, columns=names)
    if key not in present:
        raise ValueError(f"the file has no {key} column to select rows by")
    batches = [batch.filter(pc.is_in(batch.column(key), value_set=only))
               for batch in file.iter_batches(batch_size=FILTER_BATCH, columns=names, row_groups=row_groups)]
    return pa.Table.from_batches(batches, schema=file.schema_arrow if names is None else
                                 pa.schema([file.schema_arrow.field(c) for c in names]))


def id_array(ids: Optional[Iterable[str]]) -> Optional[pa.Array]:
    """Ids as the value set `read_parquet` and `keep_only` select rows by (None stays None)."""
    return None if ids is None else pa.array(list(ids), type=pa.string())


def keep_only(table: pa.Table, only: Optional[pa.Array], key: str = "decisionId") -> pa.Table:
    """The rows whose `key` is one of `only` (all when None)."""
    return table if only is None else table.filter(pc.is_in(table.column(key), value_set=only))


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with exactly the schema's columns, in order: missing ones (a file written before a
    column was added) are nulls, extra ones are dropped."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


def unique_by(table: pa.Table, key: str) -> pa.Table:
    """One row per value of `key` (the first), in the table's order."""
    if table.num_rows == 0:
        return table
    numbered = pa.table({key: table.column(key), "_row": pa.array(np.arange(table.num_rows))})
    first = numbered.group_by(key, use_threads=False).aggregate([("_row", "min")]).column("_row_min")
    keep = np.sort(first.to_numpy())
    return table if len(keep) == table.num_rows else table.take(pa.array(keep))


def between(table: pa.Table, start: datetime, end: datetime, column: str = "time") -> pa.Table:
    """The rows with start <= column <= end."""
    kind = table.schema.field(column).type
    times = table.column(column)
    mask = pc.and_(pc.greater_equal(times, pa.scalar(utc(start), type=kind)),
                   pc.less_equal(times, pa.scalar(utc(end), type=kind)))
    return table.filter(mask)
