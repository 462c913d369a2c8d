"""The retail catalog: products, offers and users, and a seeded synthetic generator of them.

Documents (Cosmos containers `products`, `offers`, `users`, each partitioned by /id):
  product {id, name, category, brand, price}
  offer   {id, title, kind, category?, productIds?, discountPercent?, minBasket?,
           validFrom, validTo, rules: {segments?, devices?, minCategoryAffinity?}}
  user    {id, segment, region, device, signupDate}

`generate(spec, anchor)` is deterministic: the same spec and anchor give the same documents.
Products and users depend on the seed only; offers' validity windows are placed relative to
`anchor` (the seeding day), staggered so that they never all expire: about a third are
always on, most run from some days ago to some weeks ahead, a few start in the coming days.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Optional

CATEGORY_DISCOUNT = "category_discount"
PRODUCT_DEAL = "product_deal"
FREE_SHIPPING = "free_shipping"
BUNDLE = "bundle"
KINDS = (CATEGORY_DISCOUNT, PRODUCT_DEAL, FREE_SHIPPING, BUNDLE)
KIND_SHARES = (0.3, 0.3, 0.2, 0.2)  # of the offers after one discount per category

# category -> (median price, product nouns). More categories than these get numbered names.
CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "electronics": (120, ("Headphones", "Speaker", "Camera", "Charger", "Smartwatch")),
    "computers": (450, ("Laptop", "Monitor", "Keyboard", "Mouse", "Router")),
    "phones": (380, ("Phone", "Phone Case", "Screen Guard", "Power Bank")),
    "home": (60, ("Lamp", "Rug", "Curtain", "Cushion", "Mirror")),
    "kitchen": (45, ("Pan", "Knife Set", "Blender", "Kettle", "Mug Set")),
    "garden": (35, ("Hose", "Planter", "Shears", "Seed Kit", "Lantern")),
    "toys": (25, ("Puzzle", "Building Set", "Plush", "Board Game", "Kite")),
    "books": (15, ("Novel", "Cookbook", "Atlas", "Biography", "Comic")),
    "sports": (55, ("Yoga Mat", "Dumbbell", "Racket", "Ball", "Jump Rope")),
    "outdoors": (90, ("Tent", "Backpack", "Sleeping Bag", "Flashlight", "Water Bottle")),
    "fashion": (40, ("Jacket", "Shirt", "Scarf", "Dress", "Hat")),
    "shoes": (75, ("Sneakers", "Boots", "Sandals", "Loafers", "Slippers")),
    "beauty": (20, ("Lipstick", "Serum", "Shampoo", "Perfume", "Face Mask")),
    "health": (25, ("Vitamins", "Thermometer", "First Aid Kit", "Massager")),
    "grocery": (8, ("Coffee", "Tea", "Olive Oil", "Chocolate", "Pasta")),
    "pets": (22, ("Dog Bed", "Cat Tree", "Leash", "Pet Food", "Aquarium")),
    "baby": (30, ("Stroller", "Bottle Set", "Baby Monitor", "Onesie", "Rattle")),
    "office": (18, ("Notebook", "Pen Set", "Desk Lamp", "Stapler", "Organizer")),
    "automotive": (50, ("Car Vacuum", "Dash Cam", "Seat Cover", "Jump Starter")),
    "games": (45, ("Video Game", "Controller", "Gaming Headset", "Card Game")),
}
ADJECTIVES = ("Classic", "Pro", "Eco", "Compact", "Deluxe", "Smart", "Ultra", "Essential", "Premium", "Lite")
SYLLABLES = ("nor", "vik", "lu", "mo", "ra", "zen", "tal", "ka", "bel", "sol", "dri", "fen",
             "ox", "ter", "va", "quin", "mar", "lo", "sen", "tri")

SEGMENTS = ("bargain_hunter", "family", "premium", "student", "professional")
SEGMENT_SHARES = (0.3, 0.25, 0.15, 0.15, 0.15)
REGIONS = ("eu-west", "eu-north", "us-east", "us-west", "apac")
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_SHARES = (0.55, 0.35, 0.10)
SIGNUP_FROM = date(2023, 1, 1)
SIGNUP_DAYS = 3 * 365

MIN_BASKETS = (25, 35, 50, 75, 100)
ALWAYS_ON_YEARS = 10


@dataclass(frozen=True)
class CatalogSpec:
    """What to generate; every size is an option of `python -m ops seed`."""

    seed: int = 42
    products: int = 1000
    offers: int = 100
    users: int = 10_000
    categories: int = 20


@dataclass(frozen=True)
class Catalog:
    products: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    users: list[dict[str, Any]]


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    category: str
    brand: str
    price: float

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Product":
        return cls(doc["id"], doc.get("name", doc["id"]), doc["category"], doc.get("brand", ""),
                   float(doc.get("price", 0)))


@dataclass(frozen=True)
class User:
    id: str
    segment: Optional[str] = None
    region: Optional[str] = None
    device: Optional[str] = None
    signup_date: Optional[str] = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "User":
        return cls(doc["id"], doc.get("segment"), doc.get("region"), doc.get("device"), doc.get("signupDate"))


@dataclass(frozen=True)
class Offer:
    """An offer with its window parsed and its rules unpacked, as the policy uses it."""

    id: str
    title: str
    kind: str
    valid_from: datetime
    valid_to: datetime
    category: Optional[str] = None
    product_ids: tuple[str, ...] = ()
    discount_percent: Optional[float] = None
    min_basket: Optional[float] = None
    segments: Optional[frozenset[str]] = None
    devices: Optional[frozenset[str]] = None
    min_category_affinity: Optional[float] = None
    doc: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "Offer":
        rules = doc.get("rules") or {}
        return cls(
            id=doc["id"], title=doc.get("title", doc["id"]), kind=doc["kind"],
            valid_from=parse_time(doc["validFrom"]), valid_to=parse_time(doc["validTo"]),
            category=doc.get("category"), product_ids=tuple(doc.get("productIds") or ()),
            discount_percent=doc.get("discountPercent"), min_basket=doc.get("minBasket"),
            segments=frozenset(rules["segments"]) if rules.get("segments") else None,
            devices=frozenset(rules["devices"]) if rules.get("devices") else None,
            min_category_affinity=rules.get("minCategoryAffinity"), doc=doc,
        )

    def is_valid_at(self, now: datetime) -> bool:
        return self.valid_from <= now < self.valid_to


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seeding_anchor(now: datetime) -> datetime:
    """The start of `now`'s UTC day: seeding again on the same day gives the same documents."""
    return now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def category_names(count: int) -> list[str]:
    names = list(CATEGORIES)[:count]
    return names + [f"category-{i + 1}" for i in range(len(names), count)]


