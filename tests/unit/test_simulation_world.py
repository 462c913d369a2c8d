"""The ground-truth world: seeded hidden tastes, informative attributes, true click probabilities."""
import itertools
import math
import statistics
from collections import Counter

import pytest

from shared.catalog import SEGMENTS
from shared.simulation import world
from shared.simulation.world import World, WorldParams

from .simulation_fakes import default_snapshot, discount, logit, small_snapshot, small_world

HOURS = (0, 6, 12, 18)


def sample_users(snapshot, count):
    return sorted(snapshot.users)[:count]


def test_the_same_seed_gives_the_same_tastes_and_probabilities():
    snapshot = small_snapshot()
    first, second = small_world(seed=11), small_world(seed=11)
    users = sample_users(snapshot, 200)
    assert [first.taste(u) for u in users] == [second.taste(u) for u in users]
    pages = sorted(snapshot.products)[:3] + [None]
    for user_id, offer, hour, page in itertools.product(users[:20], snapshot.offers, HOURS, pages):
        product = snapshot.products.get(page) if page else None
        assert first.click_probability(user_id, offer, hour, product) == \
            second.click_probability(user_id, offer, hour, product)


def test_another_seed_gives_other_tastes_and_probabilities():
    snapshot = small_snapshot()
    first, other = small_world(seed=11), small_world(seed=12)
    users = sample_users(snapshot, 200)
    differing = sum(first.taste(u) != other.taste(u) for u in users)
    assert differing == len(users)
    probabilities = [(first.click_probability(u, o, 12), other.click_probability(u, o, 12))
                     for u in users[:20] for o in snapshot.offers]
    assert sum(a != b for a, b in probabilities) > 0.9 * len(probabilities)


def test_tastes_do_not_depend_on_the_order_users_are_asked_for():
    users = sample_users(small_snapshot(), 50)
    forwards, backwards = small_world(), small_world()
    assert {u: forwards.taste(u) for u in users} == {u: backwards.taste(u) for u in reversed(users)}


def test_every_click_probability_of_the_default_world_is_strictly_between_0_and_1():
    snapshot = default_snapshot()
    truth = World(WorldParams(), snapshot.products, snapshot.offers, snapshot.users)
    pages = [None] + [snapshot.products[p] for p in sorted(snapshot.products)[::100]]
    probabilities = [truth.click_probability(u, o, hour, page)
                     for u in sample_users(snapshot, 60) for o in snapshot.offers for hour in HOURS
                     for page in pages]
    assert all(0 < p < 1 for p in probabilities)
    # Base rates of a few percent: an offer drawn at random is rarely clicked, the best ones often.
    assert 0.01 < statistics.mean(probabilities) < 0.08
    assert max(probabilities) > 0.3


def category_vector(truth: World, user_id: str) -> list[float]:
    taste = truth.taste(user_id)
    return [math.log(taste.preference[c]) for c in truth.categories]


def test_users_of_a_segment_share_category_tastes_more_than_users_of_different_segments_but_not_fully():
    snapshot = small_snapshot()
    truth = small_world()
    by_segment = {s: [] for s in SEGMENTS}
    for user_id in sorted(snapshot.users):
        by_segment[snapshot.users[user_id].segment].append(user_id)
    vectors = {s: [category_vector(truth, u) for u in ids[:30]] for s, ids in by_segment.items()}
    within = [statistics.correlation(a, b) for vs in vectors.values() for a, b in itertools.combinations(vs, 2)]
    across = [statistics.correlation(a, b) for s, t in itertools.combinations(SEGMENTS, 2)
              for a in vectors[s][:15] for b in vectors[t][:15]]
    # Informative: the segment explains part of a shopper's taste ...
    assert statistics.mean(within) > statistics.mean(across) + 0.1
    # ... but not all of it: shoppers of one segment still differ.
    assert statistics.mean(within) < 0.6
    for segment, ids in by_segment.items():
        favourites = Counter(max(truth.categories, key=truth.taste(u).preference.__getitem__) for u in ids)
        assert len(favourites) > 3, segment
        assert favourites.most_common(1)[0][1] < 0.8 * len(ids), segment


