"""The raw event archive and the dead letters, in Blob storage.

One blob per delivered batch: `<yyyy>/<mm>/<dd>/<hh>/<partition>-<firstSequenceNumber>.jsonl`
in container `raw` (valid events) and the same name in `deadletter` (rejected events with
their reasons). The hour is the first message's *enqueued* time and the number its sequence
number, so a redelivered batch gets the same name and overwrites itself: writing is
idempotent. Each line is one JSON object:

    raw:        {"partition", "sequence", "enqueuedTime", "event": <CloudEvent>}
    deadletter: {"partition", "sequence", "enqueuedTime", "errors": [{"field", "message"}],
                 "body": <text> | "bodyBase64": <bytes that are not UTF-8>}

With `compress=True` blobs are gzip'ed (`.jsonl.gz`, byte-identical on rewrite); readers
accept both.
"""
from __future__ import annotations

import base64
import gzip
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional

from . import resources

if TYPE_CHECKING:  # the naming and record format above BlobArchive need no Azure SDK
    from azure.storage.blob import BlobServiceClient

    from .settings import Settings

log = logging.getLogger(__name__)
NAME = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/(\d{2})/(.+)-(\d+)\.jsonl(\.gz)?$")


@dataclass(frozen=True)
class BatchKey:
    """What names a delivered batch: its partition, first sequence number and first enqueued time."""

    partition: str
    first_sequence: int
    enqueued_time: datetime

    def blob_name(self, compress: bool = False) -> str:
        hour = self.enqueued_time.astimezone(timezone.utc).strftime("%Y/%m/%d/%H")
        return f"{hour}/{self.partition}-{self.first_sequence}.jsonl" + (".gz" if compress else "")


@dataclass(frozen=True)
class StoredBatch:
    name: str
    partition: str
    first_sequence: int


def parse_name(name: str) -> Optional[StoredBatch]:
    match = NAME.match(name)
    if match is None:
        return None
    return StoredBatch(name, match.group(5), int(match.group(6)))


def time_text(time: Optional[datetime]) -> Optional[str]:
    return time.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if time else None


def event_record(partition: str, sequence: int, enqueued_time: Optional[datetime], event: dict) -> dict:
    return {"partition": partition, "sequence": sequence, "enqueuedTime": time_text(enqueued_time), "event": event}


def dead_letter_record(partition: str, sequence: int, enqueued_time: Optional[datetime], body: bytes,
                       errors: Iterable[tuple[str, str]]) -> dict:
    record: dict[str, Any] = {"partition": partition, "sequence": sequence, "enqueuedTime": time_text(enqueued_time),
                              "errors": [{"field": f, "message": m} for f, m in errors]}
    try:
        record["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        record["bodyBase64"] = base64.b64encode(body).decode("ascii")
    return record


def encode(records: Iterable[dict], compress: bool = False) -> bytes:
    data = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records).encode()
    return gzip.compress(data, mtime=0) if compress else data  # mtime 0: the same bytes on every rewrite


def decode(name: str, data: bytes) -> list[dict]:
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


class BlobArchive:
    """The archive and dead-letter containers of one storage account."""

    def __init__(self, service: BlobServiceClient, *, compress: bool = False,
                 raw_container: str = resources.RAW_ARCHIVE, dead_letter_container: str = resources.DEAD_LETTER):
        self.service = service
        self.compress = compress
        self.raw = service.get_container_client(raw_container)
        self.dead = service.get_container_client(dead_letter_container)

    def _write(self, container, key: BatchKey, records: list[dict]) -> str:
        from azure.storage.blob import ContentSettings

        name = key.blob_name(self.compress)
        settings = ContentSettings(content_type="application/gzip" if self.compress else "application/x-ndjson")
        container.upload_blob(name, encode(records, self.compress), overwrite=True, content_settings=settings)
        return name

    def write_events(self, key: BatchKey, records: list[dict]) -> str:
        """Write a batch's valid events (event_record lines), replacing an earlier write of the same batch."""
        return self._write(self.raw, key, records)

    def write_dead_letters(self, key: BatchKey, records: list[dict]) -> str:
        """Write a batch's rejected events (dead_letter_record lines) under the batch's name."""
        return self._write(self.dead, key, records)

    def list_batches(self, prefix: str = "", dead_letters: bool = False) -> list[StoredBatch]:
        """Every stored batch (optionally under a `yyyy/mm/...` prefix), by partition and first sequence number."""
        container = self.dead if dead_letters else self.raw
        batches = [b for b in map(parse_name, container.list_blob_names(name_starts_with=prefix or None)) if b]
        return sorted(batches, key=lambda b: (b.partition, b.first_sequence, b.name))

    def read(self, name: str, dead_letters: bool = False) -> list[dict]:
        """The records of one stored batch."""
        container = self.dead if dead_letters else self.raw
        return decode(name, container.download_blob(name).readall())

    def read_all(self, batches: Iterable[StoredBatch], dead_letters: bool = False,
                 threads: int = 8) -> Iterator[tuple[StoredBatch, list[dict]]]:
        """The records of each batch, downloaded a few at a time, in the order given."""
        batches = list(batches)
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="archive") as pool:
            yield from zip(batches, pool.map(lambda b: self.read(b.name, dead_letters), batches))


def from_settings(config: Settings, compress: bool = False) -> BlobArchive:
    from . import storage

    return BlobArchive(storage.blob_service(config.storage), compress=compress)
