"""Cold-start popularity: which offers to show a shopper the app knows nothing about.

One ranked list per user segment and one global list, kept in Redis as JSON lists of
offer ids, best first (`offerloop:coldstart:segment:<segment>`, `offerloop:coldstart:global`).
The job (`run`) recomputes them at seeding and hourly on a timer; the offers function reads
them through `PopularityLists`, which falls back to lists computed in-process from the
catalog when Redis does not answer.

The score of an offer for a segment is its estimated click-through rate:
  prior    = BASE_CTR x (1 + discountPercent / 20)      (free shipping: 1 + 25 / minBasket)
  estimate = (clicks + PSEUDO_IMPRESSIONS x prior) / (impressions + PSEUDO_IMPRESSIONS)
so the prior decides until an offer has been shown a few hundred times, then the observed
rate takes over. Offers targeted at the segment (rules.segments) count TARGETED_BOOST times;
offers the segment may not get, offers needing category affinity (a new shopper has none)
and expired offers are left out. The global list weighs each segment by its share of users.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .catalog import FREE_SHIPPING, Offer

log = logging.getLogger(__name__)

KEY_PREFIX = "offerloop:coldstart:"
BASE_CTR = 0.02
PSEUDO_IMPRESSIONS = 200.0
TARGETED_BOOST = 1.5
STATS_LOOKBACK_HOURS = 7 * 24
GLOBAL_KEY = KEY_PREFIX + "global"


def segment_key(segment: str, prefix: str = KEY_PREFIX) -> str:
    return f"{prefix}segment:{segment}"


def global_key(prefix: str = KEY_PREFIX) -> str:
    return f"{prefix}global"


def prior_ctr(offer: Offer) -> float:
    if offer.kind == FREE_SHIPPING:
        return BASE_CTR * (1 + 25 / max(float(offer.min_basket or 50), 1.0))
    return BASE_CTR * (1 + float(offer.discount_percent or 0) / 20)


def estimated_ctr(offer: Offer, impressions: int = 0, clicks: int = 0) -> float:
    return (clicks + PSEUDO_IMPRESSIONS * prior_ctr(offer)) / (impressions + PSEUDO_IMPRESSIONS)


def _listable(offer: Offer, now: datetime) -> bool:
    return offer.valid_to > now and offer.min_category_affinity is None


def _segment_scores(offers: Sequence[Offer], segment: str, rates: Mapping[str, float]) -> dict[str, float]:
    scores = {}
    for offer in offers:
        if offer.segments is not None and segment not in offer.segments:
            continue
        scores[offer.id] = rates[offer.id] * (TARGETED_BOOST if offer.segments else 1.0)
    return scores


def _ranked(scores: Mapping[str, float]) -> list[str]:
    return sorted(scores, key=lambda offer_id: (-scores[offer_id], offer_id))


def popularity(offers: Iterable[Offer], segments: Counter, now: datetime,
               totals: Optional[Mapping[str, tuple[int, int]]] = None) -> dict[Optional[str], list[str]]:
    """Ranked offer ids per segment, and under None the global list.

    `segments` counts users per segment; `totals` maps offerId -> (impressions, clicks).
    """
    listable = [o for o in offers if _listable(o, now)]
    rates = {o.id: estimated_ctr(o, *(totals or {}).get(o.id, (0, 0))) for o in listable}
    lists: dict[Optional[str], list[str]] = {}
    weighted: dict[str, float] = {}
    users = sum(segments.values())
    for segment, count in sorted(segments.items()):
        scores = _segment_scores(listable, segment, rates)
        lists[segment] = _ranked(scores)
        for offer_id, score in scores.items():
            weighted[offer_id] = weighted.get(offer_id, 0.0) + score * count / users
    if not segments:  # no users yet: every untargeted offer at its own rate
        weighted = {o.id: rates[o.id] for o in listable if o.segments is None}
    lists[None] = _ranked(weighted)
    return lists


def redis_values(lists: Mapping[Optional[str], list], prefix: str = KEY_PREFIX) -> dict[str, str]:
    """Key -> JSON of each list; the global list is the one under None or ""."""
    return {(segment_key(segment, prefix) if segment else global_key(prefix)): json.dumps(items)
            for segment, items in lists.items()}


def run(offers: Iterable[Offer], segments: Counter, totals: Mapping[str, tuple[int, int]],
        write: Callable[[dict[str, str]], Any], now: datetime) -> dict[Optional[str], list[str]]:
    """Compute every list and write them all at once (`write` gets key -> JSON text)."""
    lists = popularity(offers, segments, now, totals)
    write(redis_values(lists))
    log.info("cold-start lists written: %s segments, %s offers in the global list, %s offers with statistics",
             len(lists) - 1, len(lists[None]), len(totals))
    return lists


class PopularityLists:
    """The cold-start list of a segment, read from Redis and kept for `ttl` seconds.

    Lists are JSON under `<prefix>segment:<segment>` (or `<prefix>global` when the segment has
    none): the offers' lists here, the product-affinity lists with affinity_job's prefix.

    `mget(keys)` is Redis MGET. When Redis fails, `fallback(segment)` answers (lists
    computed in-process from the catalog) and Redis is retried after `retry_after`
    seconds, so a Redis outage costs one failed call per interval, not one per request.
    """

    def __init__(self, mget: Callable[[list[str]], list[Optional[str]]],
                 fallback: Callable[[Optional[str]], list], ttl: float = 30.0,
                 retry_after: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 prefix: str = KEY_PREFIX, name: str = "cold-start lists"):
        self._mget, self._fallback, self._prefix, self._name = mget, fallback, prefix, name
        self._ttl, self._retry_after, self._clock = ttl, retry_after, clock
        self._cache: dict[Optional[str], tuple[float, list]] = {}
        self._down_until = 0.0
        self._lock = threading.Lock()
        self.failures = 0

    def get(self, segment: Optional[str]) -> tuple[list, str]:
        """(the list, best first, and where it came from: "redis" or "fallback")."""
        now = self._clock()
        cached = self._cache.get(segment)
        if cached and cached[0] > now:
            return cached[1], "redis"
        if now < self._down_until:
            return self._fallback(segment), "fallback"
        keys = ([segment_key(segment, self._prefix)] if segment else []) + [global_key(self._prefix)]
        try:
            values = self._mget(keys)
        except Exception as error:  # any Redis failure: answer from the fallback, retry later
            with self._lock:
                self.failures += 1
                self._down_until = now + self._retry_after
            log.warning("%s unavailable from Redis (%s); using the in-process lists for %.0f s",
                        self._name, error, self._retry_after)
            return self._fallback(segment), "fallback"
        found = next((v for v in values if v), None)
        if found is None:  # not computed yet (e.g. right after seeding started)
            return self._fallback(segment), "fallback"
        ids = json.loads(found)
        self._cache[segment] = (now + self._ttl, ids)
        return ids, "redis"
