"""Projections: a user's profile, per-hour offer statistics and traffic, derived purely from events.

Everything here is a pure function of the events and their place on the hub (partition and
sequence number), never of the wall clock, so replaying the archive gives the documents the
live ingest wrote, bit for bit (see ops/rebuild.py).

Idempotence has two parts:
* A redelivered hub message (the same partition and sequence number, after a crash or a
  retried batch) is recognised by the profile's `watermark` (a user's events all come from
  one partition, since the partition key is the userId), by each offer-statistics
  document's per-partition `watermarks` and by each traffic document's `watermark` (one
  traffic document per hour and hub partition).
* A re-posted event (the same event id in a new hub message, e.g. a client that retried a
  POST) is recognised by the ids of the user's last RECENT_EVENTS applied events, kept in
  the profile as `recentEvents`. Such a repeat is neither applied nor archived.

Both statistics are kept per hour and, inside the hour's document, per minute of the event's
time (`byMinute`, keyed "MM"): the dashboard's series (shared/stats.py) read a window of
whole minutes from the hours' documents. Documents written before `byMinute` existed are
read and updated alike; only the minutes counted since then have a breakdown (a rebuild
fills it from the archive).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, NamedTuple, Optional, Sequence

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
    minute: str  # "MM" of the event's time, within `hour`
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


def minute_of(time: datetime) -> str:
    """The "MM" key of `time`'s minute within its hour (the byMinute breakdowns)."""
    return time.astimezone(timezone.utc).strftime("%M")


def _compact(hour: str) -> str:
    return f"{hour[0:4]}{hour[5:7]}{hour[8:10]}{hour[11:13]}"


def offer_stats_id(offer_id: str, hour: str) -> str:
    return f"{offer_id}:{_compact(hour)}"


def traffic_stats_id(hour: str, partition: str) -> str:
    return f"{_compact(hour)}:{partition}"


def new_profile(user_id: str) -> dict:
    return {
        "id": user_id, "userId": user_id, "schemaVersion": SCHEMA_VERSION,
        "recentViews": [], "categoryAffinity": {}, "affinityAsOf": None,
        "offersShown": {}, "offersClicked": {}, "carts": 0, "purchases": 0, "eventCount": 0,
        "watermark": None, "recentEvents": [], "recentDecisions": [],
    }


def new_offer_stats(offer_id: str, hour: str) -> dict:
    return {"id": offer_stats_id(offer_id, hour), "offerId": offer_id, "hour": hour,
            "impressions": 0, "clicks": 0, "byModel": {}, "byMinute": {}, "watermarks": {}}


def new_traffic_stats(hour: str, partition: str) -> dict:
    return {"id": traffic_stats_id(hour, partition), "hour": hour, "partition": partition,
            "events": 0, "byType": {}, "byMinute": {}, "watermark": None}


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
    place = dict(partition=delivered.partition, sequence=delivered.sequence, hour=hour_of(event.time),
                 minute=minute_of(event.time))
    if event.type == events.OFFER_SHOWN:
        return [Tally(offer_id=c.offerId, model_version=event.data.modelVersion, impressions=1, **place)
                for c in event.data.chosen]
    if event.type == events.OFFER_CLICKED:
        model = next((m for d, m in reversed(state["recentDecisions"]) if d == event.data.decisionId),
                     UNKNOWN_MODEL)
        return [Tally(offer_id=event.data.offerId, model_version=model, clicks=1, **place)]
    return []


def _counts() -> dict:
    return {"impressions": 0, "clicks": 0}


def _copy_models(by_model: dict) -> dict:
    return {m: dict(c) for m, c in by_model.items()}


def _offer_state(document: Optional[dict], offer_id: str, hour: str) -> dict:
    """A copy of the document deep enough to count into (a new one for None); one written
    before byMinute existed gets an empty breakdown."""
    if document is None:
        return new_offer_stats(offer_id, hour)
    minutes = {m: dict(c, byModel=_copy_models(c["byModel"])) for m, c in document.get("byMinute", {}).items()}
    return dict(document, byModel=_copy_models(document["byModel"]), byMinute=minutes,
                watermarks=dict(document["watermarks"]))


