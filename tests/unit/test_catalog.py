"""The synthetic catalog: deterministic for a seed, the documented sizes and shapes, windows that never all expire."""
from datetime import datetime, timedelta, timezone

from shared import catalog
from shared.catalog import CatalogSpec, Offer

ANCHOR = datetime(2026, 11, 22, tzinfo=timezone.utc)
SMALL = CatalogSpec(seed=7, products=120, offers=40, users=300, categories=6)


def test_the_same_seed_and_anchor_give_the_same_documents():
    assert catalog.generate(SMALL, ANCHOR) == catalog.generate(SMALL, ANCHOR)


def test_another_seed_gives_another_catalog():
    other = CatalogSpec(seed=8, products=120, offers=40, users=300, categories=6)
    assert catalog.generate(other, ANCHOR).products != catalog.generate(SMALL, ANCHOR).products


def test_the_defaults_are_a_thousand_products_in_twenty_categories_a_hundred_offers_and_ten_thousand_users():
    docs = catalog.generate(CatalogSpec(), ANCHOR)
    assert (len(docs.products), len(docs.offers), len(docs.users)) == (1000, 100, 10_000)
    assert len({p["category"] for p in docs.products}) == 20
    assert len({p["id"] for p in docs.products}) == 1000 and len({u["id"] for u in docs.users}) == 10_000
    assert {o["kind"] for o in docs.offers} == set(catalog.KINDS)


def test_every_size_is_an_option():
    docs = catalog.generate(CatalogSpec(products=30, offers=9, users=5, categories=25), ANCHOR)
    assert (len(docs.products), len(docs.offers), len(docs.users)) == (30, 9, 5)
    assert len({p["category"] for p in docs.products}) == 25  # numbered categories beyond the named 20


def test_more_users_do_not_change_the_products_or_offers():
    more = CatalogSpec(seed=7, products=120, offers=40, users=900, categories=6)
    a, b = catalog.generate(SMALL, ANCHOR), catalog.generate(more, ANCHOR)
    assert a.products == b.products and a.offers == b.offers and a.users == b.users[:300]


def test_documents_have_the_contract_shapes():
    docs = catalog.generate(SMALL, ANCHOR)
    products = {p["id"]: p for p in docs.products}
    for product in docs.products:
        assert set(product) == {"id", "name", "category", "brand", "price"} and product["price"] > 0
    for user in docs.users:
        assert set(user) == {"id", "segment", "region", "device", "signupDate"}
        assert user["segment"] in catalog.SEGMENTS and user["device"] in catalog.DEVICES
    for offer in docs.offers:
        assert {"id", "title", "kind", "validFrom", "validTo", "rules"} <= set(offer)
        assert set(offer["rules"]) <= {"segments", "devices", "minCategoryAffinity"}
        if offer["kind"] == catalog.FREE_SHIPPING:
            assert offer["minBasket"] > 0 and "category" not in offer
        else:
            assert offer["category"] and 0 < offer["discountPercent"] < 100
        for product_id in offer.get("productIds", []):  # deals and bundles are of the offer's category
            assert products[product_id]["category"] == offer["category"]


def test_every_category_gets_a_discount():
    docs = catalog.generate(SMALL, ANCHOR)
    discounted = {o["category"] for o in docs.offers if o["kind"] == catalog.CATEGORY_DISCOUNT}
    assert discounted == set(catalog.category_names(SMALL.categories))


def test_offer_windows_are_staggered_around_the_anchor_and_never_all_expire():
    offers = [Offer.from_doc(d) for d in catalog.generate(CatalogSpec(), ANCHOR).offers]
    valid_now = sum(o.is_valid_at(ANCHOR + timedelta(hours=1)) for o in offers)
    assert 60 <= valid_now < 100  # most now, some later
    assert any(o.valid_from > ANCHOR for o in offers)  # some start in the coming days
    assert len({o.valid_to for o in offers}) > 20  # they end at many different times
    assert sum(o.is_valid_at(ANCHOR + timedelta(days=400)) for o in offers) >= 15  # the always-on ones


def test_seeding_on_the_same_day_places_the_windows_identically():
    morning = catalog.seeding_anchor(datetime(2026, 11, 22, 1, 30, tzinfo=timezone.utc))
    evening = catalog.seeding_anchor(datetime(2026, 11, 22, 23, 59, tzinfo=timezone.utc))
    assert catalog.generate(SMALL, morning).offers == catalog.generate(SMALL, evening).offers


def test_an_offer_document_parses_with_its_rules_and_window():
    offer = Offer.from_doc({"id": "o1", "title": "t", "kind": "category_discount", "category": "books",
                            "discountPercent": 10, "validFrom": "2026-11-01T00:00:00Z",
                            "validTo": "2026-12-01T00:00:00Z",
                            "rules": {"segments": ["student"], "devices": ["mobile"], "minCategoryAffinity": 2.0}})
    assert offer.segments == {"student"} and offer.devices == {"mobile"} and offer.min_category_affinity == 2.0
    assert offer.is_valid_at(datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert not offer.is_valid_at(datetime(2026, 12, 1, tzinfo=timezone.utc))
    assert Offer.from_doc({**offer.doc, "rules": {}}).segments is None
