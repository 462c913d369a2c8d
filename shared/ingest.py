"""The ingest service: a batch of hub messages -> dead letters, the archive, the projections.

Order matters for crash safety. The touched documents are read first (reading changes
nothing), then the batch is archived (a deterministic blob name: rewriting it is harmless),
and only then are profiles, offer statistics and traffic (the archived events per hour,
minute and type of this partition) written. A crash anywhere leaves the batch
unacknowledged; it is delivered again and every step repeats without double counting
(see shared/projections.py for how redeliveries and re-posted events are recognised).
Infrastructure failures propagate, so the trigger fails and the batch is retried.

The Personalizer-compatible API's events (personalizer.ranked/rewarded/activated) are
archived as they come and project into no profile: their subject is an eventId, not a
shopper. A redelivered one is archived again and counted once when read (by event id);
traffic counts it once, as every archived event (by the partition's watermark).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Optional, Protocol, Sequence

from . import archive, events, projections
from .projections import Delivered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One hub message as the trigger delivered it."""

    body: bytes
    partition: str
    sequence: int
    enqueued_time: datetime


@dataclass(frozen=True)
class Versioned:
    """A stored document (without the store's own fields) and the etag it was read with."""

    document: dict
    etag: str


@dataclass(frozen=True)
class Update:
    """Change one document: `change(current or None)` returns the new document, or None for no write."""

    id: str
    partition_key: str
    change: Callable[[Optional[dict]], Optional[dict]]
    current: Optional[Versioned]  # as read_many found it (None: it does not exist)


class Archive(Protocol):
    def write_events(self, key: archive.BatchKey, records: list[dict]) -> str: ...

    def write_dead_letters(self, key: archive.BatchKey, records: list[dict]) -> str: ...


class Documents(Protocol):
    def read_many(self, ids: Sequence[str]) -> dict[str, Versioned]: ...

    def update_many(self, updates: Sequence[Update]) -> int: ...


@dataclass(frozen=True)
class Ports:
    archive: Archive
    profiles: Documents
    offer_stats: Documents
    traffic_stats: Documents
    half_life_hours: float = projections.DEFAULT_HALF_LIFE_HOURS


