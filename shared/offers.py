"""The offers service: choose a shopper's offers and log the decision as an offer.shown event.

Per request: one point read of the shopper's profile; everything else (catalog, users,
cold-start lists, the related-products table) comes from memory. A shopper without a profile,
or whose profile has no views yet, is a cold start: the baseline policy then ranks by the
segment's cold-start offer list, and the segment's cold-start product list stands in for the
shopper's product affinity. Otherwise that affinity is their recent views, decayed, times the
related-products table. It is logged as the `affinity` context features (its categories and
brands) and, per candidate, as how much of it the offer covers (learned rankers use both).
The decision is published as one `offer.shown` event whose id is the decision id.
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import numpy as np

from . import affinity, events, policy
from .affinity import Related
from .catalog import User, parse_time
from .catalog_cache import Snapshot

log = logging.getLogger(__name__)

MIN_OFFERS, MAX_OFFERS, DEFAULT_OFFERS = 1, 10, 3
MAX_ID_LENGTH = events.MAX_ID_LENGTH
DIAGNOSTICS = "diagnostics"  # the context namespace that describes the serving, not the shopper
IDLE_POLL_SECONDS = 0.1  # how soon an idle sender notices close()


@dataclass(frozen=True)
class Ports:
    """What `decide` needs from the outside world; bootstrap wires the real ones, tests fakes."""

    read_profile: Callable[[str], Optional[dict]]  # one point read; None when there is none
    catalog: Callable[[], Snapshot]
    popular: Callable[[Optional[str]], tuple[list[str], str]]  # segment -> (offer ids, source)
    publish: Callable[[events.Event], None]  # offer.shown; must not block on the hub
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    record: Callable[[str, float], None] = lambda name, ms: None  # timing name -> milliseconds
    half_life_hours: float = policy.DEFAULT_HALF_LIFE_HOURS
    choose: policy.Chooser = policy.greedy  # which ranked candidates are shown
    related: Callable[[], Optional[Related]] = lambda: None  # the related-products table, in memory
    liked: Callable[[Optional[str]], tuple[list, str]] = lambda segment: ([], "none")  # segment -> product list


@dataclass(frozen=True)
class ShownOffer:
    scored: policy.Scored
    slot: int
    probability: float

    def to_dict(self) -> dict[str, Any]:
        offer = self.scored.offer
        body: dict[str, Any] = {"offerId": offer.id, "title": offer.title, "kind": offer.kind,
                                "probability": self.probability, "score": round(self.scored.score, 6)}
        for key in ("category", "productIds", "discountPercent", "minBasket", "validTo"):
            if offer.doc.get(key) is not None:
                body[key] = offer.doc[key]
        return body


@dataclass(frozen=True)
class Decision:
    event: events.Event  # the offer.shown event; its id is the decision id
    user_id: str
    offers: list[ShownOffer]
    model_version: str
    cold_start: bool

    @property
    def event_id(self) -> str:
        return self.event.id

    def to_dict(self) -> dict[str, Any]:
        """The GET /api/offers answer."""
        return {"eventId": self.event_id, "userId": self.user_id,
                "offers": [o.to_dict() for o in self.offers],
                "modelVersion": self.model_version, "coldStart": self.cold_start}


def is_cold(profile: Optional[dict]) -> bool:
    return not profile or not profile.get("recentViews")


def _profile(ports: Ports, user_id: str) -> tuple[Optional[dict], bool]:
    """(the profile or None, whether it could be read); an unreadable profile is a cold start."""
    try:
        return ports.read_profile(user_id), True
    except Exception as error:  # offers must still answer when the profile store does not
        log.warning("profile of %s unreadable, answering as a cold start: %s", user_id, error)
        return None, False


def _liked(ports: Ports, profile: Optional[dict], cold: bool, segment: Optional[str],
           now: datetime) -> tuple[dict[str, float], str]:
    """The shopper's product affinity (product -> share) and where it came from: their recent views
    times the related-products table, or for a cold start their segment's cold-start product list."""
    try:
        if cold:
            listed, source = ports.liked(segment)
            top = [(str(p), float(s)) for p, s in listed[:policy.LIKED_PRODUCTS]]
            total = sum(s for _, s in top) or 1.0
            return {p: round(s / total, 6) for p, s in top}, source
        related = ports.related()
        if related is None:
            return {}, "none"
        views = (profile or {}).get("recentViews") or ()
        ages = np.array([(now - parse_time(v["time"])).total_seconds() for v in views], dtype=np.float64)
        weights = affinity.decay(ages, ports.half_life_hours / 24).tolist()
        history = zip((v["productId"] for v in views), weights)
        return dict(related.personal(history, policy.LIKED_PRODUCTS)), "history"
    except Exception as error:  # a malformed list or profile must never fail an offer request
        log.warning("product affinity of a %s shopper unavailable: %s", "cold-start" if cold else "known", error)
        return {}, "unavailable"


