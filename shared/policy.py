"""The baseline offer policy: which offers a shopper may get, and a transparent ranking of them.

Eligibility (`why_not` names the first rule an offer fails):
  - the validity window: validFrom <= now < validTo;
  - rules.segments / rules.devices: the shopper's segment / device must be listed;
  - rules.minCategoryAffinity: the shopper's affinity for the offer's category, decayed to
    now, must reach it.
The product on screen changes relevance, never eligibility.

Score (baseline-1), each part logged with the candidate so that it can be explained:
  interest[c] = the shopper's share of affinity in category c (affinities / their sum)
                + PAGE_CATEGORY_WEIGHT if c is the category of the product on screen
  relevance   = KIND_RELEVANCE[kind] x interest[offer.category] for category-bound offers;
                FREE_SHIPPING_RELEVANCE x min(1, total interest) for free shipping (any basket
                qualifies, so it fits every shopper a little, and nobody especially)
  score       = relevance + PRODUCT_MATCH_BONUS if the offer includes the product on screen
                + POPULARITY_WEIGHT x popularity
where popularity = 1 - rank / len(list) in the segment's cold-start list (0 if unlisted).
Popularity is small enough only to break ties, and it is the whole score for a shopper
with no history (then the cold-start list's order is the ranking). The policy is
deterministic, so each chosen offer's probability is 1.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from .catalog import FREE_SHIPPING, Offer, Product, User

MODEL_VERSION = "baseline-1"
EXPLORATION = {"policy": "greedy", "epsilon": 0.0}
KIND_RELEVANCE = {"category_discount": 1.0, "product_deal": 0.9, "bundle": 0.8}
FREE_SHIPPING_RELEVANCE = 0.15
PAGE_CATEGORY_WEIGHT = 0.5
PRODUCT_MATCH_BONUS = 1.0  # at least any affinity: an offer for the very product on screen comes first
POPULARITY_WEIGHT = 0.01
DEFAULT_HALF_LIFE_HOURS = 72.0
TOP_AFFINITIES_LOGGED = 5
TOP_BRANDS_LOGGED = 8
LIKED_PRODUCTS = 20  # the shopper's product affinity: this many products, shares of their sum


@dataclass(frozen=True)
class Context:
    """What the policy knows about this request."""

    user: User
    now: datetime
    affinity: Mapping[str, float] = field(default_factory=dict)  # decayed to `now`
    product: Optional[Product] = None
    features: Mapping[str, Any] = field(default_factory=dict)  # the logged context features (learned rankers read them)

    @property
    def device(self) -> Optional[str]:
        return self.user.device


@dataclass(frozen=True)
class Scored:
    offer: Offer
    score: float
    features: dict[str, Any]


@dataclass(frozen=True)
class Ranking:
    candidates: list[Scored]  # every eligible offer, best first
    chosen: list[Scored]  # the first n of them


@dataclass(frozen=True)
class Choice:
    """Which candidates a chooser shows, each with the probability it had of being shown in its slot."""

    chosen: list[tuple[Scored, float]]
    model_version: str
    exploration: dict[str, Any]


# A chooser picks the shown offers from the ranked candidates: the baseline takes the first n;
# others (a uniform random policy, the simulator's oracle, a learned ranker) plug in here.
Chooser = Callable[[Context, Sequence[Scored], int], Choice]


def greedy(context: Context, candidates: Sequence[Scored], n: int) -> Choice:
    """The baseline's choice: the n best-scored candidates, each with probability 1."""
    return Choice([(s, 1.0) for s in candidates[:n]], MODEL_VERSION, dict(EXPLORATION))


def uniform_random(rng: random.Random, version: str = "random") -> Chooser:
    """A chooser drawing n candidates uniformly without replacement; slot i had 1 / (K - i)."""
    def choose(context: Context, candidates: Sequence[Scored], n: int) -> Choice:
        picked = rng.sample(list(candidates), min(n, len(candidates)))
        return Choice([(s, 1.0 / (len(candidates) - i)) for i, s in enumerate(picked)], version,
                      {"policy": "uniform", "epsilon": 1.0})
    return choose


