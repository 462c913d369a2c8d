"""Projections: a user's profile and per-hour offer statistics, derived purely from events.

Everything here is a pure function of the events and their place on the hub (partition and
sequence number), never of the wall clock, so replaying the archive gives the documents the
live ingest wrote, bit for bit (see ops/rebuild.py).

Idempotence has two parts:
* A redelivered hub message (the same partition and sequence number, after a crash or a
  retried batch) is recognised by the profile's `watermark` (a user's events all come from
  one partition, since the partition key is the userId) and by each offer-statistics
  document's per-partition `watermarks`.
* A re-posted event (the same event id in a new hub message, e.g. a client that retried a
  POST) is recognised by the ids of the user's last RECENT_EVENTS applied events, kept in
  the profile as `recentEvents`. Such a repeat is neither applied nor archived.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Optional, Sequence

from . import events
from .events import Event

SCHEMA_VERSION = 1
DEFAULT_HALF_LIFE_HOURS = 72.0
RECENT_VIEWS = 50
RECENT_EVENTS = 100  # ids remembered per profile to recognise a re-posted event
RECENT_DECISIONS = 50  # decisionId -> modelVersion, to credit a click to the model that showed the offer
UNKNOWN_MODEL = "unknown"  # a click whose decision is not among the user's recent decisions
AFFINITY_WEIGHTS = {events.PRODUCT_VIEWED: 1.0, events.CART_ADDED: 3.0, events.PRODUCT_PURCHASED: 5.0}

# What a delivered event turned out to be for its user's profile.
NEW = "new"  # applied now
REDELIVERED = "redelivered"  # the same hub message again: applied before, archived again, not re-applied
REPEAT = "repeat"  # the same event id in another hub message: ignored


@dataclass(frozen=True)
class Delivered:
    """An event with its place on the hub."""

    partition: str
    sequence: int
    event: Event
    enqueued_time: Optional[datetime] = None  # when the hub accepted it (kept in the archive)


@dataclass(frozen=True)
class Tally:
    """One event's contribution to an offer's statistics for one hour."""

    offer_id: str
    hour: str  # "2026-11-22T05:00:00Z"
    partition: str
    sequence: int
    model_version: str
    impressions: int = 0
    clicks: int = 0

    @property
    def document_id(self) -> str:
        return offer_stats_id(self.offer_id, self.hour)


@dataclass
class UserOutcome:
    profile: Optional[dict]  # the new profile, or None when no event was new
    archived: list[Delivered] = field(default_factory=list)  # new and redelivered, in order
    tallies: list[Tally] = field(default_factory=list)  # from new and redelivered events
    applied: int = 0
    redelivered: int = 0
    repeated: list[Delivered] = field(default_factory=list)


def iso(time: datetime) -> str:
    return time.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def hour_of(time: datetime) -> str:
    return time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:00:00Z")


def offer_stats_id(offer_id: str, hour: str) -> str:
    return f"{offer_id}:{hour[0:4]}{hour[5:7]}{hour[8:10]}{hour[11:13]}"


def new_profile(user_id: str) -> dict:
    return {
        "id": user_id, "userId": user_id, "schemaVersion": SCHEMA_VERSION,
        "recentViews": [], "categoryAffinity": {}, "affinityAsOf": None,
        "offersShown": {}, "offersClicked": {}, "carts": 0, "purchases": 0, "eventCount": 0,
        "watermark": None, "recentEvents": [], "recentDecisions": [],
    }


def new_offer_stats(offer_id: str, hour: str) -> dict:
    return {"id": offer_stats_id(offer_id, hour), "offerId": offer_id, "hour": hour,
            "impressions": 0, "clicks": 0, "byModel": {}, "watermarks": {}}


def classify(profile: dict, remembered: dict[str, tuple[str, int]], delivered: Delivered) -> str:
    """NEW, REDELIVERED or REPEAT for this profile; `remembered` indexes its recentEvents by id.

    Only the profile decides, never what came earlier in the same call, so the live path
    (batch by batch) and a rebuild (all at once) classify every event alike.
    """
    place = remembered.get(delivered.event.id)
    if place is not None:
        return REDELIVERED if place == (delivered.partition, delivered.sequence) else REPEAT
    mark = profile["watermark"]
    if mark and mark["partition"] == delivered.partition and delivered.sequence <= mark["sequence"]:
        return REDELIVERED  # applied so long ago that its id is no longer remembered
    return NEW


def project_user(profile: Optional[dict], user_id: str, deliveries: Sequence[Delivered],
                 half_life_hours: float = DEFAULT_HALF_LIFE_HOURS) -> UserOutcome:
    """Apply one user's delivered events (in hub order) to their profile.

    Returns the new profile (None when nothing was new), the events the archive must hold,
    and the offer-statistics tallies; the input profile is not modified.
    """
    state = _copy(profile) if profile is not None else new_profile(user_id)
    remembered = {entry[0]: (entry[1], entry[2]) for entry in state["recentEvents"]}
    outcome = UserOutcome(profile=None)
    for delivered in deliveries:
        kind = classify(state, remembered, delivered)
        if kind == REPEAT:
            outcome.repeated.append(delivered)
            continue
        outcome.archived.append(delivered)
        if kind == NEW:
            _apply(state, delivered, half_life_hours)
            recent = state["recentEvents"]
            recent.append([delivered.event.id, delivered.partition, delivered.sequence])
            remembered[delivered.event.id] = (delivered.partition, delivered.sequence)
            if len(recent) > RECENT_EVENTS:  # the oldest id falls out of the window
                del remembered[recent.pop(0)[0]]
            outcome.applied += 1
        else:
            outcome.redelivered += 1
        outcome.tallies.extend(_tallies(delivered, state))
    if outcome.applied:
        outcome.profile = state
    return outcome


def _copy(profile: dict) -> dict:
    # Copies every container _apply changes in place; the items in them are only ever replaced.
    return {k: v.copy() if isinstance(v, (list, dict)) else v for k, v in profile.items()}


def _apply(state: dict, delivered: Delivered, half_life_hours: float) -> None:
    event = delivered.event
    _decay_to(state, event.time, half_life_hours)
    data = event.data
    weight = AFFINITY_WEIGHTS.get(event.type)
    if weight is not None:
        # The value as of affinityAsOf: an event older than that counts already decayed.
        age = (parse_time(state["affinityAsOf"]) - event.time).total_seconds()
        affinity = state["categoryAffinity"]
        affinity[data.category] = affinity.get(data.category, 0.0) + weight * _decay(age, half_life_hours)
    if event.type == events.PRODUCT_VIEWED:
        views = state["recentViews"]
        # Most recent first; among equal times the later arrival first. Usually position 0.
        at = next((i for i, v in enumerate(views) if parse_time(v["time"]) <= event.time), len(views))
        views.insert(at, {"productId": data.productId, "category": data.category, "time": iso(event.time)})
        del views[RECENT_VIEWS:]
    elif event.type == events.CART_ADDED:
        state["carts"] += 1
    elif event.type == events.PRODUCT_PURCHASED:
        state["purchases"] += 1
    elif event.type == events.OFFER_SHOWN:
        for chosen in data.chosen:
            _count(state["offersShown"], chosen.offerId)
        decisions = [d for d in state["recentDecisions"] if d[0] != data.decisionId]
        state["recentDecisions"] = (decisions + [[data.decisionId, data.modelVersion]])[-RECENT_DECISIONS:]
    elif event.type == events.OFFER_CLICKED:
        _count(state["offersClicked"], data.offerId)
    state["eventCount"] += 1
    state["watermark"] = {"partition": delivered.partition, "sequence": delivered.sequence}


def _decay(age_seconds: float, half_life_hours: float) -> float:
    return 0.5 ** (age_seconds / (half_life_hours * 3600.0))


def _decay_to(state: dict, time: datetime, half_life_hours: float) -> None:
    """Move affinityAsOf forward to `time` (never back), decaying every category's value."""
    if state["affinityAsOf"] is None:
        state["affinityAsOf"] = iso(time)
        return
    as_of = parse_time(state["affinityAsOf"])
    if time <= as_of:
        return
    factor = _decay((time - as_of).total_seconds(), half_life_hours)
    state["categoryAffinity"] = {c: v * factor for c, v in state["categoryAffinity"].items()}
    state["affinityAsOf"] = iso(time)


