"""A simulation in one process, without queues or services: the same shopper steps as the queue
functions, run as a discrete-event simulation on a simulated clock.

Users' steps wait in a heap ordered by due time (the queues' visibility delays become
simulated seconds), so a run of 50,000 impressions takes seconds and is deterministic: the
same world, seed, options and policy give the same click sequence. Offers come from the real
offers service (`shared.offers.decide`) over in-memory ports: the catalog snapshot, profiles
kept by the real projections (`shared.projections`) from the events the shoppers post, and
in-process cold-start lists. The policy is a chooser (`shared.policy.Chooser`): the
baseline, a uniform random one, the oracle, or a learned ranker; `on_events` sees every event
(website events and offer.shown) in hub order, which is what a learner trains on.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from .. import affinity, catalog, events, offers, policy, projections
from ..affinity import Related
from ..catalog_cache import Snapshot, build_snapshot
from . import shopper
from .shopper import Behaviour, Shown, Tally, Timing
from .world import World, WorldParams

ANCHOR = datetime(2026, 1, 5, tzinfo=timezone.utc)  # the simulated clock's start (a Monday)
HEADLESS_TIMING = Timing(think_seconds=20.0, return_seconds=2 * 3600.0)
POLICIES = ("baseline", "random", "oracle")


def oracle(world: World, version: str = "oracle") -> policy.Chooser:
    """A chooser that shows the candidates with the highest true click probability."""
    def choose(context: policy.Context, candidates, n: int) -> policy.Choice:
        hour, page, user_id = context.now.hour, context.product, context.user.id
        ranked = sorted(candidates, key=lambda s: (-world.click_probability(user_id, s.offer, hour, page),
                                                   s.offer.id))
        return policy.Choice([(s, 1.0) for s in ranked[:n]], version, {"policy": "oracle", "epsilon": 0.0})
    return choose


def chooser(name: str, world: World, seed: int) -> policy.Chooser:
    """A built-in policy by name (see POLICIES)."""
    if name == "baseline":
        return policy.greedy
    if name == "random":
        return policy.uniform_random(random.Random(f"offerloop-sim:{seed}:policy"))
    if name == "oracle":
        return oracle(world)
    raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICIES)}")


@dataclass(frozen=True)
class Options:
    impressions: int
    users: int = 1000
    seed: int = 7
    window: int = 1000  # impressions per point of the CTR curve
    behaviour: Behaviour = Behaviour()
    timing: Timing = HEADLESS_TIMING
    start: datetime = ANCHOR


@dataclass(frozen=True)
class Point:
    """The CTR curve: achieved CTR, and expected CTRs (of what was shown, random, oracle) per window."""

    impressions: int  # at the end of the window
    ctr: float
    expected: float
    random: float
    oracle: float
    cumulative_ctr: float


@dataclass
class Result:
    policy: str
    options: Options
    tally: Tally
    curve: list[Point]
    sequence: list[tuple[str, int, int, str, bool]] = field(default_factory=list)  # user, session, step, offer, clicked
    simulated_seconds: float = 0.0

    @property
    def ctr(self) -> float:
        return self.tally.clicks / self.tally.impressions if self.tally.impressions else 0.0

    def rate(self, name: str) -> float:
        return getattr(self.tally, name) / self.tally.impressions if self.tally.impressions else 0.0

    def lift(self) -> float:
        """(ctr - random) / (oracle - random): 0 is random, 1 is the oracle."""
        gap = self.rate("oracle") - self.rate("random")
        return (self.ctr - self.rate("random")) / gap if gap > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "seed": self.options.seed, "users": self.options.users,
                "impressions": self.tally.impressions, "clicks": self.tally.clicks, "ctr": self.ctr,
                "expectedCtr": self.rate("expected"), "randomCtr": self.rate("random"),
                "oracleCtr": self.rate("oracle"), "liftFraction": self.lift(), "actions": self.tally.actions,
                "sessions": self.tally.sessions, "simulatedHours": self.simulated_seconds / 3600,
                "curve": [asdict(p) for p in self.curve]}


def catalog_snapshot(spec: catalog.CatalogSpec, start: datetime = ANCHOR) -> Snapshot:
    """The seeded catalog in memory, offers' windows placed around `start`'s day."""
    anchor = catalog.seeding_anchor(start)
    docs = catalog.generate(spec, anchor)
    return build_snapshot(docs.products, docs.offers, docs.users, start)


class Simulator:
    """Runs shoppers against one policy; `run` may be called again to go on where it stopped."""

    def __init__(self, world: World, snapshot: Snapshot, choose: policy.Chooser, options: Options,
                 policy_name: str = "custom",
                 on_events: Callable[[list[events.Event]], None] = lambda batch: None,
                 related: Callable[[], Optional[Related]] = lambda: None):
        self.world, self.snapshot, self.options = world, snapshot, options
        self.on_events = on_events
        self.profiles: dict[str, dict] = {}
        self.clock = options.start
        self.result = Result(policy_name, options, Tally(), [])
        self._pending: list[events.Event] = []
        self._sequence = 0
        self._order = 0
        self._window = Tally()
        self._offer_ports = offers.Ports(
            read_profile=self.profiles.get, catalog=lambda: snapshot,
            popular=lambda segment: (snapshot.fallback(segment), "in-process"),
            publish=self._pending.append, clock=lambda: self.clock, choose=choose,
            related=related, liked=lambda segment: (affinity.coldstart_list(related(), segment), "in-process"))
        self._ports = shopper.Ports(world=world, decide=self._decide, post=self._post, clock=lambda: self.clock)
        self._heap: list[tuple[float, int, shopper.Step]] = []
        run_id = f"headless-{options.seed}"
        for user_id in shopper.pick_users(list(snapshot.users), options.users, options.seed):
            start = options.timing.first_delay(shopper.rng_for(options.seed, user_id, 0, 0, "start"),
                                               options.behaviour)
            self._push(start, shopper.first_step(run_id, user_id))

    def _push(self, at: float, step: shopper.Step) -> None:
        self._order += 1
        heapq.heappush(self._heap, (at, self._order, step))

    def _post(self, batch: list[dict[str, Any]]) -> None:
        self._pending.extend(events.parse(raw, events.WEBSITE_TYPES) for raw in batch)

    def _decide(self, user_id: str, product_id: Optional[str], n: int) -> Shown:
        return Shown.of(offers.decide(user_id, product_id, n, self._offer_ports))

    def _project(self, user_id: str) -> None:
        deliveries = []
        for event in self._pending:
            self._sequence += 1
            deliveries.append(projections.Delivered("0", self._sequence, event))
        outcome = projections.project_user(self.profiles.get(user_id), user_id, deliveries)
        if outcome.profile is not None:
            self.profiles[user_id] = outcome.profile

    def run(self, impressions: Optional[int] = None,
            on_progress: Callable[[int], None] = lambda impressions: None) -> Result:
        """Go on until `impressions` more (default: the options' total) have been shown."""
        result, options = self.result, self.options
        target = result.tally.impressions + (impressions if impressions is not None else options.impressions)
        while result.tally.impressions < target and self._heap:
            at, _, step = heapq.heappop(self._heap)
            self.clock = options.start + timedelta(seconds=at)
            self._pending.clear()
            acted = shopper.act(step, options.behaviour, options.seed, self._ports)
            self._project(step.userId)
            self.on_events(list(self._pending))
            for offer_id, clicked in acted.clicks:
                result.sequence.append((step.userId, step.session, step.step, offer_id, clicked))
            result.tally.add(acted.tally)
            self._window.add(acted.tally)
            if self._window.impressions >= options.window:
                self._close_window()
            nxt, delay = shopper.schedule(acted.outcome, options.behaviour, options.timing, options.seed)
            self._push(at + delay, nxt)
            result.simulated_seconds = at
            if acted.tally.impressions:
                on_progress(acted.tally.impressions)
        return result

    def _close_window(self) -> None:
        w, total = self._window, self.result.tally
        self.result.curve.append(Point(total.impressions, w.clicks / w.impressions, w.expected / w.impressions,
                                       w.random / w.impressions, w.oracle / w.impressions,
                                       total.clicks / total.impressions))
        self._window = Tally()


def run(policy_name: str, options: Options, params: WorldParams = WorldParams(),
        spec: catalog.CatalogSpec = catalog.CatalogSpec(), snapshot: Optional[Snapshot] = None,
        on_progress: Callable[[int], None] = lambda impressions: None) -> Result:
    """One headless run of a built-in policy (see POLICIES)."""
    snapshot = snapshot or catalog_snapshot(spec, options.start)
    world = World(params, snapshot.products, snapshot.offers, snapshot.users)
    simulator = Simulator(world, snapshot, chooser(policy_name, world, options.seed), options, policy_name)
    return simulator.run(on_progress=on_progress)