def decayed(affinity: Mapping[str, float], as_of: Optional[datetime], now: datetime,
            half_life_hours: float = DEFAULT_HALF_LIFE_HOURS) -> dict[str, float]:
    """Affinities stored as of `as_of`, decayed to `now` (never grown: a future as_of counts as now)."""
    if as_of is None:
        return dict(affinity)
    hours = max((now - as_of).total_seconds() / 3600, 0.0)
    factor = math.pow(0.5, hours / half_life_hours) if half_life_hours > 0 else 1.0
    return {category: value * factor for category, value in affinity.items()}


def why_not(offer: Offer, context: Context) -> Optional[str]:
    """None when the offer is eligible in this context, else the rule it fails."""
    if not offer.is_valid_at(context.now):
        return "outside its validity window"
    if offer.segments is not None and context.user.segment not in offer.segments:
        return "not for this segment"
    if offer.devices is not None and context.device not in offer.devices:
        return "not for this device"
    if offer.min_category_affinity is not None and \
            context.affinity.get(offer.category or "", 0.0) < offer.min_category_affinity:
        return "needs more affinity for its category"
    return None


def affinity_shares(context: Context) -> dict[str, float]:
    """The shopper's category affinities as shares of their sum."""
    total = sum(v for v in context.affinity.values() if v > 0)
    return {c: v / total for c, v in context.affinity.items() if v > 0} if total > 0 else {}


def interest(context: Context) -> dict[str, float]:
    shares = affinity_shares(context)
    if context.product is not None:
        category = context.product.category
        shares[category] = shares.get(category, 0.0) + PAGE_CATEGORY_WEIGHT
    return shares


def relevance(offer: Offer, shares: Mapping[str, float]) -> float:
    if offer.kind == FREE_SHIPPING:
        return FREE_SHIPPING_RELEVANCE * min(1.0, sum(shares.values()))
    return KIND_RELEVANCE.get(offer.kind, 0.0) * shares.get(offer.category or "", 0.0)


def offer_features(offer: Offer, products: Optional[Mapping[str, Product]] = None,
                   median_price: Optional[Mapping[str, float]] = None) -> dict[str, Any]:
    """The offer's own features (the same in every decision). With the catalog's products: the
    brands of the offer's products, and their mean price relative to the category's median."""
    features: dict[str, Any] = {"kind": offer.kind}
    if offer.category:
        features["category"] = offer.category
    if offer.discount_percent is not None:
        features["discountPercent"] = offer.discount_percent
    if offer.min_basket is not None:
        features["minBasket"] = offer.min_basket
    if offer.product_ids:
        features["products"] = len(offer.product_ids)
    if offer.segments or offer.devices:
        features["targeted"] = True
    items = [products[i] for i in offer.product_ids if i in products] if products else []
    if items:
        features["brands"] = sorted({p.brand for p in items if p.brand})
        median = (median_price or {}).get(items[0].category)
        if median:
            features["priceIndex"] = round(sum(p.price for p in items) / len(items) / median, 4)
    return features


def brand_shares(recent_views: Iterable[Mapping[str, Any]], products: Mapping[str, Product]) -> dict[str, float]:
    """The brands of the shopper's recently viewed products, as shares of those views (the top few)."""
    counts: dict[str, int] = {}
    total = 0
    for view in recent_views:
        product = products.get(view.get("productId", ""))
        if product is not None and product.brand:
            counts[product.brand] = counts.get(product.brand, 0) + 1
            total += 1
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_BRANDS_LOGGED]
    return {brand: round(count / total, 4) for brand, count in top}


def liked_shares(liked: Mapping[str, float], products: Mapping[str, Product]) -> dict[str, Any]:
    """The shopper's product affinity summed by category and by brand: the `affinity` context features."""
    categories: dict[str, float] = {}
    brands: dict[str, float] = {}
    for product_id, share in liked.items():
        product = products.get(product_id)
        if product is None:
            continue
        categories[product.category] = categories.get(product.category, 0.0) + share
        if product.brand:
            brands[product.brand] = brands.get(product.brand, 0.0) + share
    out: dict[str, Any] = {}
    for name, shares, keep in (("categories", categories, TOP_AFFINITIES_LOGGED), ("brands", brands, TOP_BRANDS_LOGGED)):
        top = sorted(shares.items(), key=lambda item: (-item[1], item[0]))[:keep]
        if top:
            out[name] = {k: round(v, 4) for k, v in top}
    return out


