"""Small hand-made offers, users and products for the offers unit tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from shared.catalog import Offer, Product, User, format_time

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def offer(id: str, kind: str = "category_discount", category: Optional[str] = "books", *,
          product_ids: tuple[str, ...] = (), discount: Optional[float] = 10, min_basket: Optional[float] = None,
          valid_from: datetime = NOW - timedelta(days=1), valid_to: datetime = NOW + timedelta(days=1),
          **rules: Any) -> Offer:
    doc: dict[str, Any] = {"id": id, "title": f"offer {id}", "kind": kind,
                           "validFrom": format_time(valid_from), "validTo": format_time(valid_to), "rules": rules}
    if category and kind != "free_shipping":
        doc["category"] = category
    if product_ids:
        doc["productIds"] = list(product_ids)
    if discount is not None and kind != "free_shipping":
        doc["discountPercent"] = discount
    if kind == "free_shipping":
        doc["minBasket"] = min_basket or 50
    return Offer.from_doc(doc)


def user(id: str = "u1", segment: str = "student", device: str = "mobile") -> User:
    return User(id, segment, "eu-west", device, "2025-01-01")


def product(id: str = "p1", category: str = "books") -> Product:
    return Product(id, f"product {id}", category, "Brand", 20.0)
