"""Features: Personalizer's flattening rules, derived features, hashing with interactions."""
import numpy as np

from shared.learning import features as F

CONTEXT = {"user": {"segment": "student", "device": "mobile"}, "time": {"hour": 6, "weekday": 2},
           "history": {"views": 3, "carts": 0}, "interest": {"books": 0.6, "garden": 0.4},
           "page": {"productId": "p1", "category": "books", "price": 12.5},
           "brands": {"Acme": 0.5}, "diagnostics": {"popularFrom": "redis"}, "_private": {"x": 1}}
ACTION = {"offer": {"kind": "product_deal", "category": "books", "discountPercent": 20, "brands": ["Acme", "Zed"],
                    "targeted": False},
          "baseline": {"relevance": 0.5, "productMatch": True}, "history": {"shown": 4, "clicked": 1}}


def test_strings_are_one_hot_numbers_numbers_and_false_zero_none_and_underscores_dropped():
    flat = F.flatten({"ns": {"s": "x", "n": 2.5, "t": True, "f": False, "z": 0, "none": None, "_skip": "y",
                             "inner": {"deep": "v"}, "tags": ["a", "b"], "nums": [1, 2]},
                      "scalar": 7, "_hidden": {"a": 1}, "diagnostics": {"b": "c"}})
    assert sorted(flat) == sorted([("ns", "s=x", 1.0), ("ns", "n", 2.5), ("ns", "t", 1.0), ("ns", "inner.deep=v", 1.0),
                                   ("ns", "tags=a", 1.0), ("ns", "tags=b", 1.0), ("ns", "nums[0]", 1.0),
                                   ("ns", "nums[1]", 2.0), ("scalar", "scalar", 7.0)])


def test_derived_features_describe_the_hour_and_how_the_action_matches_the_context():
    space = F.FeatureSpace()
    clock = {name: v for ns, name, v in F.context_flat(CONTEXT, space) if ns == F.CLOCK}
    assert abs(clock["sin"] - 1.0) < 1e-9 and abs(clock["cos"]) < 1e-6  # 06:00 is a quarter of the day
    match = {name: v for ns, name, v in F.action_flat(ACTION, CONTEXT, space) if ns == F.MATCH}
    assert match["categoryInterest"] == 0.6 and match["pageCategory"] == 1.0
    assert match["brandShare"] == 0.25 and match["brandSeen"] == 0.5  # Acme seen, Zed not
    assert match["ownCtr"] == (1 + F.PRIOR_CLICKS) / (4 + F.PRIOR_SHOWS)
    plain = F.action_flat(ACTION, CONTEXT, F.FeatureSpace(derived=False))
    assert not [f for f in plain if f[0] == F.MATCH]


def test_a_row_holds_the_context_the_action_and_the_interacting_pairs():
    space = F.FeatureSpace(interactions=(("user", "offer"),))
    rows = F.rows_for(space, F.Encoder(space), CONTEXT, [ACTION])
    n_context = len(F.context_flat(CONTEXT, space))
    action = F.action_flat(ACTION, CONTEXT, space)
    pairs = 2 * len([f for f in action if f[0] == "offer"])  # user has 2 features
    assert rows.shape == (1, space.width)
    assert rows.nnz == n_context + len(action) + pairs  # no collisions in 2^18 for a handful of names


def test_wildcards_pair_every_context_namespace_and_no_pairs_without_interactions():
    wide = F.FeatureSpace(interactions=(("*", "offer"),))
    none = F.FeatureSpace(interactions=())
    n_wide = F.rows_for(wide, F.Encoder(wide), CONTEXT, [ACTION]).nnz
    n_none = F.rows_for(none, F.Encoder(none), CONTEXT, [ACTION]).nnz
    n_context = len(F.context_flat(CONTEXT, none))
    offer = len([f for f in F.action_flat(ACTION, CONTEXT, none) if f[0] == "offer"])
    assert n_wide - n_none == n_context * offer


def test_encoding_is_the_same_in_every_process_and_for_every_batch_shape():
    space = F.FeatureSpace()
    one = F.rows_for(space, F.Encoder(space), CONTEXT, [ACTION, {"offer": {"kind": "free_shipping"}}])
    encoder = F.Encoder(space)
    flats = [F.context_flat({"user": {"segment": "x"}}, space), F.context_flat(CONTEXT, space)]
    batch = encoder.encode(flats, [F.action_flat(ACTION, CONTEXT, space)] * 2, [1, 1])
    assert (one[0] != batch[0]).nnz == 0 and (one[0] != batch[1]).nnz == 0
    assert one.indices.max() < space.width and np.isfinite(one.data).all()


def test_feature_space_round_trips_and_rejects_bad_widths():
    space = F.FeatureSpace(bits=12, interactions=(("user", "offer"), ("*", "match")), derived=False)
    assert F.FeatureSpace.from_dict(space.to_dict()) == space
    import pytest
    with pytest.raises(ValueError):
        F.FeatureSpace.from_dict({"bits": 40})


def test_serving_sums_the_same_rows_it_would_have_built():
    import numpy as np
    space = F.FeatureSpace(bits=12, interactions=(("*", "*"),), derived=True)
    encoder = F.Encoder(space)
    weights = np.random.default_rng(3).normal(size=space.width).astype(np.float32)
    actions = [ACTION, {"offer": {"kind": "free_shipping", "brands": ["a", "b"]}}, {}]
    rows = F.rows_for(space, encoder, CONTEXT, actions)
    assert np.allclose(F.dot_for(space, encoder, weights, CONTEXT, actions), rows @ weights, rtol=1e-5, atol=1e-6)
