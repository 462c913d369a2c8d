"""The catalog in memory: products, offers and users, refreshed in the background.

The offers function reads no catalog document per request: it answers from a `Snapshot`,
which a background thread replaces every `refresh_seconds` (CATALOG_REFRESH_SECONDS). A
failed refresh keeps the previous snapshot. Only the first request waits for a load; while
the catalog is empty (e.g. seeding has not written it yet) the refresh retries every
EMPTY_RETRY_SECONDS.
"""
from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

from . import coldstart, policy
from .catalog import Offer, Product, User

log = logging.getLogger(__name__)

EMPTY_RETRY_SECONDS = 2.0


@dataclass(frozen=True)
class Snapshot:
    products: dict[str, Product]
    offers: tuple[Offer, ...]
    users: dict[str, User]
    offer_features: dict[str, dict[str, Any]]  # offerId -> the offer's own features
    fallback_lists: dict[Optional[str], list[str]]  # cold-start lists computed in-process
    loaded_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def is_empty(self) -> bool:
        return not self.offers

    def fallback(self, segment: Optional[str]) -> list[str]:
        return self.fallback_lists.get(segment) or self.fallback_lists.get(None, [])


def build_snapshot(products: Iterable[dict], offers: Iterable[dict], users: Iterable[dict],
                   now: Optional[datetime] = None) -> Snapshot:
    """A snapshot from catalog documents; documents that do not parse are skipped with a warning."""
    now = now or datetime.now(timezone.utc)
    parsed_offers = []
    for doc in offers:
        try:
            parsed_offers.append(Offer.from_doc(doc))
        except (KeyError, ValueError, TypeError) as error:
            log.warning("skipping offer %s: %s", doc.get("id"), error)
    parsed_offers.sort(key=lambda o: o.id)
    user_map = {d["id"]: User.from_doc(d) for d in users if "id" in d}
    segments = Counter(u.segment for u in user_map.values() if u.segment)
    product_map = {d["id"]: Product.from_doc(d) for d in products if "id" in d and "category" in d}
    prices: dict[str, list[float]] = {}
    for product in product_map.values():
        prices.setdefault(product.category, []).append(product.price)
    medians = {category: statistics.median(values) for category, values in prices.items()}
    return Snapshot(
        products=product_map,
        offers=tuple(parsed_offers),
        users=user_map,
        offer_features={o.id: policy.offer_features(o, product_map, medians) for o in parsed_offers},
        fallback_lists=coldstart.popularity(parsed_offers, segments, now),
        loaded_at=now,
    )


EMPTY = build_snapshot((), (), ())


class CatalogCache:
    """Holds the current Snapshot; `load()` reads the whole catalog and builds one."""

    def __init__(self, load: Callable[[], Snapshot], refresh_seconds: float = 60.0):
        self._load = load
        self._refresh_seconds = refresh_seconds
        self._snapshot: Optional[Snapshot] = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.refreshes = 0
        self.failures = 0

    def get(self) -> Snapshot:
        """The current snapshot; the first call loads it (and starts the refresher)."""
        snapshot = self._snapshot
        if snapshot is not None:
            return snapshot
        with self._lock:
            if self._snapshot is None:
                try:
                    self._snapshot = self._load()
                except Exception:
                    self.failures += 1
                    log.exception("loading the catalog failed; answering from an empty catalog until it loads")
                    self._snapshot = EMPTY
                self._start()
            return self._snapshot

    def refresh(self) -> bool:
        """Load a new snapshot now; False (keeping the old one) when loading fails."""
        began = time.monotonic()
        try:
            snapshot = self._load()
        except Exception as error:  # keep serving the last good catalog
            self.failures += 1
            log.warning("refreshing the catalog failed (keeping the previous one): %s", error)
            return False
        self._snapshot = snapshot
        self.refreshes += 1
        log.info("catalog refreshed in %.0f ms: %s products, %s offers, %s users", (time.monotonic() - began) * 1000,
                 len(snapshot.products), len(snapshot.offers), len(snapshot.users))
        return True

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="catalog-refresh", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            snapshot = self._snapshot
            wait = EMPTY_RETRY_SECONDS if snapshot is None or snapshot.is_empty else self._refresh_seconds
            if self._stop.wait(wait):
                return
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
