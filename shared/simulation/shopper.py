"""A simulated shopper's session, one action at a time: the same steps run on the Storage queues
(functions/simulation.py) and headless in one process (shared/simulation/headless.py).

A user's state travels in a `Step` message. `act` performs it:
  1. a "click" step first follows the offer clicked in the previous step: it posts
     offer.clicked and lands on the offer's product (or a product of its category);
     a "view" step walks on: another product of the same category with probability
     `stay_in_category`, else a product of a category drawn by the user's hidden preferences
     (favourite brands three times as likely);
  2. it posts product.viewed, then asks the offers service for `slots` offers for that page;
  3. the user clicks the shown offers by their true probabilities (`World.click_probability`),
     following at most one of them (the first clicked, in slot order);
  4. sometimes the product goes into the cart (cart.added), and sometimes the cart is bought
     (product.purchased, one event per item).
Every random draw of a step comes from a generator seeded by (run seed, user, session, step),
so the same seed and the same choices of offers give the same clicks, whatever the order in
which users' steps run. Event ids are derived the same way, so a retried step re-posts the
same events and ingest recognises the repeats.

`schedule` then decides what comes next: a click is followed up `think x 0.5` later; otherwise
the session goes on with probability `continue_session` (at most `max_steps` steps) after a
think time, or ends and the user comes back for a new session after a return time. Both
delays are exponential with the means in `Timing`.
"""
from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .. import offers
from ..catalog import FREE_SHIPPING, Product
from .world import World

SOURCE = "/offerloop/simulator"
EVENT_NAMESPACE = uuid.UUID("5f0c3f52-8f0e-4a5c-9d8e-0ff3e1d0a1b7")
MAX_CART = 50
MAX_DELAY_SECONDS = 24 * 3600.0  # a returning user comes back within a day (queue messages live 7 days)
FAVOURITE_BRAND_WEIGHT = 3.0
TYPICAL_CTR = 0.12  # only for sizing think times to a rate


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ClickRef(_Message):
    offerId: str = Field(min_length=1, max_length=128)
    decisionId: str = Field(min_length=1, max_length=128)


class _UserStep(_Message):
    """Which run, user, session and step a message is about (both queues' messages start so)."""

    v: Literal[1] = 1
    runId: str = Field(min_length=1, max_length=64)
    userId: str = Field(min_length=1, max_length=128)
    session: int = Field(ge=0)
    step: int = Field(ge=0)


class Step(_UserStep):
    """The state message on the actions queue: what a user does next."""

    action: Literal["view", "click"] = "view"
    productId: Optional[str] = None  # the page the user is on (None at the start of a session)
    click: Optional[ClickRef] = None  # the offer to follow, on a "click" step
    cart: list[str] = Field(default_factory=list, max_length=MAX_CART)


class Outcome(_UserStep):
    """The response message on the responses queue: what the user did."""

    productId: str
    cart: list[str] = Field(default_factory=list, max_length=MAX_CART)
    clicked: Optional[ClickRef] = None
    purchased: bool = False
    impressions: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class Behaviour:
    """How shoppers browse; part of a run's configuration."""

    slots: int = 1  # offers asked for on each page
    stay_in_category: float = 0.6
    continue_session: float = 0.8
    max_steps: int = 20
    cart_rate: float = 0.08  # for a page in an average category; more in favourite ones
    click_cart_rate: float = 0.25  # after following an offer
    purchase_rate: float = 0.3  # per step, when the cart holds something


@dataclass(frozen=True)
class Timing:
    """Mean delays in seconds; zero means at once (as fast as the stack goes)."""

    think_seconds: float = 5.0
    return_seconds: float = 60.0

    def session_end_share(self, behaviour: Behaviour) -> float:
        # Per step: the session ends unless the user clicked (a click always goes on; about one
        # step in eight, with a fair policy) or stays; a few sessions end at max_steps.
        return (1 - behaviour.continue_session) * (1 - TYPICAL_CTR) + 1 / behaviour.max_steps * 0.05

    def first_delay(self, rng: random.Random, behaviour: Behaviour) -> float:
        """When a user's first step is due, as if the run had long been going (its steady state):
        the user is waiting to come back with the share of time users spend so, else thinking;
        the delays are exponential, so what is left of either wait has the same distribution."""
        if self.think_seconds <= 0:
            return 0.0
        end = self.session_end_share(behaviour)
        away = end * self.return_seconds / (end * self.return_seconds + (1 - end) * self.think_seconds)
        return _delay(rng, self.return_seconds if rng.random() < away else self.think_seconds)

    @classmethod
    def for_rate(cls, users: int, rate: float, behaviour: Behaviour, return_factor: float = 10.0) -> "Timing":
        """Think and return times that make `users` users take about `rate` actions per second."""
        if rate <= 0:
            return cls(0.0, 0.0)
        end = cls().session_end_share(behaviour)
        cycle = users / rate  # the mean time between two actions of one user
        think = cycle / (1 + (return_factor - 1) * end)
        return cls(think, think * return_factor)


