"""Item-item co-occurrence similarity, decayed user affinity, the stored table and the retrain step."""
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from shared import affinity, affinity_job, catalog, events
from shared.affinity import AffinityError, AffinityParams, Interactions, Related
from shared.learning import dataset
from shared.learning.loop import Learner
from shared.simulation import headless
from shared.simulation.world import World, WorldParams

DAY = 86400.0
NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def interactions(*rows):
    return Interactions.of(rows)


def test_similarity_is_cooccurrence_over_item_counts_with_the_popularity_penalty():
    # a and b are liked together by two users, a and c (and b and c) by one; each item has two users
    fitted = affinity.fit(interactions(("u1", "a", 1, 0), ("u1", "b", 1, 0), ("u2", "a", 1, 0), ("u2", "b", 1, 0),
                                       ("u2", "c", 1, 0), ("u3", "c", 1, 0)), AffinityParams(popularity_penalty=0.5))
    s = fitted.similarity.toarray()
    assert list(fitted.items) == ["a", "b", "c"]
    assert s[0, 1] == pytest.approx(2 / (2 * 2 ** 0.5), rel=1e-6) and s[0, 2] == pytest.approx(1 / (2 * 2 ** 0.5), rel=1e-6)
    assert np.all(np.diag(s) == 0)
    lift = affinity.fit(interactions(("u1", "a", 1, 0), ("u1", "b", 1, 0), ("u2", "a", 1, 0)),
                        AffinityParams(popularity_penalty=1.0)).similarity.toarray()
    assert lift[0, 1] == pytest.approx(1 / (2 * 1)) and lift[1, 0] == pytest.approx(1 / (1 * 2))


def test_pairs_below_the_cooccurrence_threshold_are_dropped():
    rows = [("u1", "a", 1, 0), ("u1", "b", 1, 0), ("u2", "a", 1, 0), ("u2", "b", 1, 0), ("u2", "c", 1, 0)]
    s = affinity.fit(interactions(*rows), AffinityParams(min_cooccurrence=2)).similarity.toarray()
    assert s[0, 1] > 0 and s[0, 2] == 0 and s[1, 2] == 0


def test_user_affinity_adds_up_weights_decayed_by_age():
    fitted = affinity.fit(interactions(("u1", "a", 1, 0), ("u1", "a", 3, 10 * DAY), ("u1", "b", 5, 10 * DAY)),
                          AffinityParams(half_life_days=10), now=20 * DAY)
    a = fitted.affinity.toarray()[0]
    assert a[0] == pytest.approx(1 * 0.25 + 3 * 0.5) and a[1] == pytest.approx(5 * 0.5)
    flat = affinity.fit(interactions(("u1", "a", 2, 0)), AffinityParams(half_life_days=0), now=100 * DAY)
    assert flat.affinity.toarray()[0, 0] == 2


def test_recommendations_are_the_cooccurring_items_the_user_has_not_seen():
    rows = [(f"u{i}", "a", 1, 0) for i in range(5)] + [(f"u{i}", "b", 1, 0) for i in range(5)] \
        + [("u9", "c", 1, 0), ("u9", "d", 1, 0), ("new", "a", 1, 0)]
    fitted = affinity.fit(interactions(*rows))
    top, scores = fitted.recommend([fitted.user_index()["new"]], k=2)
    assert fitted.items[top[0][0]] == "b" and scores[0][0] > 0
    assert "a" not in {fitted.items[i] for i in top[0]}  # seen
    assert scores[0][1] == 0  # nothing else co-occurs with a


def test_the_table_keeps_the_top_neighbours_best_first_and_round_trips():
    rows = [(f"u{i}", "a", 1, 0) for i in range(4)] + [(f"u{i}", "b", 1, 0) for i in range(3)] \
        + [(f"u{i}", "c", 1, 0) for i in range(1)] + [("u9", "d", 1, 0)]
    related = affinity.fit(interactions(*rows), AffinityParams(neighbours=1)).related({"u0": "student"}, "v1")
    assert [i for i, _ in related.of("a")] == ["b"] and related.of("d") == [] and related.of("zzz") == []
    full = affinity.fit(interactions(*rows)).related()
    assert [i for i, _ in full.of("a", 10)] == ["b", "c"] and [i for i, _ in full.of("a", 1)] == ["b"]
    again = Related.from_bytes(related.to_bytes())
    assert again.items == related.items and again.of("a") == related.of("a") and again.version == "v1"
    assert again.coldstart == related.coldstart and again.params == related.params


