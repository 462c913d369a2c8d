"""decide(): one profile read, the baseline ranking, and exactly one offer.shown per decision."""
import dataclasses
from datetime import timedelta

import numpy as np
import pytest

from shared import affinity, coldstart, events, offers
from shared.affinity import GLOBAL, Related
from shared.catalog import format_time
from shared.catalog_cache import build_snapshot

from .offer_fakes import NOW

CATEGORIES = ("books", "toys", "garden")


def offer_doc(id, category=None, kind="category_discount", **extra):
    doc = {"id": id, "title": f"offer {id}", "kind": kind, "validFrom": "2026-01-01T00:00:00Z",
           "validTo": "2036-01-01T00:00:00Z", "rules": {}, **extra}
    if category:
        doc.update(category=category, discountPercent=10)
    return doc


SNAPSHOT = build_snapshot(
    products=[{"id": "p-toy", "name": "Toy", "category": "toys", "brand": "B", "price": 9.5}],
    offers=[offer_doc(f"o-{c}", c) for c in CATEGORIES]
    + [offer_doc("o-ship", kind="free_shipping", minBasket=50),
       offer_doc("o-toy-deal", "toys", kind="product_deal", productIds=["p-toy"]),
       offer_doc("o-old", "books", validTo="2026-02-01T00:00:00Z")],
    users=[{"id": "u1", "segment": "student", "region": "eu-west", "device": "mobile", "signupDate": "2025-01-01"}],
    now=NOW)


def profile(views=1, affinity=None, as_of=NOW):
    return {"id": "u1", "userId": "u1", "recentViews": [{"productId": "p", "category": "garden",
                                                          "time": format_time(as_of)}] * views,
            "categoryAffinity": affinity or {"garden": 3.0}, "affinityAsOf": format_time(as_of)}


class World:
    """Fake ports: a profile store, Redis lists, and a publish port that keeps what it gets."""

    def __init__(self, profiles=None, redis_lists=None, redis_down=False, profile_store_down=False,
                 snapshot=SNAPSHOT):
        self.snapshot = snapshot
        self.profiles = profiles or {}
        self.redis_lists = redis_lists if redis_lists is not None else {coldstart.GLOBAL_KEY: '["o-books", "o-toys"]'}
        self.redis_down, self.profile_store_down = redis_down, profile_store_down
        self.published, self.reads, self.timings = [], [], {}

    def read_profile(self, user_id):
        self.reads.append(user_id)
        if self.profile_store_down:
            raise TimeoutError("cosmos timed out")
        return self.profiles.get(user_id)

    def mget(self, keys):
        if self.redis_down:
            raise ConnectionError("redis is down")
        return [self.redis_lists.get(k) for k in keys]

    def ports(self):
        lists = coldstart.PopularityLists(self.mget, self.snapshot.fallback)
        return offers.Ports(read_profile=self.read_profile, catalog=lambda: self.snapshot, popular=lists.get,
                            publish=self.published.append, clock=lambda: NOW,
                            record=lambda name, ms: self.timings.setdefault(name, ms))


def test_a_decision_emits_exactly_one_offer_shown_event_describing_it():
    world = World(profiles={"u1": profile()})
    decision = offers.decide("u1", None, 2, world.ports())
    assert len(world.published) == 1
    event = world.published[0]
    assert event is decision.event and event.type == events.OFFER_SHOWN and event.user_id == "u1"
    assert event.source == events.OFFERS_SOURCE and event.time == NOW
    data = event.data
    assert data.decisionId == event.id == decision.event_id
    assert [c.offerId for c in data.chosen] == [o.scored.offer.id for o in decision.offers]
    assert [(c.slot, c.probability) for c in data.chosen] == [(0, 1.0), (1, 1.0)]
    # every eligible offer is a candidate, with its features; the expired one is not
    assert {c.offerId for c in data.candidates} == {"o-books", "o-toys", "o-garden", "o-ship", "o-toy-deal"}
    assert all(c.features["offer"]["kind"] for c in data.candidates)
    assert data.modelVersion == "baseline-1" and data.exploration.policy == "greedy"
    assert data.exploration.epsilon == 0 and data.coldStart is False
    assert data.context["user"] == {"segment": "student", "region": "eu-west", "device": "mobile"}
    assert data.context["interest"] == {"garden": 1.0}
    assert data.context["history"] == {"views": 1, "carts": 0, "purchases": 0}
    assert data.context["diagnostics"] == {"popularFrom": "redis", "affinityFrom": "none"}
    assert "affinity" not in data.context  # no related-products table yet


