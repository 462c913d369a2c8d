"""The baseline policy: eligibility rules, validity windows, and a ranking that follows category affinity."""
from datetime import timedelta

import pytest

from shared import policy
from shared.policy import Context

from .offer_fakes import NOW, offer, product, user

SHOPPER = user()


def ranked_ids(offers, context, popular=(), n=10):
    return [s.offer.id for s in policy.rank(offers, context, list(popular), n).chosen]


@pytest.mark.parametrize("valid_from, valid_to, eligible", [
    (NOW - timedelta(days=1), NOW + timedelta(days=1), True),
    (NOW, NOW + timedelta(days=1), True),  # from is inclusive
    (NOW - timedelta(days=1), NOW, False),  # to is exclusive
    (NOW + timedelta(hours=1), NOW + timedelta(days=1), False),  # not started
    (NOW - timedelta(days=2), NOW - timedelta(days=1), False),  # over
])
def test_an_offer_is_eligible_only_inside_its_validity_window(valid_from, valid_to, eligible):
    candidate = offer("o1", valid_from=valid_from, valid_to=valid_to)
    assert (policy.why_not(candidate, Context(SHOPPER, NOW)) is None) == eligible


def test_segment_and_device_rules_admit_only_the_listed_ones():
    for_students = offer("o1", segments=["student"])
    for_desktop = offer("o2", devices=["desktop"])
    assert policy.why_not(for_students, Context(user(segment="student"), NOW)) is None
    assert policy.why_not(for_students, Context(user(segment="premium"), NOW)) == "not for this segment"
    assert policy.why_not(for_desktop, Context(user(device="mobile"), NOW)) == "not for this device"
    assert policy.why_not(for_desktop, Context(user(device="desktop"), NOW)) is None


def test_a_user_unknown_to_the_catalog_gets_no_targeted_offers():
    stranger = user(segment=None, device=None)
    assert policy.why_not(offer("o1", segments=["student"]), Context(stranger, NOW)) is not None
    assert policy.why_not(offer("o2"), Context(stranger, NOW)) is None


def test_min_category_affinity_compares_with_the_affinity_decayed_to_now():
    loyal_only = offer("o1", category="books", minCategoryAffinity=2.0)
    fresh = policy.decayed({"books": 3.0}, NOW, NOW)
    one_half_life_ago = policy.decayed({"books": 3.0}, NOW - timedelta(hours=72), NOW, half_life_hours=72)
    assert one_half_life_ago["books"] == pytest.approx(1.5)
    assert policy.why_not(loyal_only, Context(SHOPPER, NOW, affinity=fresh)) is None
    assert policy.why_not(loyal_only, Context(SHOPPER, NOW, affinity=one_half_life_ago)) is not None
    assert policy.why_not(loyal_only, Context(SHOPPER, NOW)) is not None  # no affinity at all


def test_a_profile_with_affinity_for_a_category_ranks_that_categorys_offers_first():
    offers = [offer("o-books", category="books"), offer("o-toys", category="toys"),
              offer("o-garden", category="garden"), offer("o-ship", "free_shipping"),
              offer("o-toys-deal", "product_deal", "toys", product_ids=("p9",)),
              offer("o-toys-bundle", "bundle", "toys", product_ids=("p9", "p8"))]
    context = Context(SHOPPER, NOW, affinity={"toys": 4.0, "books": 1.0})
    ids = ranked_ids(offers, context, popular=["o-garden", "o-books", "o-ship"])
    assert ids[:3] == ["o-toys", "o-toys-deal", "o-toys-bundle"]  # kind relevance 1.0 > 0.9 > 0.8
    assert ids.index("o-books") < ids.index("o-garden")


def test_the_product_on_screen_puts_its_own_deal_first():
    offers = [offer("o-books", category="books"), offer("o-deal", "product_deal", "toys", product_ids=("p7",))]
    context = Context(SHOPPER, NOW, affinity={"books": 5.0}, product=product("p7", "toys"))
    assert ranked_ids(offers, context) == ["o-deal", "o-books"]


def test_without_history_the_cold_start_list_decides_the_order():
    offers = [offer(f"o{i}", category=c) for i, c in enumerate(["books", "toys", "garden", "pets"])]
    assert ranked_ids(offers, Context(SHOPPER, NOW), popular=["o2", "o0", "o3"]) == ["o2", "o0", "o3", "o1"]


def test_equal_scores_go_to_the_more_popular_offer():
    offers = [offer("o-a", category="books"), offer("o-b", category="books")]
    context = Context(SHOPPER, NOW, affinity={"books": 1.0})
    assert ranked_ids(offers, context, popular=["o-b", "o-a"]) == ["o-b", "o-a"]


def test_n_limits_the_chosen_while_every_eligible_offer_is_a_candidate_with_its_features():
    offers = [offer(f"o{i}", category="books") for i in range(6)] + [offer("expired", valid_to=NOW)]
    ranking = policy.rank(offers, Context(SHOPPER, NOW, affinity={"books": 1.0}), [], 2)
    assert len(ranking.chosen) == 2 and len(ranking.candidates) == 6
    features = ranking.candidates[0].features
    assert features["offer"] == {"kind": "category_discount", "category": "books", "discountPercent": 10}
    assert features["baseline"]["relevance"] == 1.0 and features["baseline"]["score"] == ranking.candidates[0].score


def test_free_shipping_fits_every_shopper_with_history_a_little():
    ship = offer("o-ship", "free_shipping")
    assert policy.relevance(ship, {"books": 1.0}) == policy.FREE_SHIPPING_RELEVANCE
    assert policy.relevance(ship, {}) == 0.0
    assert policy.relevance(offer("o-books"), {"books": 0.25}) == 0.25


def test_learned_rankers_get_brands_price_index_and_the_shoppers_own_history_as_features():
    from shared.catalog import Product
    products = {"p1": Product("p1", "a", "books", "Acme", 30.0), "p2": Product("p2", "b", "books", "Zed", 10.0),
                "p3": Product("p3", "c", "books", "Acme", 20.0)}
    deal = offer("o1", "product_deal", product_ids=("p1", "p2"))
    features = policy.offer_features(deal, products, {"books": 20.0})
    assert features["brands"] == ["Acme", "Zed"] and features["priceIndex"] == 1.0  # mean 20 / median 20
    assert "brands" not in policy.offer_features(deal)  # without the catalog's products: the offer alone
    views = [{"productId": "p1"}, {"productId": "p3"}, {"productId": "p2"}, {"productId": "gone"}]
    assert policy.brand_shares(views, products) == {"Acme": round(2 / 3, 4), "Zed": round(1 / 3, 4)}
    ranking = policy.rank([deal, offer("o2")], Context(SHOPPER, NOW), [], 2, shown={"o1": 4}, clicked={"o1": 1})
    history = {s.offer.id: s.features.get("history") for s in ranking.candidates}
    assert history == {"o1": {"shown": 4, "clicked": 1}, "o2": None}


def test_the_logged_interest_is_the_shoppers_affinity_share_without_the_page_boost():
    context = Context(SHOPPER, NOW, affinity={"books": 3.0, "garden": 1.0}, product=product(category="books"))
    features = policy.context_features(context, {})
    assert features["interest"] == {"books": 0.75, "garden": 0.25}
    assert policy.interest(context)["books"] == 0.75 + policy.PAGE_CATEGORY_WEIGHT  # the baseline still boosts it