@dataclass
class Report:
    received: int = 0
    invalid: int = 0
    applied: int = 0
    redelivered: int = 0
    repeated: int = 0
    archived: int = 0
    profiles_written: int = 0
    offer_stats_written: int = 0
    traffic_stats_written: int = 0
    seconds: dict = field(default_factory=dict)  # where the time went, by step

    def summary(self) -> str:
        steps = " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.seconds.items())
        return (f"{self.received} received, {self.invalid} dead-lettered, {self.applied} applied, "
                f"{self.redelivered} redelivered, {self.repeated} repeats ignored; {self.profiles_written} "
                f"profiles, {self.offer_stats_written} offer statistics and {self.traffic_stats_written} traffic "
                f"statistics written ({steps})")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def decode(message: Message) -> Delivered | list[tuple[str, str]]:
    """The message's event, or the reasons it is not a valid one.

    Never raises for a message's content: an event that cannot be read must go to the dead
    letters, not fail the batch, or it would block its partition forever.
    """
    try:
        # Non-finite numbers are refused: they could not be written back as JSON.
        raw = json.loads(message.body, parse_float=_finite, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        return [("", f"not a JSON document: {error}")]
    try:
        # An event without a time gets the time the hub accepted it: the same on every redelivery.
        event = events.parse(raw, now=message.enqueued_time)
    except events.InvalidEvent as invalid:
        return [(e.field, e.message) for e in invalid.errors]
    except Exception as error:  # a bug in validation must not block the partition either
        log.exception("event at sequence number %s of partition %s could not be validated",
                      message.sequence, message.partition)
        return [("", f"could not be validated: {type(error).__name__}: {error}")]
    return Delivered(message.partition, message.sequence, event, message.enqueued_time)


def ingest(messages: Sequence[Message], ports: Ports) -> Report:
    """Dead-letter the invalid messages, archive the valid events, update the projections."""
    report = Report(received=len(messages))
    if not messages:
        return report
    clock = _Clock(report)
    key = archive.BatchKey(messages[0].partition, messages[0].sequence, messages[0].enqueued_time)
    by_user: dict[str, list[Delivered]] = {}
    unprojected: list[Delivered] = []
    dead: list[dict] = []
    for message in messages:
        decoded = decode(message)
        if isinstance(decoded, Delivered) and decoded.event.type in events.PERSONALIZER_TYPES:
            unprojected.append(decoded)
        elif isinstance(decoded, Delivered):
            by_user.setdefault(decoded.event.user_id, []).append(decoded)
        else:
            dead.append(archive.dead_letter_record(message.partition, message.sequence, message.enqueued_time,
                                                   message.body, decoded))
    report.invalid = len(dead)
    clock.lap("parse")

    current = ports.profiles.read_many(list(by_user))
    outcomes = {user: projections.project_user(_doc(current.get(user)), user, delivered, ports.half_life_hours)
                for user, delivered in by_user.items()}
    tallies = projections.group_tallies(t for o in outcomes.values() for t in o.tallies)
    stats = ports.offer_stats.read_many(list(tallies))
    keep = sorted([*unprojected, *(d for o in outcomes.values() for d in o.archived)], key=lambda d: d.sequence)
    traffic = projections.group_traffic(keep)
    counted = ports.traffic_stats.read_many(list(traffic))
    clock.lap("read")

    if dead:
        ports.archive.write_dead_letters(key, dead)
        log.warning("%s invalid events of partition %s (from sequence number %s) dead-lettered as %s",
                    len(dead), key.partition, key.first_sequence, key.blob_name())
    if keep:
        ports.archive.write_events(key, [archive.event_record(d.partition, d.sequence, d.enqueued_time,
                                                              d.event.to_dict()) for d in keep])
    report.archived = len(keep)
    clock.lap("archive")

    profile_updates = [
        Update(user, user, _profile_change(user, by_user[user], ports.half_life_hours), current.get(user))
        for user, outcome in outcomes.items() if outcome.profile is not None]
    report.profiles_written = ports.profiles.update_many(profile_updates)
    clock.lap("profiles")
    stat_updates = [Update(doc_id, group[0].offer_id, _stats_change(group), stats.get(doc_id))
                    for doc_id, group in tallies.items()]
    report.offer_stats_written = ports.offer_stats.update_many(stat_updates)
    clock.lap("offer_stats")
    traffic_updates = [Update(doc_id, projections.hour_of(group[0].event.time), _traffic_change(group),
                              counted.get(doc_id)) for doc_id, group in traffic.items()]
    report.traffic_stats_written = ports.traffic_stats.update_many(traffic_updates)
    clock.lap("traffic_stats")

    report.applied = sum(o.applied for o in outcomes.values())
    report.redelivered = sum(o.redelivered for o in outcomes.values())
    report.repeated = sum(len(o.repeated) for o in outcomes.values())
    return report


def _doc(versioned) -> Optional[dict]:
    return versioned.document if versioned is not None else None


def _profile_change(user: str, delivered: list[Delivered], half_life_hours: float):
    # Recomputed from whatever is stored when a conflicting write forces a re-read.
    return lambda document: projections.project_user(document, user, delivered, half_life_hours).profile


def _stats_change(group: list[projections.Tally]):
    return lambda document: projections.apply_tallies(document, group[0].offer_id, group[0].hour, group)


def _traffic_change(group: list[Delivered]):
    hour = projections.hour_of(group[0].event.time)
    return lambda document: projections.apply_traffic(document, hour, group[0].partition, group)


class _Clock:
    def __init__(self, report: Report):
        self.report, self.last = report, time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.report.seconds[step] = now - self.last
        self.last = now