def apply_tallies(document: Optional[dict], offer_id: str, hour: str, tallies: Iterable[Tally]) -> Optional[dict]:
    """Count the tallies (of one offer and hour) the document has not counted yet.

    A tally at or below the document's watermark for its partition was counted before (a
    redelivered batch). Each is counted in the hour, its model, its minute and the minute's
    model. Returns the new document, or None when nothing was new.
    """
    state = _offer_state(document, offer_id, hour)
    counted_up_to = dict(state["watermarks"])  # as before this call: one event may give several tallies
    changed = False
    for tally in tallies:
        if tally.sequence <= counted_up_to.get(tally.partition, -1):
            continue
        minute = state["byMinute"].setdefault(tally.minute, {**_counts(), "byModel": {}})
        for counts in (state, state["byModel"].setdefault(tally.model_version, _counts()),
                       minute, minute["byModel"].setdefault(tally.model_version, _counts())):
            counts["impressions"] += tally.impressions
            counts["clicks"] += tally.clicks
        state["watermarks"][tally.partition] = max(state["watermarks"].get(tally.partition, -1), tally.sequence)
        changed = True
    return state if changed else None


def group_tallies(tallies: Iterable[Tally]) -> dict[str, list[Tally]]:
    """Tallies by offer-statistics document id, each list in hub order."""
    grouped: dict[str, list[Tally]] = {}
    for tally in sorted(tallies, key=lambda t: (t.partition, t.sequence)):
        grouped.setdefault(tally.document_id, []).append(tally)
    return grouped


def group_traffic(deliveries: Iterable[Delivered]) -> dict[str, list[Delivered]]:
    """Events by traffic document id (the hour of the event's time, the hub partition), each list in hub order."""
    grouped: dict[str, list[Delivered]] = {}
    for delivered in sorted(deliveries, key=lambda d: (d.partition, d.sequence)):
        grouped.setdefault(traffic_stats_id(hour_of(delivered.event.time), delivered.partition), []).append(delivered)
    return grouped


def apply_traffic(document: Optional[dict], hour: str, partition: str,
                  deliveries: Iterable[Delivered]) -> Optional[dict]:
    """Count the events (of one hour and hub partition) the document has not counted yet, by type,
    in the hour and in the event's minute.

    An event at or below the document's `watermark` was counted before (a redelivered batch).
    Returns the new document, or None when nothing was new.
    """
    state = (dict(document, byType=dict(document["byType"]),
                  byMinute={m: dict(c, byType=dict(c["byType"])) for m, c in document["byMinute"].items()})
             if document is not None else new_traffic_stats(hour, partition))
    counted_up_to = state["watermark"] if state["watermark"] is not None else -1
    newest = counted_up_to
    for delivered in deliveries:
        if delivered.sequence <= counted_up_to:
            continue
        minute = state["byMinute"].setdefault(minute_of(delivered.event.time), {"events": 0, "byType": {}})
        for counts in (state, minute):
            counts["events"] += 1
            _count(counts["byType"], delivered.event.type)
        newest = max(newest, delivered.sequence)
    if newest == counted_up_to:
        return None
    state["watermark"] = newest
    return state


def strip_system_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The document without Cosmos DB's own properties (_rid, _self, _etag, _attachments, _ts)."""
    return {k: v for k, v in document.items() if not k.startswith("_")}


class Replayed(NamedTuple):
    """Every projection's documents, by id."""

    profiles: dict[str, dict]
    offer_stats: dict[str, dict]
    traffic_stats: dict[str, dict]


def replay(deliveries: Iterable[Delivered], half_life_hours: float = DEFAULT_HALF_LIFE_HOURS) -> Replayed:
    """Every profile, offer-statistics and traffic document from scratch.

    `deliveries` are the archived hub messages in (partition, sequence) order, each once.
    The same functions as the live path run over them, so the documents come out equal to
    the live ones whatever batches the live path saw: the Personalizer-compatible API's
    events project into no profile (their subject is not a shopper), and traffic counts
    what the live path archives (every event but a shopper's re-posted one).
    """
    by_user: dict[str, list[Delivered]] = {}
    counted: list[Delivered] = []
    for delivered in deliveries:
        if delivered.event.type in events.PERSONALIZER_TYPES:
            counted.append(delivered)
        else:
            by_user.setdefault(delivered.event.user_id, []).append(delivered)
    profiles: dict[str, dict] = {}
    tallies: list[Tally] = []
    for user, delivered in by_user.items():
        outcome = project_user(None, user, delivered, half_life_hours)
        if outcome.profile is not None:
            profiles[user] = outcome.profile
        tallies.extend(outcome.tallies)
        counted.extend(outcome.archived)
    stats = {}
    for doc_id, group in group_tallies(tallies).items():
        document = apply_tallies(None, group[0].offer_id, group[0].hour, group)
        if document is not None:
            stats[doc_id] = document
    traffic = {}
    for doc_id, group in group_traffic(counted).items():
        document = apply_traffic(None, hour_of(group[0].event.time), group[0].partition, group)
        if document is not None:
            traffic[doc_id] = document
    return Replayed(profiles, stats, traffic)