def test_the_published_event_is_a_valid_cloudevent_that_parses_back():
    world = World(profiles={"u1": profile()})
    decision = offers.decide("u1", "p-toy", 3, world.ports())
    parsed = events.parse(decision.event.to_dict())
    assert parsed.data == decision.event.data and parsed.id == decision.event_id


def test_one_profile_point_read_per_decision():
    world = World()
    offers.decide("u1", None, 3, world.ports())
    assert world.reads == ["u1"]


def test_affinity_for_a_category_puts_its_offer_first():
    world = World(profiles={"u1": profile(affinity={"toys": 1.0, "books": 4.0})})
    decision = offers.decide("u1", None, 3, world.ports())
    assert [o.scored.offer.id for o in decision.offers][:1] == ["o-books"] and not decision.cold_start


@pytest.mark.parametrize("stored", [None, {"id": "u1", "userId": "u1", "recentViews": [], "categoryAffinity": {}}])
def test_no_profile_or_no_views_is_a_cold_start_ranked_by_the_segments_list(stored):
    world = World(profiles={"u1": stored} if stored else {},
                  redis_lists={coldstart.segment_key("student"): '["o-garden", "o-ship", "o-books"]'})
    decision = offers.decide("u1", None, 3, world.ports())
    assert decision.cold_start and decision.event.data.coldStart
    assert [o.scored.offer.id for o in decision.offers] == ["o-garden", "o-ship", "o-books"]
    assert decision.event.data.context["diagnostics"]["popularFrom"] == "redis"


def test_a_failing_redis_still_answers_from_the_in_process_list():
    world = World(redis_down=True)
    decision = offers.decide("u1", None, 3, world.ports())
    expected = SNAPSHOT.fallback("student")
    assert [o.scored.offer.id for o in decision.offers] == [i for i in expected if i != "o-old"][:3]
    assert decision.event.data.context["diagnostics"]["popularFrom"] == "fallback"
    assert len(world.published) == 1


def test_an_unreadable_profile_answers_as_a_cold_start_and_says_so():
    world = World(profile_store_down=True)
    decision = offers.decide("u1", None, 3, world.ports())
    assert decision.cold_start and len(decision.offers) == 3
    assert decision.event.data.context["diagnostics"]["profile"] == "unavailable"


def test_a_user_the_catalog_does_not_know_gets_untargeted_offers_from_the_global_list():
    world = World()
    decision = offers.decide("stranger", None, 2, world.ports())
    assert [o.scored.offer.id for o in decision.offers] == ["o-books", "o-toys"]
    assert decision.event.user_id == "stranger" and decision.event.data.context["user"] == {}


def test_the_product_on_screen_is_context_and_its_deal_comes_first():
    world = World(profiles={"u1": profile()})
    decision = offers.decide("u1", "p-toy", 3, world.ports())
    assert decision.offers[0].scored.offer.id == "o-toy-deal"
    assert decision.event.data.context["page"] == {"productId": "p-toy", "category": "toys", "price": 9.5}


def test_an_unknown_product_is_noted_and_otherwise_ignored():
    decision = offers.decide("u1", "p-none", 3, World().ports())
    assert decision.event.data.context["diagnostics"]["unknownProductId"] == "p-none"
    assert "page" not in decision.event.data.context