def liked_match(offer: Offer, liked: Mapping[str, float], liked_categories: Mapping[str, float]) -> dict[str, float]:
    """How much of the shopper's product affinity an offer covers: its own products' shares, and its category's."""
    match: dict[str, float] = {}
    products = sum(liked.get(p, 0.0) for p in offer.product_ids)
    if products > 0:
        match["products"] = round(products, 4)
    category = liked_categories.get(offer.category or "", 0.0) if offer.kind != FREE_SHIPPING else 0.0
    if category > 0:
        match["category"] = round(category, 4)
    return match


def context_features(context: Context, history: Mapping[str, Any],
                     brands: Optional[Mapping[str, float]] = None,
                     liked: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The context as the decision saw it, namespaced like Personalizer's context features."""
    user = context.user
    features: dict[str, Any] = {
        "user": {k: v for k, v in (("segment", user.segment), ("region", user.region),
                                   ("device", user.device)) if v is not None},
        "time": {"hour": context.now.hour, "weekday": context.now.weekday()},
        "history": dict(history),
    }
    top = sorted(affinity_shares(context).items(), key=lambda item: (-item[1], item[0]))[:TOP_AFFINITIES_LOGGED]
    if top:
        features["interest"] = {c: round(v, 4) for c, v in top}
    if brands:
        features["brands"] = dict(brands)
    if liked:
        features["affinity"] = dict(liked)
    if context.product is not None:
        features["page"] = {"productId": context.product.id, "category": context.product.category,
                            "price": context.product.price}
    return features


def rank(offers: Iterable[Offer], context: Context, popular: Sequence[str], n: int,
         static_features: Optional[Mapping[str, dict[str, Any]]] = None,
         shares: Optional[Mapping[str, float]] = None,
         shown: Optional[Mapping[str, int]] = None, clicked: Optional[Mapping[str, int]] = None,
         liked: Optional[Mapping[str, float]] = None, liked_categories: Optional[Mapping[str, float]] = None
         ) -> Ranking:
    """Score every eligible offer and choose the best n; ties go to the more popular, then by id.

    `shown`/`clicked` are the shopper's own counts per offer (from the profile); each candidate
    the shopper has seen before carries them as its `history` features. `liked` is the shopper's
    product affinity (product -> share) and `liked_categories` the same summed by category; a
    candidate that covers some of it carries that as its `affinity` features. Neither is used by
    the baseline's score, but by learned rankers."""
    shown, clicked = shown or {}, clicked or {}
    shares = interest(context) if shares is None else shares
    position = {offer_id: i for i, offer_id in enumerate(popular)}
    listed = len(popular)
    product_id = context.product.id if context.product is not None else None
    scored: list[tuple[tuple, Scored]] = []
    for offer in offers:
        if why_not(offer, context) is not None:
            continue
        rank_ = position.get(offer.id)
        popularity = 1 - rank_ / listed if rank_ is not None else 0.0
        fit = relevance(offer, shares)
        match = product_id is not None and product_id in offer.product_ids
        score = fit + (PRODUCT_MATCH_BONUS if match else 0.0) + POPULARITY_WEIGHT * popularity
        features = {
            "offer": static_features[offer.id] if static_features and offer.id in static_features
            else offer_features(offer),
            "baseline": {"relevance": round(fit, 4), "productMatch": match,
                         "popularity": round(popularity, 4), "score": round(score, 4)},
        }
        if shown.get(offer.id):
            features["history"] = {"shown": shown[offer.id], "clicked": clicked.get(offer.id, 0)}
        if liked:
            match_ = liked_match(offer, liked, liked_categories or {})
            if match_:
                features["affinity"] = match_
        order = (-score, rank_ if rank_ is not None else listed, offer.id)
        scored.append((order, Scored(offer, score, features)))
    scored.sort(key=lambda item: item[0])
    candidates = [s for _, s in scored]
    return Ranking(candidates, candidates[:n])
