"""The whole loop: product views posted to /api/events reach the profile through ingest, and the offers follow."""
from __future__ import annotations

import json
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from shared import catalog_store

from .offers_world import favourite_category, forget_profile, get_offers, profiles
from .offers_world import seeded  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not (ROOT / "functions" / "ingest.py").exists(),
                       reason="functions/ingest.py (the ingest projection) is not built yet"),
]


def post_events(api: str, body: list[dict]) -> int:
    request = urllib.request.Request(f"{api}/events", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/cloudevents-batch+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_offers_learn_a_category_from_the_users_product_views(api, stack, seeded):
    user = "u00020"
    forget_profile(stack, user)
    _, cold, _ = get_offers(api, {"userId": user, "n": 3})
    category = favourite_category(seeded, user, avoid={o.get("category") for o in cold["offers"][:1]})
    products = [p for p in seeded.products if p["category"] == category][:4]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    views = [{"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/tests/e2e", "subject": user,
              "type": "offerloop.product.viewed", "time": now,
              "data": {"productId": p["id"], "category": category, "price": p["price"]}} for p in products]
    assert post_events(api, views) == 202
    deadline, profile = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        profile = catalog_store.read_profile(profiles(stack), user)
        if profile and len(profile.get("recentViews", [])) >= len(views):
            break
        time.sleep(0.5)
    try:
        assert profile and len(profile["recentViews"]) >= len(views), f"the profile never showed the views: {profile}"
        status, warm, _ = get_offers(api, {"userId": user, "n": 3})
    finally:
        forget_profile(stack, user)
    assert cold["coldStart"] is True and status == 200 and warm["coldStart"] is False
    assert warm["offers"][0]["category"] == category