def _count(counts: dict, key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _tallies(delivered: Delivered, state: dict) -> list[Tally]:
    event = delivered.event
    place = dict(partition=delivered.partition, sequence=delivered.sequence, hour=hour_of(event.time))
    if event.type == events.OFFER_SHOWN:
        return [Tally(offer_id=c.offerId, model_version=event.data.modelVersion, impressions=1, **place)
                for c in event.data.chosen]
    if event.type == events.OFFER_CLICKED:
        model = next((m for d, m in reversed(state["recentDecisions"]) if d == event.data.decisionId),
                     UNKNOWN_MODEL)
        return [Tally(offer_id=event.data.offerId, model_version=model, clicks=1, **place)]
    return []


def apply_tallies(document: Optional[dict], offer_id: str, hour: str, tallies: Iterable[Tally]) -> Optional[dict]:
    """Count the tallies (of one offer and hour) the document has not counted yet.

    A tally at or below the document's watermark for its partition was counted before (a
    redelivered batch). Returns the new document, or None when nothing was new.
    """
    state = (dict(document, byModel={m: dict(c) for m, c in document["byModel"].items()},
                  watermarks=dict(document["watermarks"]))
             if document is not None else new_offer_stats(offer_id, hour))
    counted_up_to = dict(state["watermarks"])  # as before this call: one event may give several tallies
    changed = False
    for tally in tallies:
        if tally.sequence <= counted_up_to.get(tally.partition, -1):
            continue
        state["impressions"] += tally.impressions
        state["clicks"] += tally.clicks
        model = state["byModel"].setdefault(tally.model_version, {"impressions": 0, "clicks": 0})
        model["impressions"] += tally.impressions
        model["clicks"] += tally.clicks
        state["watermarks"][tally.partition] = max(state["watermarks"].get(tally.partition, -1), tally.sequence)
        changed = True
    return state if changed else None


def group_tallies(tallies: Iterable[Tally]) -> dict[str, list[Tally]]:
    """Tallies by offer-statistics document id, each list in hub order."""
    grouped: dict[str, list[Tally]] = {}
    for tally in sorted(tallies, key=lambda t: (t.partition, t.sequence)):
        grouped.setdefault(tally.document_id, []).append(tally)
    return grouped


def strip_system_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The document without Cosmos DB's own properties (_rid, _self, _etag, _attachments, _ts)."""
    return {k: v for k, v in document.items() if not k.startswith("_")}


def replay(deliveries: Iterable[Delivered], half_life_hours: float = DEFAULT_HALF_LIFE_HOURS
           ) -> tuple[dict[str, dict], dict[str, dict]]:
    """Every profile and offer-statistics document from scratch, by id.

    `deliveries` are the archived hub messages in (partition, sequence) order, each once.
    The same functions as the live path run over them, so the documents come out equal to
    the live ones whatever batches the live path saw.
    """
    by_user: dict[str, list[Delivered]] = {}
    for delivered in deliveries:
        by_user.setdefault(delivered.event.user_id, []).append(delivered)
    profiles: dict[str, dict] = {}
    tallies: list[Tally] = []
    for user, delivered in by_user.items():
        outcome = project_user(None, user, delivered, half_life_hours)
        if outcome.profile is not None:
            profiles[user] = outcome.profile
        tallies.extend(outcome.tallies)
    stats = {}
    for doc_id, group in group_tallies(tallies).items():
        document = apply_tallies(None, group[0].offer_id, group[0].hour, group)
        if document is not None:
            stats[doc_id] = document
    return profiles, stats