def test_price_sensitivity_follows_the_segment_with_overlap():
    snapshot = small_snapshot()
    truth = small_world()
    sensitivity = {s: [truth.taste(u).price_sensitivity for u, user in sorted(snapshot.users.items())
                       if user.segment == s] for s in ("bargain_hunter", "premium")}
    assert statistics.mean(sensitivity["bargain_hunter"]) > statistics.mean(sensitivity["premium"]) + 0.4
    assert min(sensitivity["bargain_hunter"]) < max(sensitivity["premium"])  # attributes are not perfect


def test_a_discount_raises_the_click_probability_more_in_a_category_the_user_prefers():
    truth = small_world()
    checked = 0
    for user_id in sample_users(small_snapshot(), 300):
        taste = truth.taste(user_id)
        if taste.discount_sensitivity < 0.2:
            continue  # the discount term is about nothing for this user
        ranked = sorted(truth.categories, key=lambda c: -taste.preference[c])
        liked, disliked = ranked[0], ranked[-1]
        if taste.preference[liked] < 2 * taste.preference[disliked]:
            continue
        gains = {}
        for category in (liked, disliked):
            small = truth.click_probability(user_id, discount(category, 10), 12)
            large = truth.click_probability(user_id, discount(category, 40), 12)
            gains[category] = (large - small, logit(large) - logit(small))
        # An interaction, not only the logistic's curvature: the gain is larger even in log-odds.
        assert gains[liked][0] > gains[disliked][0] > 0, user_id
        assert gains[liked][1] > gains[disliked][1] > 0, user_id
        checked += 1
    assert checked > 100


def test_the_probability_is_not_additive_in_preference():
    """Doubling a category's preference does not add a fixed amount of probability (logistic of a log)."""
    truth = small_world()
    user_id = sample_users(small_snapshot(), 1)[0]
    taste = truth.taste(user_id)
    ranked = sorted(truth.categories, key=lambda c: -taste.preference[c])
    p = [truth.click_probability(user_id, discount(c, 20), 12) for c in ranked]
    assert p == sorted(p, reverse=True)  # monotone in preference for the same offer
    assert p[0] / p[-1] > 3


def test_outlook_orders_the_candidates_best_first_and_averages_them_for_the_random_choice():
    snapshot = small_snapshot()
    truth = small_world()
    user_id = sample_users(snapshot, 1)[0]
    candidates = [o.id for o in snapshot.offers[:10]] + ["not-an-offer"]
    outlook = truth.outlook(user_id, candidates, 12)
    assert set(outlook.probabilities) == set(candidates[:10])
    ordered = [outlook.probabilities[o] for o in outlook.oracle]
    assert ordered == sorted(ordered, reverse=True)
    assert outlook.oracle_ctr() == max(ordered)
    assert outlook.oracle_ctr(1) == ordered[1]
    assert outlook.oracle_ctr(10) == 0.0
    assert outlook.random_ctr() == pytest.approx(sum(ordered) / 10)


def test_for_snapshot_keeps_one_world_per_parameters_and_snapshot():
    snapshot = small_snapshot()
    first = world.for_snapshot(WorldParams(seed=5), snapshot)
    assert world.for_snapshot(WorldParams(seed=5), snapshot) is first
    assert world.for_snapshot(WorldParams(seed=6), snapshot) is not first


def test_world_parameters_are_validated_and_unknown_keys_refused():
    with pytest.raises(ValueError, match="base_rate"):
        WorldParams(base_rate=1.5)
    with pytest.raises(ValueError, match="fidelity"):
        WorldParams(fidelity=2)
    with pytest.raises(ValueError, match="category_weight"):
        WorldParams(category_weight="big")
    with pytest.raises(ValueError, match="hour_weight"):
        WorldParams(hour_weight=float("inf"))
    with pytest.raises(ValueError, match="nonsense"):
        WorldParams.from_dict({"nonsense": 1})
    assert WorldParams.from_dict(WorldParams(seed=3).to_dict()) == WorldParams(seed=3)

