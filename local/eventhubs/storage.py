"""Append-only partition logs on disk.

Each partition is a directory of segment files named after the byte offset of
their first record (``00000000000000000000.log``).  An event's offset is its
byte position in the partition's concatenated log, like Event Hubs offsets.

Record layout (big-endian)::

    u32 length   bytes after this field
    u32 crc32    of everything after this field
    i64 sequence number
    i64 enqueued time (ms since epoch)
    u32 header length  (bytes of the message's header section, so delivery
                        annotations can be spliced in after it on delivery)
    ... the message exactly as delivered to consumers

Records are written with a single ``write`` before the sender's delivery is
accepted, so an accepted event survives the emulator being killed (the data is
in the OS page cache; fsync is deliberately skipped).  A torn record at the end
of the last segment (crash mid-write) fails its CRC and is truncated on start.
"""
from __future__ import annotations

import bisect
import logging
import os
import struct
import zlib
from array import array
from pathlib import Path
from typing import Callable, List, Optional, Tuple

log = logging.getLogger(__name__)

RECORD_HEADER = struct.Struct(">IIqqI")
_LEN = struct.Struct(">I")
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
SEGMENT_SUFFIX = ".log"

# build(sequence_number, offset, enqueued_ms) -> (message bytes, header length)
RecordBuilder = Callable[[int, int, int], Tuple[bytes, int]]


class StoredEvent:
    __slots__ = ("sequence_number", "offset", "enqueued_ms", "payload", "header_len")

    def __init__(self, sequence_number: int, offset: int, enqueued_ms: int, payload: bytes, header_len: int):
        self.sequence_number = sequence_number
        self.offset = offset
        self.enqueued_ms = enqueued_ms
        self.payload = payload
        self.header_len = header_len