def _rng(spec: CatalogSpec, part: str) -> random.Random:
    # One stream per part, so that e.g. more users do not change the products.
    return random.Random(f"offerloop:{spec.seed}:{part}")


def _brand(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()


def generate_products(spec: CatalogSpec) -> list[dict[str, Any]]:
    rng = _rng(spec, "products")
    categories = category_names(spec.categories)
    brands = {c: [_brand(rng) for _ in range(rng.randint(4, 8))] for c in categories}
    products = []
    for i in range(spec.products):
        category = categories[i % len(categories)] if i < len(categories) else rng.choice(categories)
        median, nouns = CATEGORIES.get(category, (30.0, ("Item",)))
        brand = rng.choice(brands[category])
        price = round(max(1.0, median * rng.lognormvariate(0, 0.5)), 2)
        products.append({"id": f"p{i:05d}", "name": f"{brand} {rng.choice(ADJECTIVES)} {rng.choice(nouns)}",
                         "category": category, "brand": brand, "price": price})
    return products


def _window(rng: random.Random, anchor: datetime) -> tuple[datetime, datetime]:
    draw = rng.random()
    if draw < 0.3:  # always on
        return anchor - timedelta(days=365), anchor + timedelta(days=365 * ALWAYS_ON_YEARS)
    if draw < 0.85:  # running now, ending at staggered times
        return anchor - timedelta(days=rng.randint(0, 30)), anchor + timedelta(days=rng.randint(1, 60))
    start = anchor + timedelta(days=rng.randint(1, 14))  # starting soon
    return start, start + timedelta(days=rng.randint(7, 30))


def _rules(rng: random.Random, kind: str) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if rng.random() < 0.2:
        rules["segments"] = sorted(rng.sample(SEGMENTS, rng.choice((1, 2))))
    if rng.random() < 0.1:
        rules["devices"] = ["mobile"]
    if kind in (CATEGORY_DISCOUNT, PRODUCT_DEAL) and rng.random() < 0.15:
        rules["minCategoryAffinity"] = rng.choice((1.0, 2.0, 3.0))
    return rules


def generate_offers(spec: CatalogSpec, products: list[dict[str, Any]], anchor: datetime) -> list[dict[str, Any]]:
    rng = _rng(spec, "offers")
    categories = category_names(spec.categories)
    by_category: dict[str, list[dict[str, Any]]] = {}
    for product in products:
        by_category.setdefault(product["category"], []).append(product)
    stocked = [c for c in categories if by_category.get(c)]
    offers = []
    # The first offers are one discount per category (at most half of all offers), so that
    # every category has something to offer; the rest are drawn by KIND_SHARES.
    covering = min(len(stocked), spec.offers // 2)
    for i in range(spec.offers):
        if i < covering:
            kind, category = CATEGORY_DISCOUNT, stocked[i]
        else:
            kind = rng.choices(KINDS, KIND_SHARES)[0] if stocked else FREE_SHIPPING
            category = rng.choice(stocked) if kind != FREE_SHIPPING else ""
        offer: dict[str, Any] = {"id": f"o{i:04d}", "kind": kind}
        if kind == CATEGORY_DISCOUNT:
            percent = rng.choice((5, 10, 15, 20, 25, 30))
            offer.update(title=f"{percent}% off {category.replace('-', ' ').title()}", category=category,
                         discountPercent=percent)
        elif kind == PRODUCT_DEAL:
            product = rng.choice(by_category[category])
            percent = rng.choice((10, 15, 20, 25, 30, 40))
            offer.update(title=f"{percent}% off {product['name']}", category=category,
                         productIds=[product["id"]], discountPercent=percent)
        elif kind == BUNDLE:
            pool = by_category[category]
            chosen = rng.sample(pool, min(len(pool), rng.choice((2, 3))))
            percent = rng.choice((10, 15, 20, 25))
            offer.update(title=f"Bundle: {' + '.join(p['name'] for p in chosen)}, save {percent}%",
                         category=category, productIds=[p["id"] for p in chosen], discountPercent=percent)
        else:
            basket = rng.choice(MIN_BASKETS)
            offer.update(title=f"Free shipping over ${basket}", minBasket=basket)
        valid_from, valid_to = _window(rng, anchor)
        offer.update(validFrom=format_time(valid_from), validTo=format_time(valid_to), rules=_rules(rng, kind))
        offers.append(offer)
    return offers


def generate_users(spec: CatalogSpec) -> list[dict[str, Any]]:
    rng = _rng(spec, "users")
    users = []
    for i in range(spec.users):
        signup = SIGNUP_FROM + timedelta(days=rng.randrange(SIGNUP_DAYS))
        users.append({"id": f"u{i:05d}", "segment": rng.choices(SEGMENTS, SEGMENT_SHARES)[0],
                      "region": rng.choice(REGIONS), "device": rng.choices(DEVICES, DEVICE_SHARES)[0],
                      "signupDate": signup.isoformat()})
    return users


def generate(spec: CatalogSpec, anchor: datetime) -> Catalog:
    """The whole synthetic catalog for `spec`, offers' windows placed around `anchor`."""
    products = generate_products(spec)
    return Catalog(products, generate_offers(spec, products, anchor), generate_users(spec))