def decide(user_id: str, product_id: Optional[str], n: int, ports: Ports) -> Decision:
    """Rank the offers for this shopper (and the product on screen), publish offer.shown, return the decision."""
    began = time.perf_counter()
    profile, readable = _profile(ports, user_id)
    read = time.perf_counter()
    now = ports.clock()
    snapshot = ports.catalog()
    user = snapshot.users.get(user_id) or User(user_id)
    product = snapshot.products.get(product_id) if product_id else None
    cold = is_cold(profile)
    as_of = parse_time(profile["affinityAsOf"]) if profile and profile.get("affinityAsOf") else None
    affinity = policy.decayed((profile or {}).get("categoryAffinity") or {}, as_of, now, ports.half_life_hours)
    context = policy.Context(user=user, now=now, affinity=affinity, product=product)
    popular, source = ports.popular(user.segment)
    shares = policy.interest(context)
    known = profile or {}
    liked, liked_from = _liked(ports, profile, cold, user.segment, now)
    liked_summary = policy.liked_shares(liked, snapshot.products)
    ranking = policy.rank(snapshot.offers, context, popular, n, snapshot.offer_features, shares,
                          known.get("offersShown"), known.get("offersClicked"), liked,
                          liked_summary.get("categories"))
    history = {"views": len(known.get("recentViews") or ()), "carts": known.get("carts", 0),
               "purchases": known.get("purchases", 0)}
    brands = policy.brand_shares(known.get("recentViews") or (), snapshot.products)
    features = policy.context_features(context, history, brands, liked_summary)
    # How this decision was served; not a feature of the shopper (learners skip this namespace).
    features[DIAGNOSTICS] = {"popularFrom": source, "affinityFrom": liked_from}
    if not readable:
        features[DIAGNOSTICS]["profile"] = "unavailable"
    if product_id and product is None:
        features[DIAGNOSTICS]["unknownProductId"] = product_id
    choice = ports.choose(dataclasses.replace(context, features=features), ranking.candidates, n)
    shown = [ShownOffer(s, slot, probability) for slot, (s, probability) in enumerate(choice.chosen)]
    decision_id = str(uuid.uuid4())
    data = events.OfferShownV1(
        decisionId=decision_id, context=features,
        candidates=[events.Candidate(offerId=s.offer.id, features=s.features) for s in ranking.candidates],
        chosen=[events.Chosen(offerId=o.scored.offer.id, slot=o.slot, probability=o.probability) for o in shown],
        modelVersion=choice.model_version, exploration=events.Exploration(**choice.exploration), coldStart=cold)
    event = events.new(events.OFFER_SHOWN, user_id, data, source=events.OFFERS_SOURCE, id=decision_id, time=now)
    scored = time.perf_counter()
    ports.publish(event)
    done = time.perf_counter()
    ports.record("profile_read", (read - began) * 1000)
    ports.record("scoring", (scored - read) * 1000)
    ports.record("total", (done - began) * 1000)
    return Decision(event, user_id, shown, choice.model_version, cold)