@pytest.mark.parametrize("blob", [b"", b"not a zip", Related(["a"], np.array([0, 1]), np.array([5], np.int32),
                                                               np.array([1.0], np.float32)).to_bytes()])
def test_an_unreadable_or_inconsistent_table_is_refused(blob):
    with pytest.raises(AffinityError):
        Related.from_bytes(blob)


def test_cold_start_lists_per_segment_count_each_user_once():
    rows = [("s1", "a", 1, 0), ("s2", "a", 1, 0), ("s3", "b", 1, 0)] + [("busy", "c", 1, 0)] * 50 \
        + [("p1", "d", 1, 0), ("p1", "e", 1, 0)]
    related = affinity.fit(interactions(*rows)).related({"s1": "student", "s2": "student", "s3": "student",
                                                         "busy": "student", "p1": "premium"})
    student = related.coldstart["student"]
    assert [i for i, _ in student] == ["a", "b", "c"] and student[0][1] == pytest.approx(0.5)
    assert sum(s for _, s in student) == pytest.approx(1.0)
    assert [i for i, _ in related.coldstart["premium"]] == ["d", "e"]
    assert [i for i, _ in related.coldstart[affinity.GLOBAL]][:1] == ["a"] and len(related.coldstart) == 3


def test_a_shoppers_affinity_is_their_history_times_the_similarity():
    rows = [(f"u{i}", "a", 1, 0) for i in range(3)] + [(f"u{i}", "b", 1, 0) for i in range(3)] \
        + [("u0", "c", 1, 0), ("u9", "d", 1, 0), ("u9", "e", 1, 0)]
    related = affinity.fit(interactions(*rows)).related()
    liked = dict(related.personal([("a", 1.0)]))
    assert set(liked) == {"b", "c"} and liked["b"] > liked["c"] and sum(liked.values()) == pytest.approx(1.0)
    assert dict(related.personal([("a", 1.0), ("b", 0.0)])).keys() == {"c"}  # b was seen
    assert related.personal([("unknown", 1.0)]) == []


def cloud(type_, user, data, minutes=0):
    return {"specversion": "1.0", "id": f"{user}-{type_}-{minutes}-{data.get('productId')}", "source": "test",
            "type": type_, "subject": user, "time": (NOW - timedelta(minutes=minutes)).isoformat(), "data": data}


def test_the_retrain_step_reads_product_events_and_writes_the_blob_before_redis():
    records = [cloud(events.PRODUCT_VIEWED, "u1", {"productId": "p1", "category": "c"}, 5),
               cloud(events.CART_ADDED, "u1", {"productId": "p2", "category": "c"}, 4),
               cloud(events.PRODUCT_PURCHASED, "u2", {"productId": "p1", "category": "c"}, 3),
               cloud(events.PRODUCT_VIEWED, "u2", {"productId": "p2", "category": "c"}, 2),
               cloud(events.OFFER_CLICKED, "u2", {"offerId": "o1", "decisionId": "d"}, 1),
               cloud(events.PRODUCT_VIEWED, "u3", {"category": "c"}, 1)]  # no product: left out
    table, _ = dataset.tables(records)
    found = affinity_job.interactions(table)
    assert sorted(zip(found.users, found.items, found.weights)) == [("u1", "p1", 1.0), ("u1", "p2", 3.0),
                                                                    ("u2", "p1", 5.0), ("u2", "p2", 1.0)]
    written = []
    ports = affinity_job.Ports(load=lambda start, end, ev_cols, dec_cols: (table.select(list(ev_cols)), None),
                               segments=lambda: {"u1": "student"}, save=lambda r: written.append(("blob", r)),
                               publish=lambda values: written.append(("redis", values)))
    report = affinity_job.run(ports, NOW, window_days=14)
    assert [kind for kind, _ in written] == ["blob", "redis"] and report["written"] is True
    related = written[0][1]
    assert related.of("p1") == [("p2", pytest.approx(2 / (2 * 2 ** 0.5)))] and report["products"] == 2
    assert set(written[1][1]) == {"offerloop:affinity:global", "offerloop:affinity:segment:student"}


