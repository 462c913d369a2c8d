"""The dashboard's statistics (GET /api/stats): a window of whole minutes, from the projections.

`build` is pure: from the offer-statistics and traffic documents of the window's hours (their
per-minute breakdowns, `byMinute`, see shared/projections.py), the catalog's offers, the
offers loop's retrain reports and the simulation's status it makes the answer. Every minute
of the window is in `series`, zeros included, so a chart has no gaps to fill. A document
written before the per-minute breakdowns existed adds nothing for its older minutes (they
have no breakdown); `python -m ops rebuild` fills them in from the archive.

The window ends with the current minute, still filling; `eventsPerSecond` is the last
complete minute's. All times are the events' own (as in the projections), not arrival times.

`Answers` keeps each window's answer for a couple of seconds: the dashboard polls, and an
answer costs a few queries. Ports raise `Unavailable` when a dependency cannot be read.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .catalog import Offer
from .projections import hour_of, iso

DEFAULT_MINUTES = 60
MAX_MINUTES = 1440
TOP_OFFERS = 10
PROMOTIONS = 20  # retrain reports shown, newest first
CACHE_SECONDS = 2.0
UNKNOWN_KIND = "unknown"  # an offer no longer in the catalog
MINUTE = timedelta(minutes=1)


class Unavailable(Exception):
    """A dependency (Cosmos DB, Blob storage, Redis) could not be read."""


def minute_key(time: datetime) -> str:
    """A minute's start as the answer writes it: "2026-11-22T23:05:00Z"."""
    return time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:00Z")


def ctr(clicks: int, impressions: int) -> Optional[float]:
    return round(clicks / impressions, 6) if impressions else None


@dataclass(frozen=True)
class Window:
    """Whole minutes from `first` to `last` (both included; `last` is the minute now is in)."""

    first: datetime
    last: datetime

    @classmethod
    def ending(cls, now: datetime, minutes: int) -> "Window":
        last = now.astimezone(timezone.utc).replace(second=0, microsecond=0)
        return cls(last - (minutes - 1) * MINUTE, last)

    @property
    def last_complete(self) -> datetime:
        return self.last - MINUTE

    def keys(self) -> list[str]:
        count = int((self.last - self.first) / MINUTE) + 1
        return [minute_key(self.first + i * MINUTE) for i in range(count)]

    def hours(self) -> tuple[str, str]:
        """The first and last hour whose documents hold the window (and the last complete minute)."""
        return hour_of(min(self.first, self.last_complete)), hour_of(self.last)


@dataclass
class _Counts:
    impressions: int = 0
    clicks: int = 0

    def add(self, impressions: int, clicks: int) -> None:
        self.impressions += impressions
        self.clicks += clicks

    def to_dict(self) -> dict[str, Any]:
        return {"impressions": self.impressions, "clicks": self.clicks, "ctr": ctr(self.clicks, self.impressions)}


