"""GET /api/offers through the host on the local stack: cold start, personalization, errors, offer.shown."""
from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from shared import cache, coldstart, cosmos, resources, settings

from .offers_world import favourite_category, forget_profile, get_offers, profile_document, profiles, read_hub
from .offers_world import seeded  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(180)


def test_a_user_with_no_history_gets_cold_start_offers(api, stack, seeded):
    forget_profile(stack, "u00001")
    status, body, content_type = get_offers(api, {"userId": "u00001"})
    assert status == 200 and content_type.startswith("application/json")
    assert body["userId"] == "u00001" and body["coldStart"] is True and body["modelVersion"] == "baseline-1"
    assert len(body["offers"]) == 3 and len({o["offerId"] for o in body["offers"]}) == 3
    seeded_ids = {o["id"] for o in seeded.offers}
    for offer in body["offers"]:
        assert offer["offerId"] in seeded_ids and offer["title"] and offer["probability"] == 1.0


def test_after_a_profile_with_affinity_for_a_category_the_offers_favour_it(api, stack, seeded):
    user = "u00002"
    forget_profile(stack, user)
    _, cold, _ = get_offers(api, {"userId": user, "n": 5})
    category = favourite_category(seeded, user, avoid={o.get("category") for o in cold["offers"][:1]})
    product = next(p["id"] for p in seeded.products if p["category"] == category)
    profiles(stack).upsert_item(profile_document(user, category, product))
    try:
        status, warm, _ = get_offers(api, {"userId": user, "n": 5})
    finally:
        forget_profile(stack, user)
    assert status == 200 and cold["coldStart"] is True and warm["coldStart"] is False
    assert warm["offers"][0]["category"] == category
    assert warm["offers"][0]["score"] > max((o["score"] for o in cold["offers"]), default=0)


def test_the_product_on_screen_brings_its_own_deal_first(api, seeded):
    deal = next((o for o in seeded.offers if o["kind"] == "product_deal" and not o["rules"]
                 and o["validFrom"] <= datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")), None)
    if deal is None:
        pytest.skip("the small catalog has no open product deal valid today")
    status, body, _ = get_offers(api, {"userId": "u00003", "productId": deal["productIds"][0]})
    assert status == 200 and body["offers"][0]["offerId"] == deal["id"]


@pytest.mark.parametrize("params, field", [
    ({}, "userId"), ({"userId": " "}, "userId"), ({"userId": "u1", "n": "0"}, "n"),
    ({"userId": "u1", "n": "11"}, "n"), ({"userId": "u1", "n": "three"}, "n"),
])
def test_a_bad_user_id_or_n_is_a_400_problem(api, params, field):
    status, body, content_type = get_offers(api, params)
    assert status == 400 and content_type.startswith("application/problem+json")
    assert body["status"] == 400 and [e["field"] for e in body["errors"]] == [field]


def test_every_decision_is_an_offer_shown_event_on_the_hub(api, stack, seeded):
    since = datetime.now(timezone.utc) - timedelta(seconds=2)
    answers = {}
    for i in range(5):
        status, body, _ = get_offers(api, {"userId": f"u0001{i}", "n": 2})
        assert status == 200
        answers[body["eventId"]] = body
    shown = read_hub(stack, since, lambda e: e.get("id") in answers, count=len(answers))
    assert sorted(e["id"] for e in shown) == sorted(answers)
    for event in shown:
        answer = answers[event["id"]]
        assert event["type"] == "offerloop.offer.shown" and event["subject"] == answer["userId"]
        assert event["data"]["decisionId"] == event["id"]
        assert [c["offerId"] for c in event["data"]["chosen"]] == [o["offerId"] for o in answer["offers"]]
        assert all(c["probability"] == 1.0 for c in event["data"]["chosen"])
        assert len(event["data"]["candidates"]) >= len(answer["offers"])
        assert event["data"]["modelVersion"] == "baseline-1"


def test_the_hourly_cold_start_job_puts_the_most_clicked_offer_first(api, stack, seeded):
    config = settings.load(stack.settings)
    redis = cache.redis_client(config.redis_url)
    now = datetime.now(timezone.utc)
    listable = [o for o in seeded.offers if not o["rules"] and o["validTo"] > now.strftime("%Y-%m-%dT%H:%M:%SZ")]
    favourite = listable[-1]["id"]
    hour = (now - timedelta(hours=48)).replace(minute=0, second=0, microsecond=0)  # an hour ingest no longer writes
    stats = cosmos.database(config.cosmos, config.cosmos_database).get_container_client(resources.OFFER_STATS)
    doc_id = f"{favourite}:{hour:%Y%m%d%H}"
    stats.upsert_item({"id": doc_id, "offerId": favourite, "hour": hour.strftime("%Y-%m-%dT%H:00:00Z"),
                       "impressions": 1000, "clicks": 600, "byModel": {}, "watermarks": {}})
    redis.delete(coldstart.GLOBAL_KEY)
    try:
        request = urllib.request.Request(api.replace("/api", "/admin/functions/refresh_coldstart"),
                                         data=b'{"input": ""}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
        deadline = time.monotonic() + 30
        while redis.get(coldstart.GLOBAL_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        ranked = json.loads(redis.get(coldstart.GLOBAL_KEY) or "[]")
    finally:
        stats.delete_item(doc_id, partition_key=favourite)
    assert ranked and ranked[0] == favourite
    assert set(ranked) <= {o["id"] for o in seeded.offers}