def test_redis_down_does_not_fail_the_step_and_no_events_write_nothing():
    table, _ = dataset.tables([cloud(events.PRODUCT_VIEWED, "u1", {"productId": "p1", "category": "c"})])
    saved = []

    def down(values):
        raise ConnectionError("redis is down")

    ports = affinity_job.Ports(load=lambda *a: (table, None), segments=dict, save=saved.append, publish=down)
    report = affinity_job.run(ports, NOW, window_days=1)
    assert report["written"] is True and len(saved) == 1 and "ConnectionError" in report["redis"]
    empty = affinity_job.Ports(load=lambda *a: (table.slice(0, 0), None), segments=dict, save=saved.append,
                               publish=down)
    assert affinity_job.run(empty, NOW, window_days=1)["written"] is False and len(saved) == 1


def test_related_products_in_the_seeded_catalog_are_mostly_from_its_category_after_simulated_sessions():
    spec = catalog.CatalogSpec(seed=11, products=60, offers=30, users=40, categories=5)
    snapshot = headless.catalog_snapshot(spec)
    world = World(WorldParams(), snapshot.products, snapshot.offers, snapshot.users)
    logged = []
    headless.Simulator(world, snapshot, headless.chooser("baseline", world, 7), headless.Options(3000, users=40),
                       "baseline", on_events=logged.extend).run()
    table, _ = dataset.tables([e.to_dict() for e in logged])
    related = affinity.fit(affinity_job.interactions(table)).related(
        {u.id: u.segment for u in snapshot.users.values() if u.segment})
    shares = []
    for product in snapshot.products.values():
        similar = related.of(product.id, 10)
        assert len(similar) == 10  # every product was seen with others
        shares.append(sum(snapshot.products[p].category == product.category for p, _ in similar) / 10)
    assert np.mean(shares) >= 0.8 and np.mean(np.array(shares) > 0.5) >= 0.8
    # and a cold-start list for every segment, and one overall
    assert set(related.coldstart) == {affinity.GLOBAL} | {u.segment for u in snapshot.users.values() if u.segment}


def test_the_headless_learner_computes_the_table_and_its_decisions_then_carry_the_shoppers_affinity():
    spec = catalog.CatalogSpec(seed=11, products=60, offers=30, users=40, categories=5)
    snapshot = headless.catalog_snapshot(spec)
    world = World(WorldParams(), snapshot.products, snapshot.offers, snapshot.users)
    learner = Learner(retrain_every=1000, seed=3, max_retrains=1,
                      segments={u.id: u.segment for u in snapshot.users.values() if u.segment})
    logged = []

    def on_events(batch):
        logged.extend(batch)
        learner.on_events(batch)

    headless.Simulator(world, snapshot, learner.chooser, headless.Options(2000, users=40), "learned", on_events,
                       related=lambda: learner.related).run()
    assert learner.related is not None and learner.reports[0]["affinity"]["written"] is True
    sources = Counter(e.data.context["diagnostics"]["affinityFrom"] for e in logged if e.type == events.OFFER_SHOWN)
    assert sources["none"] > 0 and sources["history"] > 0  # before the first retrain, and after it
    after = [e for e in logged if e.type == events.OFFER_SHOWN
             and e.data.context["diagnostics"]["affinityFrom"] == "history"]
    assert all(e.data.context["affinity"]["categories"] for e in after)
    assert any("affinity" in c.features for e in after for c in e.data.candidates)


def test_asking_for_more_recommendations_than_items_gives_every_item_once():
    fitted = affinity.fit(interactions(("u1", "a", 1, 0), ("u1", "b", 1, 0), ("u2", "a", 1, 0)))
    top, scores = fitted.recommend([fitted.user_index()["u2"]], k=10)
    assert top.shape == (1, 2) and fitted.items[top[0][0]] == "b" and scores[0][1] == -np.inf