def test_stored_affinity_is_decayed_to_now_before_the_rules_see_it():
    loyal = build_snapshot([], [offer_doc("o-loyal", "toys", rules={"minCategoryAffinity": 2.0})], [], now=NOW)
    fresh = World(profiles={"u1": profile(affinity={"toys": 4.0})}, snapshot=loyal)
    stale = World(profiles={"u1": profile(affinity={"toys": 4.0}, as_of=NOW - timedelta(hours=144))}, snapshot=loyal)
    assert [o.scored.offer.id for o in offers.decide("u1", None, 3, fresh.ports()).offers] == ["o-loyal"]
    assert offers.decide("u1", None, 3, stale.ports()).offers == []  # 4.0 two half-lives ago is 1.0 now


def test_the_answer_has_the_contract_fields_and_timings_are_recorded():
    world = World(profiles={"u1": profile()})
    body = offers.decide("u1", None, 2, world.ports()).to_dict()
    assert set(body) == {"eventId", "userId", "offers", "modelVersion", "coldStart"}
    first = body["offers"][0]
    assert {"offerId", "title", "kind", "probability", "score"} <= set(first) and first["probability"] == 1.0
    assert set(world.timings) == {"profile_read", "scoring", "total"}
    assert world.timings["total"] >= world.timings["scoring"] >= 0


def related_table():
    # the profile's product "p" is related to "p-toy"; the student segment's new shoppers like p-toy most
    return Related(items=["p", "p-toy"], indptr=np.array([0, 1, 1]), indices=np.array([1], np.int32),
                   scores=np.array([0.5], np.float32),
                   coldstart={GLOBAL: [("p", 1.0)], "student": [("p-toy", 0.6), ("p", 0.4)]})


def with_table(world, table=None):
    """The world's ports with a related-products table, and its cold-start product lists from the fake Redis."""
    table = table or related_table()
    lists = coldstart.PopularityLists(world.mget, lambda segment: affinity.coldstart_list(table, segment),
                                      prefix=affinity.KEY_PREFIX)
    return dataclasses.replace(world.ports(), related=lambda: table, liked=lists.get)


def student_lists(products: str) -> dict:
    return {coldstart.GLOBAL_KEY: '["o-books"]', coldstart.segment_key("student", affinity.KEY_PREFIX): products}


def test_a_shoppers_recent_views_times_the_related_table_are_logged_as_their_product_affinity():
    decision = offers.decide("u1", None, 5, with_table(World(profiles={"u1": profile()})))
    context = decision.event.data.context
    assert context["affinity"] == {"categories": {"toys": 1.0}, "brands": {"B": 1.0}}
    assert context["diagnostics"]["affinityFrom"] == "history"
    features = {c.offerId: c.features for c in decision.event.data.candidates}
    assert features["o-toy-deal"]["affinity"] == {"products": 1.0, "category": 1.0}
    assert features["o-toys"]["affinity"] == {"category": 1.0}
    assert "affinity" not in features["o-books"] and "affinity" not in features["o-ship"]


def test_a_new_shopper_gets_their_segments_cold_start_product_list_and_redis_down_the_tables():
    decision = offers.decide("u1", None, 3, with_table(World(redis_lists=student_lists('[["p-toy", 0.9], ["p", 0.1]]'))))
    context = decision.event.data.context
    assert decision.cold_start is True and context["diagnostics"]["affinityFrom"] == "redis"
    assert context["affinity"] == {"categories": {"toys": 0.9}, "brands": {"B": 0.9}}
    fallback = offers.decide("u1", None, 3, with_table(World(redis_down=True)))
    context = fallback.event.data.context
    assert context["diagnostics"] == {"popularFrom": "fallback", "affinityFrom": "fallback"}
    assert context["affinity"]["categories"] == {"toys": 0.6} and len(fallback.offers) == 3


def test_a_malformed_cold_start_product_list_leaves_the_affinity_out_and_the_offers_still_come():
    decision = offers.decide("u1", None, 3, with_table(World(redis_lists=student_lists('["p-toy", "p"]'))))
    context = decision.event.data.context
    assert context["diagnostics"]["affinityFrom"] == "unavailable" and "affinity" not in context
    assert len(decision.offers) == 3