class BackgroundPublisher:
    """The publish port for offer.shown: a bounded buffer that a background thread sends from.

    Requests only enqueue (no Event Hubs round trip on the request path). The sender takes
    whatever is buffered, up to `max_batch` events, and hands `send` one user's events at a
    time. A failed send is logged, counted and retried with backoff; after `attempts` failures
    in a row what is left of the batch is counted as dropped. When the buffer is full, `publish` waits up to
    `put_timeout` seconds, then drops the event (counted). `close()` — also run at
    interpreter exit — sends everything still buffered, so a normal shutdown loses nothing;
    a killed process loses what was buffered (at most a few milliseconds' worth).
    """

    def __init__(self, send: Callable[[list[events.Event]], None], capacity: int = 10_000,
                 max_batch: int = 500, attempts: int = 5, put_timeout: float = 1.0,
                 backoff: Callable[[int], float] = lambda attempt: min(0.5 * 2 ** attempt, 10.0),
                 on_drop: Callable[[int], None] = lambda count: None, name: str = "offer.shown"):
        self._send, self._max_batch, self._attempts = send, max_batch, attempts
        self._on_drop, self.name = on_drop, name  # the events' kind, for the logs
        self._put_timeout, self._backoff = put_timeout, backoff
        self._queue: "queue.Queue[events.Event]" = queue.Queue(maxsize=capacity)
        self._closed = threading.Event()
        self.sent = self.failed_sends = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"{name}-sender", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def __call__(self, event: events.Event) -> None:
        if self._closed.is_set():
            self._send_now([event])  # after close there is no sender: send on the caller's thread
            return
        try:
            self._queue.put(event, timeout=self._put_timeout)
        except queue.Full:
            self.dropped += 1
            self._on_drop(1)
            log.error("%s buffer full; dropped decision %s (%s dropped so far)", self.name, event.id, self.dropped)

    def pending(self) -> int:
        return self._queue.qsize()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything enqueued so far has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.005)
        return False

    def close(self, timeout: float = 10.0) -> None:
        """Send what is buffered (waiting up to `timeout` seconds), then stop the sender."""
        if self._closed.is_set():
            return
        log.info("%s sender closing: %s events buffered, %s sent so far", self.name, self.pending(), self.sent)
        self._closed.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("%s sender did not finish within %.0f s; %s events still buffered",
                      self.name, timeout, self._queue.qsize())
            return
        # A request that enqueued just as the sender stopped is sent here, on the closing thread.
        late = []
        while True:
            try:
                late.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if late:
            self._send_now(late)
        log.info("%s sender closed: %s sent, %s dropped", self.name, self.sent, self.dropped)

    def _run(self) -> None:
        while True:
            try:
                items = [self._queue.get(timeout=IDLE_POLL_SECONDS)]
            except queue.Empty:
                if self._closed.is_set():  # closed and nothing left: done
                    return
                continue
            while len(items) < self._max_batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send_now(items)
            finally:
                for _ in items:
                    self._queue.task_done()

    def _send_now(self, batch: list[events.Event]) -> None:
        # One send per user (= partition key), so a retry resends only what did not go out.
        pending: dict[str, list[events.Event]] = {}
        for event in batch:
            pending.setdefault(event.user_id, []).append(event)
        groups = list(pending.values())
        failures = 0
        while groups:
            try:
                self._send(groups[0])
            except Exception as error:  # Event Hubs unavailable: retry, then count the loss
                failures += 1
                self.failed_sends += 1
                log.warning("sending %s events failed (attempt %s of %s): %s", self.name, failures,
                            self._attempts, error)
                if failures >= self._attempts:
                    break
                if not self._closed.is_set():
                    time.sleep(self._backoff(failures - 1))
                continue
            self.sent += len(groups.pop(0))
        lost = sum(len(g) for g in groups)
        if lost:
            self.dropped += lost
            self._on_drop(lost)
            log.error("dropped %s %s events after %s failed attempts (%s dropped so far)",
                      lost, self.name, failures, self.dropped)