@dataclass(frozen=True)
class Shown:
    """The offers service's answer, as the shopper sees it."""

    decision_id: str
    candidates: Sequence[str]  # every eligible offer id
    chosen: Sequence[tuple[str, float]]  # (offer id, probability it was shown in its slot), by slot
    model_version: str
    hour: int  # UTC hour of the decision

    @classmethod
    def of(cls, decision: "offers.Decision") -> "Shown":
        data = decision.event.data
        return cls(decision.event_id, [c.offerId for c in data.candidates],
                   [(o.scored.offer.id, o.probability) for o in decision.offers], decision.model_version,
                   decision.event.time.astimezone(timezone.utc).hour)


@dataclass
class Tally:
    """What a run's counters add up; `random` and `oracle` are expected clicks for the same impressions."""

    actions: int = 0
    impressions: int = 0
    clicks: int = 0
    expected: float = 0.0  # the true click probabilities of what was shown
    random: float = 0.0
    oracle: float = 0.0
    sessions: int = 0

    def add(self, other: "Tally") -> None:
        for name in ("actions", "impressions", "clicks", "expected", "random", "oracle", "sessions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Acted:
    outcome: Outcome
    tally: Tally
    events: list[dict[str, Any]]  # the website events posted, in order
    shown: Optional[Shown]
    clicks: list[tuple[str, bool]] = field(default_factory=list)  # (offer id, clicked) per shown offer


@dataclass(frozen=True)
class Ports:
    world: World
    decide: Callable[[str, Optional[str], int], Shown]  # (user, product on screen, n) -> the offers
    post: Callable[[list[dict[str, Any]]], None]  # website events, through the events path
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def rng_for(seed: int, user_id: str, session: int, step: int, purpose: str) -> random.Random:
    return random.Random(f"offerloop-sim:{seed}:{user_id}:{session}:{step}:{purpose}")


def _event(step: Step, kind: str, index: int, event_type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    name = f"{step.runId}:{step.userId}:{step.session}:{step.step}:{kind}:{index}"
    return {"specversion": "1.0", "id": str(uuid.uuid5(EVENT_NAMESPACE, name)), "source": SOURCE,
            "type": f"offerloop.{event_type}", "subject": step.userId,
            "time": now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), "data": data}


def _weighted(rng: random.Random, items: Sequence[Any], weights: Sequence[float]) -> Any:
    return rng.choices(items, weights)[0]


def _product_in(world: World, rng: random.Random, category: str, user_id: str) -> Optional[Product]:
    pool = world.by_category.get(category) or []
    if not pool:
        return None
    brands = world.taste(user_id).brands
    return _weighted(rng, pool, [FAVOURITE_BRAND_WEIGHT if p.brand in brands else 1.0 for p in pool])


def next_product(world: World, step: Step, behaviour: Behaviour, rng: random.Random) -> Product:
    """Where the browsing walk goes: the offer followed, the same category, or a preferred one."""
    current = world.products.get(step.productId or "")
    if step.action == "click" and step.click is not None:
        offer = world.offers.get(step.click.offerId)
        if offer is not None:
            listed = [world.products[i] for i in offer.product_ids if i in world.products]
            if listed:
                return rng.choice(listed)
            if offer.kind != FREE_SHIPPING and offer.category:
                product = _product_in(world, rng, offer.category, step.userId)
                if product is not None:
                    return product
    if current is not None and rng.random() < behaviour.stay_in_category:
        category = current.category
    else:
        preference = world.taste(step.userId).preference
        categories = [c for c in world.categories if world.by_category[c]]
        category = _weighted(rng, categories, [preference.get(c, 0.0) for c in categories])
    product = _product_in(world, rng, category, step.userId)
    assert product is not None  # categories without products were left out above
    return product


def act(step: Step, behaviour: Behaviour, seed: int, ports: Ports) -> Acted:
    """Perform one step of a user's session (see the module doc)."""
    world = ports.world
    rng = rng_for(seed, step.userId, step.session, step.step, "act")
    now = ports.clock()
    tally = Tally(actions=1, sessions=1 if step.step == 0 else 0)
    posted: list[dict[str, Any]] = []
    before: list[dict[str, Any]] = []
    if step.action == "click" and step.click is not None:
        before.append(_event(step, "click", 0, "offer.clicked", step.click.model_dump(), now))
    product = next_product(world, step, behaviour, rng)
    user = world.users.get(step.userId)
    view = {"productId": product.id, "category": product.category, "price": product.price}
    if user is not None and user.device:
        view["device"] = user.device
    before.append(_event(step, "view", 0, "product.viewed", view, now))
    ports.post(before)
    posted += before

    shown = ports.decide(step.userId, product.id, behaviour.slots)
    clicked: Optional[ClickRef] = None
    clicks: list[tuple[str, bool]] = []
    if shown.chosen:
        outlook = world.outlook(step.userId, shown.candidates, shown.hour, product)
        draws = rng_for(seed, step.userId, step.session, step.step, "click")
        random_ctr = outlook.random_ctr()
        for slot, (offer_id, _probability) in enumerate(shown.chosen):
            p = outlook.probabilities.get(offer_id)
            if p is None:  # not an offer of this catalog: nobody clicks it
                p = 0.0
            hit = draws.random() < p
            clicks.append((offer_id, hit))
            tally.impressions += 1
            tally.clicks += hit
            tally.expected += p
            tally.random += random_ctr
            tally.oracle += outlook.oracle_ctr(slot)
            if hit and clicked is None:
                clicked = ClickRef(offerId=offer_id, decisionId=shown.decision_id)

    cart = list(step.cart)
    after: list[dict[str, Any]] = []
    taste = world.taste(step.userId)
    liking = 1 - math.exp(-taste.preference.get(product.category, 0.0))
    cart_rate = behaviour.click_cart_rate if step.action == "click" else behaviour.cart_rate * 2 * liking
    if len(cart) < MAX_CART and rng.random() < cart_rate:
        cart.append(product.id)
        after.append(_event(step, "cart", 0, "cart.added",
                            {"productId": product.id, "category": product.category, "price": product.price,
                             "quantity": 1}, now))
    purchased = False
    if cart and rng.random() < behaviour.purchase_rate:
        order = str(uuid.uuid5(EVENT_NAMESPACE, f"{step.runId}:{step.userId}:{step.session}:{step.step}:order"))
        for index, product_id in enumerate(cart):
            item = world.products.get(product_id)
            if item is None:
                continue
            after.append(_event(step, "purchase", index, "product.purchased",
                                {"productId": item.id, "category": item.category, "price": item.price,
                                 "quantity": 1, "orderId": order}, now))
        cart, purchased = [], True
    if after:
        ports.post(after)
        posted += after
    outcome = Outcome(runId=step.runId, userId=step.userId, session=step.session, step=step.step,
                      productId=product.id, cart=cart, clicked=clicked, purchased=purchased,
                      impressions=len(shown.chosen))
    return Acted(outcome, tally, posted, shown, clicks)


def _delay(rng: random.Random, mean: float) -> float:
    return min(rng.expovariate(1 / mean), MAX_DELAY_SECONDS) if mean > 0 else 0.0


def schedule(outcome: Outcome, behaviour: Behaviour, timing: Timing, seed: int) -> tuple[Step, float]:
    """The user's next step and how many seconds until it (see the module doc)."""
    rng = rng_for(seed, outcome.userId, outcome.session, outcome.step, "schedule")
    common = {"runId": outcome.runId, "userId": outcome.userId}
    if outcome.clicked is not None:
        return Step(**common, session=outcome.session, step=outcome.step + 1, action="click",
                    productId=outcome.productId, click=outcome.clicked, cart=outcome.cart), \
            _delay(rng, timing.think_seconds * 0.5)
    if outcome.step + 1 < behaviour.max_steps and rng.random() < behaviour.continue_session:
        return Step(**common, session=outcome.session, step=outcome.step + 1, productId=outcome.productId,
                    cart=outcome.cart), _delay(rng, timing.think_seconds)
    # The session ends (an unbought cart is abandoned); the user comes back later.
    return Step(**common, session=outcome.session + 1, step=0), _delay(rng, timing.return_seconds)


def first_step(run_id: str, user_id: str) -> Step:
    return Step(runId=run_id, userId=user_id, session=0, step=0)


def pick_users(user_ids: Sequence[str], count: int, seed: int) -> list[str]:
    """`count` distinct users of the catalog, the same for the same seed."""
    ordered = sorted(user_ids)
    return random.Random(f"offerloop-sim:{seed}:users").sample(ordered, min(count, len(ordered)))
