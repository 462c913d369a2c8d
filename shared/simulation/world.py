"""The simulated shoppers' ground truth: hidden preferences and the true click probability of an offer.

Every simulated user has hidden preferences, drawn deterministically from the world's seed,
the user's id and the user's seeded attributes (segment, region, device), so the attributes
are informative but not perfect:

  category share s[c]   Dirichlet(concentration x K x (fidelity x segment prior + regional tilt
                        + (1 - fidelity) / K)); pref[c] = K x s[c] (1 = an average category)
  favourite brands      one or two brands in each of the user's three most preferred categories
  price sensitivity ps  the segment's mean (SEGMENT_PRICE_SENSITIVITY) + N(0, 0.15), in [0, 1]
  discount sensitivity  0.5 x ps + 0.5 x U(0, 1)
  peak hour h*          the segment's (SEGMENT_PEAK_HOUR) + N(0, 2), UTC

The true click probability of offer o (category c, kind k) shown to user u on a page showing
product q at UTC hour h, on the user's device d, is sigmoid(x) with

  x = logit(base_rate)
    + category_weight x fit[k] x log(pref[c])                          category-bound offers
    + discount_weight x ds x (discount / 20 - 1) x sigmoid(log pref[c])  discounts count where u cares
    + brand_weight x (share of o's products in u's favourite brands)    product deals and bundles
    + price_weight x (0.5 - ps) x log(mean price of o's products / the category's median price)
    + page_weight x (0.5 if c is q's category, + 0.5 more if o includes q)
    + free shipping: shipping_weight x (2 ps - 0.5) - 0.5 x ps x log(minBasket / 25) instead of
      the category terms
    + device_weight x DEVICE_KIND[d][k]
    + hour_weight x cos(2 pi (h - h*) / 24) x (1.5 for product deals, else 1)

so the probability is non-linear (logistic of a log-preference) with interactions (discount x
preference, price x sensitivity, hour x kind, page x category). `expected` gives, for the
candidates of one decision, the oracle's and a uniformly random policy's expected clicks.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable, Mapping, Optional, Sequence

from ..catalog import BUNDLE, CATEGORY_DISCOUNT, FREE_SHIPPING, PRODUCT_DEAL, SEGMENTS, Offer, Product, User

# Attributes -> preferences: what the seeded user documents tell about the hidden truth.
SEGMENT_PRICE_SENSITIVITY = {"bargain_hunter": 0.85, "student": 0.7, "family": 0.6, "professional": 0.35,
                             "premium": 0.15}
SEGMENT_PEAK_HOUR = {"bargain_hunter": 12, "student": 22, "family": 19, "professional": 20, "premium": 14}
KIND_FIT = {CATEGORY_DISCOUNT: 1.0, PRODUCT_DEAL: 1.1, BUNDLE: 0.9}
DEVICE_KIND = {  # how a device favours kinds of offers (small screens like single-product deals)
    "mobile": {PRODUCT_DEAL: 0.4, BUNDLE: -0.4, CATEGORY_DISCOUNT: 0.0, FREE_SHIPPING: 0.1},
    "desktop": {PRODUCT_DEAL: -0.1, BUNDLE: 0.4, CATEGORY_DISCOUNT: 0.1, FREE_SHIPPING: -0.1},
    "tablet": {PRODUCT_DEAL: 0.0, BUNDLE: 0.1, CATEGORY_DISCOUNT: 0.3, FREE_SHIPPING: 0.0},
}
MIN_PREFERENCE = 1e-3  # pref[c] floor, so log(pref) stays finite
FAVOURITE_CATEGORIES = 3


@dataclass(frozen=True)
class WorldParams:
    """The world's knobs; each is an option of the simulation API and of `python -m ops simulate`."""

    seed: int = 7
    base_rate: float = 0.025  # click probability of an average offer for an average shopper
    category_weight: float = 1.0
    discount_weight: float = 0.8
    brand_weight: float = 0.8
    price_weight: float = 0.6
    page_weight: float = 0.8
    shipping_weight: float = 0.8
    device_weight: float = 1.0
    hour_weight: float = 0.3
    concentration: float = 0.3  # small: shoppers focus on few categories
    fidelity: float = 0.6  # how much of a shopper's taste their segment explains (1: all of it)

    def __post_init__(self) -> None:
        # From a request body: a weight that is not a finite number would fail every action, not the start.
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed must be an integer")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number")
        if not 0 < self.base_rate < 1:
            raise ValueError("base_rate must be between 0 and 1")
        if self.concentration <= 0:
            raise ValueError("concentration must be positive")
        if not 0 <= self.fidelity <= 1:
            raise ValueError("fidelity must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "WorldParams":
        known = {f.name for f in fields(cls)}
        unknown = set(values or ()) - known
        if unknown:
            raise ValueError(f"unknown world parameters: {', '.join(sorted(unknown))}")
        return cls(**dict(values or {}))


@dataclass(frozen=True)
class Taste:
    """One user's hidden preferences."""

    preference: dict[str, float]  # category -> K x share (mean 1)
    brands: frozenset[str]
    price_sensitivity: float
    discount_sensitivity: float
    peak_hour: float


@dataclass(frozen=True)
class Outlook:
    """What a decision was worth, by the world's true probabilities."""

    probabilities: dict[str, float]  # candidate offer id -> true click probability
    oracle: list[str]  # candidate ids, best first

    def random_ctr(self) -> float:
        """Expected CTR of a uniformly random choice among the candidates."""
        return sum(self.probabilities.values()) / len(self.probabilities) if self.probabilities else 0.0

    def oracle_ctr(self, slot: int = 0) -> float:
        """Expected CTR of the oracle's choice for a slot (the slot-th best candidate)."""
        return self.probabilities[self.oracle[slot]] if slot < len(self.oracle) else 0.0


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def _dirichlet(rng: random.Random, alphas: Sequence[float]) -> list[float]:
    draws = [rng.gammavariate(max(a, 1e-3), 1.0) for a in alphas]
    total = sum(draws) or 1.0
    return [d / total for d in draws]


class World:
    """The ground truth over one catalog (products, offers, users) for one set of parameters."""

    def __init__(self, params: WorldParams, products: Mapping[str, Product], offers: Iterable[Offer],
                 users: Mapping[str, User]):
        self.params = params
        self.products = dict(products)
        self.offers = {o.id: o for o in offers}
        self.users = dict(users)
        self.categories = sorted({p.category for p in self.products.values()})
        self.by_category: dict[str, list[Product]] = {c: [] for c in self.categories}
        for product in sorted(self.products.values(), key=lambda p: p.id):
            self.by_category[product.category].append(product)
        self.brands = {c: sorted({p.brand for p in ps}) for c, ps in self.by_category.items()}
        self.median_price = {c: _median([p.price for p in ps]) for c, ps in self.by_category.items()}
        rng = self._rng("segments")
        k = len(self.categories)
        self.segment_prior = {s: dict(zip(self.categories, _dirichlet(rng, [0.6] * k))) for s in SEGMENTS}
        self.region_tilt: dict[str, set[str]] = {}
        self._intercept = logit(params.base_rate)
        self._tastes: dict[str, Taste] = {}

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(["offerloop-world", str(self.params.seed), *map(str, parts)]))

    def _tilt(self, region: Optional[str]) -> set[str]:
        if region not in self.region_tilt:
            rng = self._rng("region", region)
            self.region_tilt[region] = set(rng.sample(self.categories, min(2, len(self.categories))))
        return self.region_tilt[region]

    def taste(self, user_id: str) -> Taste:
        """The user's hidden preferences (computed once per user and world)."""
        taste = self._tastes.get(user_id)
        if taste is None:
            taste = self._tastes[user_id] = self._draw_taste(self.users.get(user_id) or User(user_id))
        return taste

    def _draw_taste(self, user: User) -> Taste:
        p = self.params
        rng = self._rng("user", user.id)
        k = len(self.categories)
        prior = self.segment_prior.get(user.segment or "", {c: 1 / k for c in self.categories})
        tilt = self._tilt(user.region)
        weights = [p.fidelity * prior[c] + (1 - p.fidelity) / k + (0.1 / k if c in tilt else 0.0)
                   for c in self.categories]
        total = sum(weights)
        shares = _dirichlet(rng, [p.concentration * k * w / total for w in weights])
        preference = {c: max(k * s, MIN_PREFERENCE) for c, s in zip(self.categories, shares)}
        favourites = sorted(self.categories, key=lambda c: (-preference[c], c))[:FAVOURITE_CATEGORIES]
        brands = set()
        for category in favourites:
            pool = self.brands.get(category) or []
            brands.update(rng.sample(pool, min(len(pool), rng.choice((1, 2)))))
        ps = min(1.0, max(0.0, SEGMENT_PRICE_SENSITIVITY.get(user.segment or "", 0.5) + rng.gauss(0, 0.15)))
        ds = 0.5 * ps + 0.5 * rng.random()
        peak = (SEGMENT_PEAK_HOUR.get(user.segment or "", 18) + rng.gauss(0, 2)) % 24
        return Taste(preference, frozenset(brands), ps, ds, peak)

    def click_probability(self, user_id: str, offer: Offer, hour: int, page: Optional[Product] = None,
                          device: Optional[str] = None) -> float:
        """The true probability that this user clicks this offer in this context (see the module doc)."""
        p = self.params
        taste = self.taste(user_id)
        x = self._intercept
        if offer.kind == FREE_SHIPPING:
            basket = float(offer.min_basket or 50)
            x += p.shipping_weight * (2 * taste.price_sensitivity - 0.5) \
                - 0.5 * taste.price_sensitivity * math.log(basket / 25)
        else:
            category = offer.category or ""
            preference = taste.preference.get(category, MIN_PREFERENCE)
            log_pref = math.log(preference)
            x += p.category_weight * KIND_FIT.get(offer.kind, 1.0) * log_pref
            discount = float(offer.discount_percent or 0)
            x += p.discount_weight * taste.discount_sensitivity * (discount / 20 - 1) * sigmoid(log_pref)
            items = [self.products[i] for i in offer.product_ids if i in self.products]
            if items:
                x += p.brand_weight * sum(i.brand in taste.brands for i in items) / len(items)
                median = self.median_price.get(category) or 1.0
                price = sum(i.price for i in items) / len(items)
                x += p.price_weight * (0.5 - taste.price_sensitivity) * math.log(max(price, 0.01) / median)
            if page is not None and page.category == category:
                x += p.page_weight * (1.0 if page.id in offer.product_ids else 0.5)
        user = self.users.get(user_id)
        device = device or (user.device if user else None)
        x += p.device_weight * DEVICE_KIND.get(device or "", {}).get(offer.kind, 0.0)
        phase = math.cos(2 * math.pi * (hour - taste.peak_hour) / 24)
        x += p.hour_weight * phase * (1.5 if offer.kind == PRODUCT_DEAL else 1.0)
        return sigmoid(x)

    def outlook(self, user_id: str, candidates: Iterable[str], hour: int, page: Optional[Product] = None
                ) -> Outlook:
        """True click probabilities of one decision's candidates, and the oracle's order of them."""
        probabilities = {o: self.click_probability(user_id, self.offers[o], hour, page)
                         for o in candidates if o in self.offers}
        oracle = sorted(probabilities, key=lambda o: (-probabilities[o], o))
        return Outlook(probabilities, oracle)


def _median(values: list[float]) -> float:
    if not values:
        return 1.0
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


_worlds: dict[tuple[WorldParams, int], tuple[Any, World]] = {}
_WORLDS_KEPT = 4


def for_snapshot(params: WorldParams, snapshot: Any) -> World:
    """One World per parameters and catalog snapshot (`products`, `offers`, `users`). A refreshed
    snapshot of the same catalog gives a world with the same tastes: they depend only on the
    seed, the ids and the attributes."""
    key = (params, id(snapshot))
    kept = _worlds.get(key)
    if kept is not None and kept[0] is snapshot:
        return kept[1]
    world = World(params, snapshot.products, snapshot.offers, snapshot.users)
    if len(_worlds) >= _WORLDS_KEPT:
        _worlds.pop(next(iter(_worlds)))
    _worlds[key] = (snapshot, world)
    return world

