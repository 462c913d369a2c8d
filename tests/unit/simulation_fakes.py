"""Fakes and a small catalog for the simulation's unit tests (no services)."""
from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta
from typing import Any, Optional

from shared import catalog
from shared.catalog import CATEGORY_DISCOUNT, Offer
from shared.catalog_cache import Snapshot
from shared.simulation import headless, run, shopper
from shared.simulation.shopper import Shown, Tally
from shared.simulation.world import World, WorldParams

# A catalog small enough for many runs in a unit test, big enough for the statistics to mean something.
SMALL = catalog.CatalogSpec(products=300, categories=12, offers=60, users=2000)
NOW = headless.ANCHOR + timedelta(hours=10)


@functools.cache
def small_snapshot() -> Snapshot:
    return headless.catalog_snapshot(SMALL)


@functools.cache
def default_snapshot() -> Snapshot:
    return headless.catalog_snapshot(catalog.CatalogSpec())


def world_of(snapshot: Snapshot, **params: Any) -> World:
    """A fresh World (no cached tastes) over a snapshot."""
    return World(WorldParams(**params), snapshot.products, snapshot.offers, snapshot.users)


def small_world(**params: Any) -> World:
    return world_of(small_snapshot(), **params)


def discount(category: str, percent: float, offer_id: Optional[str] = None) -> Offer:
    """A category discount valid around NOW, with no products (so no brand or price terms)."""
    return Offer(id=offer_id or f"disc-{category}-{percent}", title="discount", kind=CATEGORY_DISCOUNT,
                 valid_from=NOW - timedelta(days=30), valid_to=NOW + timedelta(days=30), category=category,
                 discount_percent=percent)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


class FakeDecide:
    """The offers service as a shopper sees it: shows `show` (default: the first candidate) of `candidates`."""

    def __init__(self, candidates: list[str], show: Optional[list[str]] = None, hour: int = 10):
        self.candidates, self.show, self.hour = candidates, show, hour
        self.calls: list[tuple[str, Optional[str], int]] = []

    def __call__(self, user_id: str, product_id: Optional[str], n: int) -> Shown:
        self.calls.append((user_id, product_id, n))
        chosen = self.show if self.show is not None else self.candidates[:n]
        return Shown(f"decision-{len(self.calls)}", list(self.candidates), [(o, 1.0) for o in chosen],
                     "fake-1", self.hour)


class Posted:
    """The events port: keeps every batch."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        self.batches.append(list(batch))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]


def fixed_clock(at: datetime = NOW):
    return lambda: at


def shopper_ports(world: World, decide: FakeDecide, post: Optional[Posted] = None) -> shopper.Ports:
    return shopper.Ports(world=world, decide=decide, post=post or Posted(), clock=fixed_clock())


class FakeRuns:
    """RunStore's methods over a dict: one current run, counters added up in memory."""

    def __init__(self, config: Optional[run.RunConfig] = None):
        self.configs: dict[str, run.RunConfig] = {}
        self.current_id: Optional[str] = None
        self.recorded: list[tuple[str, Tally, datetime]] = []
        if config is not None:
            self.begin(config)

    def begin(self, config: run.RunConfig) -> None:
        if self.current_id is not None:
            raise run.AlreadyRunning(self.current_id)
        self.configs[config.runId] = config
        self.current_id = config.runId

    def current(self) -> Optional[run.RunConfig]:
        return self.configs.get(self.current_id) if self.current_id else None

    def latest(self) -> Optional[run.RunConfig]:
        return self.current() or (list(self.configs.values())[-1] if self.configs else None)

    def end(self, config: run.RunConfig) -> None:
        self.configs[config.runId] = config
        if self.current_id == config.runId:
            self.current_id = None

    def active(self, run_id: str) -> Optional[run.RunConfig]:
        return self.configs[run_id] if run_id == self.current_id else None

    def record(self, run_id: str, tally: Tally, now: datetime) -> None:
        self.recorded.append((run_id, tally, now))

    def counters(self, config: run.RunConfig, now: datetime):
        totals = Tally()
        for run_id, tally, _ in self.recorded:
            if run_id == config.runId:
                totals.add(tally)
        return totals, 0, []