@dataclass
class _Group:
    """A model's, an offer kind's or an offer's counts per minute (and so over the window)."""

    minutes: dict[str, _Counts] = field(default_factory=dict)

    def add(self, key: str, impressions: int, clicks: int) -> None:
        self.minutes.setdefault(key, _Counts()).add(impressions, clicks)

    @property
    def total(self) -> _Counts:
        return _Counts(sum(c.impressions for c in self.minutes.values()), sum(c.clicks for c in self.minutes.values()))

    def series(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """The minutes with impressions, oldest first."""
        return [{"time": k, **self.minutes[k].to_dict()} for k in keys
                if k in self.minutes and self.minutes[k].impressions]


def _minutes_of(document: Mapping[str, Any], wanted: set[str]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(minute key, the minute's counts) of a document's byMinute within `wanted`."""
    prefix = document["hour"][:14]  # "2026-11-22T23:"
    for minute, counts in (document.get("byMinute") or {}).items():
        key = f"{prefix}{minute}:00Z"
        if key in wanted:
            yield key, counts


def _ranked(groups: dict[str, _Group], name: str, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The groups that counted anything, by impressions (then name), each with its series."""
    totals = {g: group.total for g, group in groups.items()}
    counted = [g for g, t in totals.items() if t.impressions or t.clicks]
    order = sorted(counted, key=lambda g: (-totals[g].impressions, g))
    return [{name: g, **totals[g].to_dict(), "series": groups[g].series(keys)} for g in order]


def promotion(report: Mapping[str, Any]) -> dict[str, Any]:
    """One retrain report as the dashboard lists it: the doubly robust estimates compared."""
    evaluation = report.get("evaluation") or {}
    candidate = (evaluation.get("candidate") or {}).get("dr")
    current = (evaluation.get("current") or {}).get("dr")

    def interval(values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: values.get(k) for k in ("estimate", "low", "high")}

    return {"version": report.get("version"), "time": report.get("trainedAt"),
            "promoted": bool(report.get("promoted")), "reason": report.get("reason"),
            "candidate": interval(candidate) if candidate else None,
            "current": {"version": report.get("current"), **interval(current)} if current else None}


@dataclass
class _Offers:
    """The offer statistics of the window, added up per minute, model, offer kind and offer."""

    per_minute: dict[str, _Counts]
    models: dict[str, _Group] = field(default_factory=dict)
    kinds: dict[str, _Group] = field(default_factory=dict)
    per_offer: dict[str, _Group] = field(default_factory=dict)

    @classmethod
    def of(cls, documents: Iterable[Mapping[str, Any]], catalog: Mapping[str, Offer], keys: Sequence[str]) -> "_Offers":
        added = cls({k: _Counts() for k in keys})
        wanted = set(keys)
        for document in documents:
            offer = catalog.get(document["offerId"])
            kind = added.kinds.setdefault(offer.kind if offer else UNKNOWN_KIND, _Group())
            counted = added.per_offer.setdefault(document["offerId"], _Group())
            for key, counts in _minutes_of(document, wanted):
                impressions, clicks = counts.get("impressions", 0), counts.get("clicks", 0)
                added.per_minute[key].add(impressions, clicks)
                kind.add(key, impressions, clicks)
                counted.add(key, impressions, clicks)
                for version, by_model in counts.get("byModel", {}).items():
                    added.models.setdefault(version, _Group()).add(key, by_model.get("impressions", 0),
                                                                   by_model.get("clicks", 0))
        return added

    def top(self, catalog: Mapping[str, Offer], keys: Sequence[str]) -> list[dict[str, Any]]:
        """The TOP_OFFERS offers by clicks, then impressions, described by the catalog, each with its series."""
        counted = {o: group.total for o, group in self.per_offer.items()}
        ids = sorted((o for o, c in counted.items() if c.impressions or c.clicks),
                     key=lambda o: (-counted[o].clicks, -counted[o].impressions, o))[:TOP_OFFERS]
        return [{"offerId": o, "title": catalog[o].title if o in catalog else o,
                 "kind": catalog[o].kind if o in catalog else UNKNOWN_KIND,
                 "category": catalog[o].category if o in catalog else None, **counted[o].to_dict(),
                 "series": self.per_offer[o].series(keys)} for o in ids]


def _events(traffic: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, int]:
    """Events per minute of `keys`, over the hub partitions' traffic documents."""
    events = dict.fromkeys(keys, 0)
    wanted = set(keys)
    for document in traffic:
        for key, counts in _minutes_of(document, wanted):
            events[key] += int(counts.get("events") or 0)
    return events


def build(window: Window, offer_stats: Iterable[Mapping[str, Any]], traffic: Iterable[Mapping[str, Any]],
          offers: Iterable[Offer], reports: Iterable[Mapping[str, Any]], simulation: dict[str, Any],
          now: datetime) -> dict[str, Any]:
    """The GET /api/stats answer for the window (see the module doc and the API contract)."""
    keys = window.keys()
    last_complete = minute_key(window.last_complete)
    catalog = {o.id: o for o in offers}
    added = _Offers.of(offer_stats, catalog, keys)
    events = _events(traffic, [*keys, last_complete])
    minutes = added.per_minute.values()
    totals = _Counts(sum(c.impressions for c in minutes), sum(c.clicks for c in minutes))
    newest = sorted(reports, key=lambda r: str(r.get("trainedAt") or ""), reverse=True)[:PROMOTIONS]
    return {
        "generatedAt": iso(now.replace(microsecond=0)), "from": keys[0], "to": keys[-1], "bucketSeconds": 60,
        "totals": {**totals.to_dict(), "events": sum(events[k] for k in keys)},
        "eventsPerSecond": round(events[last_complete] / 60, 3),
        "series": [{"time": k, **added.per_minute[k].to_dict(), "events": events[k],
                    "eventsPerSecond": round(events[k] / 60, 3)} for k in keys],
        "byModel": _ranked(added.models, "version", keys),
        "byKind": _ranked(added.kinds, "kind", keys),
        "offers": added.top(catalog, keys),
        "promotions": [promotion(r) for r in newest],
        "simulation": simulation,
    }


@dataclass(frozen=True)
class Ports:
    offer_stats: Callable[[str, str], Iterable[dict]]  # the documents of the hours first..last, both included
    traffic: Callable[[str, str], Iterable[dict]]  # the same for traffic
    offers: Callable[[], Iterable[Offer]]  # the catalog's
    reports: Callable[[], Sequence[dict]]  # the offers loop's newest retrain reports
    simulation: Callable[[], dict]  # the GET /api/simulation/status body
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def answer(minutes: int, ports: Ports) -> dict[str, Any]:
    """The answer for the last `minutes` minutes, read through the ports now."""
    now = ports.clock()
    window = Window.ending(now, minutes)
    first, last = window.hours()
    return build(window, ports.offer_stats(first, last), ports.traffic(first, last), ports.offers(),
                 ports.reports(), ports.simulation(), now)


@dataclass
class _Kept:
    lock: threading.Lock = field(default_factory=threading.Lock)
    at: float = -float("inf")
    value: Optional[dict] = None
    error: Optional[str] = None


class Answers:
    """Each window's answer, kept for `seconds` (a failure too, so an outage is not asked again
    by every poll). A caller arriving while the answer is made waits for it instead of making
    another: a dashboard's polls cost one answer every `seconds` whatever their number."""

    def __init__(self, ports: Ports, seconds: float = CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic):
        self.ports, self.seconds, self._monotonic = ports, seconds, monotonic
        self._lock = threading.Lock()
        self._kept: dict[int, _Kept] = {}

    def get(self, minutes: int) -> dict[str, Any]:
        with self._lock:
            kept = self._kept.setdefault(minutes, _Kept())
        with kept.lock:
            began = self._monotonic()
            if began - kept.at >= self.seconds:
                try:
                    kept.value, kept.error = answer(minutes, self.ports), None
                except Unavailable as error:
                    kept.value, kept.error = None, str(error)
                kept.at = began
            if kept.error is not None:
                raise Unavailable(kept.error)
            return kept.value