class _Segment:
    def __init__(self, path: Path, base: int) -> None:
        self.path = path
        self.base = base
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size
        self.first_time: Optional[int] = None
        self.last_time: Optional[int] = None

    @property
    def end(self) -> int:
        return self.base + self.size

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class PartitionLog:
    def __init__(self, directory: Path, retention_ms: int, clock_ms: Callable[[], int],
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.directory = directory
        self.retention_ms = retention_ms
        self.clock_ms = clock_ms
        self.segment_bytes = segment_bytes
        self.segments: List[_Segment] = []
        self._bases: List[int] = []
        # Index of retained records, by position (sequence = _base_seq + position).
        self._offsets = array("q")
        self._times = array("q")
        self._sizes = array("q")
        self._head = 0  # first retained position; earlier ones are expired
        self._base_seq = 0
        # The last event ever appended, even if already expired.
        self.last_sequence = -1
        self.last_offset = -1
        self.last_time = 0

    # ------------------------------------------------------------- startup
    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        paths = sorted(self.directory.glob("*" + SEGMENT_SUFFIX))
        # An empty segment can only be left by a crash right after a roll; it
        # carries nothing, and keeping it could let retention delete the last
        # record that remembers the next sequence number.
        empty = [path for path in paths[1:] if path.stat().st_size == 0]
        for path in empty:
            path.unlink()
        paths = [path for path in paths if path not in empty]
        for number, path in enumerate(paths):
            try:
                base = int(path.stem)
            except ValueError:
                log.warning("ignoring unexpected file %s", path)
                continue
            segment = _Segment(path, base)
            ok = self._load_segment(segment)
            self._add_segment(segment)
            if not ok:
                for later in paths[number + 1:]:
                    log.error("dropping segment %s after a corrupt record", later)
                    later.rename(later.with_suffix(".corrupt"))
                break
        if not self.segments:
            self._add_segment(_Segment(self._segment_path(0), 0))
        self.expire()

    def _load_segment(self, segment: _Segment) -> bool:
        with open(segment.path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            parsed = self._parse_record(data, pos)
            if parsed is None:
                log.warning("%s: truncating torn/corrupt record at byte %d (of %d)", segment.path, pos, len(data))
                os.ftruncate(segment.fd, pos)
                segment.size = pos
                return pos == len(data)
            seq, enqueued, size = parsed
            if self.last_sequence >= 0 and seq != self.last_sequence + 1:
                log.error("%s: sequence gap (%d after %d); truncating", segment.path, seq, self.last_sequence)
                os.ftruncate(segment.fd, pos)
                segment.size = pos
                return False
            self._index(seq, segment.base + pos, enqueued, size)
            segment.first_time = enqueued if segment.first_time is None else segment.first_time
            segment.last_time = enqueued
            pos += size
        return True

    @staticmethod
    def _parse_record(data: bytes, pos: int) -> Optional[Tuple[int, int, int]]:
        if pos + RECORD_HEADER.size > len(data):
            return None
        length, crc, seq, enqueued, _ = RECORD_HEADER.unpack_from(data, pos)
        end = pos + 4 + length
        if length < RECORD_HEADER.size - 4 or end > len(data):
            return None
        if zlib.crc32(data[pos + 8:end]) != crc:
            return None
        return seq, enqueued, 4 + length

    def _segment_path(self, base: int) -> Path:
        return self.directory / f"{base:020d}{SEGMENT_SUFFIX}"

    def _add_segment(self, segment: _Segment) -> None:
        self.segments.append(segment)
        self._bases.append(segment.base)

    def _index(self, seq: int, offset: int, enqueued: int, size: int) -> None:
        if len(self._offsets) == self._head:
            # Empty index (fresh, or everything expired): restart numbering here.
            del self._offsets[:], self._times[:], self._sizes[:]
            self._head = 0
            self._base_seq = seq
        self._offsets.append(offset)
        self._times.append(enqueued)
        self._sizes.append(size)
        self.last_sequence, self.last_offset, self.last_time = seq, offset, enqueued

    # -------------------------------------------------------------- append
    def append(self, builders: List[RecordBuilder]) -> List[StoredEvent]:
        """Write events (one ``write`` call) and index them; returns what was stored."""
        if not builders:
            return []
        now = max(self.clock_ms(), self.last_time)  # enqueued times never go backwards
        self._maybe_roll(now)
        segment = self.segments[-1]
        out = bytearray()
        stored: List[StoredEvent] = []
        seq = self.last_sequence + 1
        for build in builders:
            offset = segment.end + len(out)
            payload, header_len = build(seq, offset, now)
            body = struct.pack(">qqI", seq, now, header_len) + payload
            out += _LEN.pack(len(body) + 4) + _LEN.pack(zlib.crc32(body)) + body
            stored.append(StoredEvent(seq, offset, now, payload, header_len))
            seq += 1
        try:
            written = os.write(segment.fd, out)
            while written < len(out):  # regular files rarely short-write, but be correct
                written += os.write(segment.fd, memoryview(out)[written:])
        except OSError:
            # Drop a partial write (e.g. disk full) so later records are not
            # appended behind garbage that recovery would truncate with them.
            os.ftruncate(segment.fd, segment.size)
            raise
        for event in stored:
            size = RECORD_HEADER.size + len(event.payload)
            self._index(event.sequence_number, event.offset, now, size)
        segment.size += len(out)
        segment.first_time = now if segment.first_time is None else segment.first_time
        segment.last_time = now
        return stored

    def _maybe_roll(self, now: int) -> None:
        active = self.segments[-1]
        if active.size == 0:
            return
        # Roll on size, and on age so that expired data can be deleted a segment at a time.
        roll_age = max(1000, self.retention_ms // 4)
        if active.size >= self.segment_bytes or (active.first_time is not None and now - active.first_time >= roll_age):
            self._add_segment(_Segment(self._segment_path(active.end), active.end))

    # ----------------------------------------------------------- retention
    def expire(self) -> None:
        cutoff = self.clock_ms() - self.retention_ms
        times, head, total = self._times, self._head, len(self._times)
        while head < total and times[head] < cutoff:
            head += 1
        if head != self._head:
            self._head = head
            if head > 4096 and head * 2 > total:
                self._compact()
        # Delete whole segments whose newest record is expired (never the active one).
        while len(self.segments) > 1 and (self.segments[0].last_time is None or self.segments[0].last_time < cutoff):
            segment = self.segments.pop(0)
            self._bases.pop(0)
            segment.close()
            try:
                segment.path.unlink()
            except OSError as exc:
                log.warning("could not delete expired segment %s: %s", segment.path, exc)
            log.info("deleted expired segment %s", segment.path)

    def _compact(self) -> None:
        head = self._head
        self._offsets = self._offsets[head:]
        self._times = self._times[head:]
        self._sizes = self._sizes[head:]
        self._base_seq += head
        self._head = 0

    # ---------------------------------------------------------- properties
    @property
    def begin_sequence(self) -> int:
        """First retained sequence number (last + 1 when everything expired)."""
        if self._head < len(self._offsets):
            return self._base_seq + self._head
        return self.last_sequence + 1

    @property
    def next_sequence(self) -> int:
        return self.last_sequence + 1

    @property
    def is_empty(self) -> bool:
        return self._head >= len(self._offsets)

    # ------------------------------------------------------------- seeking
    def _position(self, seq: int) -> int:
        return seq - self._base_seq

    def _seq_at(self, position: int) -> int:
        return self._base_seq + position

    def seek_offset(self, offset: int, inclusive: bool) -> int:
        """Sequence number of the first retained event at/after ``offset``."""
        lo = self._head
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        return self._seq_at(find(self._offsets, offset, lo))

    def seek_time(self, enqueued_ms: int, inclusive: bool) -> int:
        lo = self._head
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        return self._seq_at(find(self._times, enqueued_ms, lo))

    def clamp(self, seq: int) -> int:
        return min(max(seq, self.begin_sequence), self.next_sequence)

    # ------------------------------------------------------------- reading
    def read(self, seq: int, max_count: int, max_bytes: int = 4 * 1024 * 1024) -> List[StoredEvent]:
        """Up to ``max_count`` retained events from ``seq`` (one segment per call)."""
        start = self._position(max(seq, self.begin_sequence))
        total = len(self._offsets)
        if start >= total or max_count <= 0:
            return []
        first_offset = self._offsets[start]
        segment = self.segments[bisect.bisect_right(self._bases, first_offset) - 1]
        end, nbytes = start, 0
        while end < total and end - start < max_count and self._offsets[end] < segment.end:
            nbytes += self._sizes[end]
            end += 1
            if nbytes >= max_bytes:
                break
        data = os.pread(segment.fd, nbytes, first_offset - segment.base)
        events: List[StoredEvent] = []
        pos = 0
        for position in range(start, end):
            size = self._sizes[position]
            _, _, seq_no, enqueued, header_len = RECORD_HEADER.unpack_from(data, pos)
            payload = data[pos + RECORD_HEADER.size:pos + size]
            events.append(StoredEvent(seq_no, self._offsets[position], enqueued, payload, header_len))
            pos += size
        return events

    def close(self) -> None:
        for segment in self.segments:
            segment.close()
