"""Column-by-column featurizing gives exactly the row path's rows (features.rows_of), or steps aside."""
from __future__ import annotations

import json
import logging
import random

import numpy as np
import pyarrow as pa
import pytest

from shared.learning import columnar, dataset, retrain
from shared.learning.features import Encoder, FeatureSpace, rows_of

from .learning_fakes import exploring_logs

SPACES = (FeatureSpace(), FeatureSpace(bits=12, interactions=(("*", "*"),)),
          FeatureSpace(interactions=(), derived=False))


def _texts(contexts, chosen):
    return [json.dumps(c) for c in contexts], [json.dumps(a) for a in chosen]


def _both(space, contexts, chosen, local, positions):
    """(row path, columnar) rows of the same logged JSON."""
    context_texts, chosen_texts = _texts(contexts, chosen)
    logged = dataset.Logged(pa.array(context_texts), pa.array(chosen_texts), np.asarray(local), np.asarray(positions))
    parsed_contexts, actions = logged.parsed()
    expected = rows_of(Encoder(space), parsed_contexts, actions, logged.local)
    got = columnar.rows(Encoder(space), context_texts, chosen_texts, logged.local, logged.positions)
    return expected, got


def _same(expected, got):
    assert got.shape == expected.shape
    expected.sort_indices()
    got.sort_indices()
    assert np.array_equal(got.indptr, expected.indptr) and np.array_equal(got.indices, expected.indices)
    # float32 sums of colliding features may be added in another order: equal to rounding
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("space", SPACES, ids=["default", "all-pairs", "plain"])
def test_the_logged_decisions_of_a_run_featurize_alike(space):
    logs = exploring_logs()
    examples = dataset.examples(dataset.dedupe(logs.decisions), dataset.reward_events(logs.events),
                                dataset.RewardRules(), logs.end)
    logged = examples.logged(0, len(examples))
    contexts, actions = logged.parsed()
    expected = rows_of(Encoder(space), contexts, actions, logged.local)
    got = columnar.rows(Encoder(space), logged.contexts, logged.chosen_features, logged.local, logged.positions)
    assert expected.nnz > 20 * expected.shape[0]
    _same(expected, got)


EDGES = [
    ({"user": {"segment": "student", "vip": True, "trial": False, "_secret": "x", "age": 0, "score": 2.5},
      "time": {"hour": 0, "weekday": 3}, "page": {"category": "garden", "nested": {"deep": {"x": 1, "s": "v"}}},
      "interest": {"garden": 0.6, "toys": 0.0}, "brands": {"acme": 0.4, "zeta": 0.2},
      "tags": ["a", "b", "a"], "scores": [0.5, 0, 2], "diagnostics": {"popularFrom": "cache"}, "_note": "n",
      "segment": "top-level", "level": 3},
     [{"offer": {"kind": "bundle", "category": "garden", "brands": ["acme", "other", None]},
       "history": {"shown": 4, "clicked": 1}, "baseline": {"score": 0.1, "productMatch": False}},
      {"offer": {"kind": "deal", "category": "toys", "brands": []}, "history": {"shown": 0}}]),
    ({"user": None, "time": {"hour": 13}, "page": {}, "interest": {"toys": 0.3}, "tags": [], "scores": None},
     [{"offer": {"kind": "shipping"}, "baseline": None},
      {"offer": {"kind": "deal", "category": "books", "brands": ["zeta"]}, "history": {"shown": 2, "clicked": None}}]),
    ({"time": {}, "brands": {"zeta": 0.9}},
     [{"offer": {"category": "garden", "brands": ["zeta", "acme"]}, "history": {"shown": 1, "clicked": 1}}]),
    ({}, []),
]


@pytest.mark.parametrize("space", SPACES, ids=["default", "all-pairs", "plain"])
def test_every_rule_and_derived_feature_agrees_on_edge_cases(space):
    contexts = [c for c, _ in EDGES]
    chosen = [a for _, a in EDGES]
    # every action of each decision, and positions past the end of its list (no features)
    local = [0, 0, 0, 1, 1, 2, 3, 2]
    positions = [0, 1, 5, 0, 1, 0, 0, 3]
    expected, got = _both(space, contexts, chosen, local, positions)
    assert expected.nnz > 40
    _same(expected, got)


def _random_json(rng: random.Random, count: int):
    """Decisions whose names keep one type each (what the reader accepts), values often missing or null."""
    categories, brands = ["garden", "toys", "books", "x=y", "a.b"], ["acme", "zeta", "mu", "nu"]

    def maybe(value):
        roll = rng.random()
        return "absent" if roll < 0.15 else None if roll < 0.25 else value

    contexts, chosen = [], []
    for _ in range(count):
        context = {"user": {"segment": maybe(rng.choice(["s1", "s2", "s 3"])), "flag": maybe(rng.random() < 0.5),
                            "n": maybe(rng.choice([0, 1, 2.5, -3]))},
                   "time": {"hour": maybe(rng.randrange(24))}, "page": maybe({"category": maybe(rng.choice(categories))}),
                   "interest": {c: maybe(rng.choice([0, 0.1, 0.5, 1.0])) for c in rng.sample(categories, 3)},
                   "brands": {b: maybe(rng.choice([0.0, 0.2, 0.7])) for b in rng.sample(brands, 2)},
                   "list": maybe(rng.sample(["p", "q", "r"], rng.randrange(3))),
                   "nums": maybe([rng.choice([0, 1.5, 2]) for _ in range(rng.randrange(3))])}
        actions = [{"offer": {"kind": maybe(rng.choice(["deal", "bundle"])), "category": maybe(rng.choice(categories)),
                              "brands": maybe(rng.sample(brands, rng.randrange(3))), "pct": maybe(rng.choice([0, 10, 30]))},
                    "history": maybe({"shown": maybe(rng.randrange(4)), "clicked": maybe(rng.randrange(2))})}
                   for _ in range(rng.randrange(4))]
        contexts.append(_strip(context))
        chosen.append([_strip(a) for a in actions])
    return contexts, chosen


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v != "absent"}
    return value


def test_random_decisions_featurize_alike():
    rng = random.Random(3)
    contexts, chosen = _random_json(rng, 400)
    local = [k for k, actions in enumerate(chosen) for _ in range(max(1, len(actions)))]
    positions = [p for actions in chosen for p in range(max(1, len(actions)))]
    for space in SPACES:
        expected, got = _both(space, contexts, chosen, local, positions)
        _same(expected, got)


@pytest.mark.parametrize("contexts", [
    [{"user": {"age": 3}}, {"user": {"age": "three"}}],  # a number here, text there
    [{"when": "2026-11-22T10:00:00"}],  # read as a timestamp
    [{"items": [{"a": 1}]}],  # a list of objects
], ids=["mixed types", "timestamp", "list of objects"])
def test_shapes_it_does_not_cover_are_unsupported_and_the_retrain_takes_the_row_path(contexts, caplog):
    chosen = [[{"offer": {"kind": "deal"}}] for _ in contexts]
    context_texts, chosen_texts = _texts(contexts, chosen)
    local, positions = np.arange(len(contexts)), np.zeros(len(contexts), dtype=np.int64)
    with pytest.raises(columnar.Unsupported):
        columnar.rows(Encoder(FeatureSpace()), context_texts, chosen_texts, local, positions)
    logged = dataset.Logged(pa.array(context_texts), pa.array(chosen_texts), local, positions)
    with caplog.at_level(logging.INFO, logger=retrain.__name__):
        got = retrain._featurize(FeatureSpace(), logged, Encoder(FeatureSpace()))
    assert "row by row" in caplog.text
    parsed, actions = logged.parsed()
    _same(rows_of(Encoder(FeatureSpace()), parsed, actions, local), got)


def test_decisions_without_action_features_still_get_their_context_rows():
    contexts = [{"user": {"segment": "s"}, "time": {"hour": 6}}, {"page": {"category": "toys"}}]
    for chosen in ([[], []], [None, None], [[{}], [{}]]):
        context_texts = [json.dumps(c) for c in contexts]
        chosen_texts = [None if a is None else json.dumps(a) for a in chosen]
        got = columnar.rows(Encoder(FeatureSpace()), context_texts, chosen_texts, np.array([0, 1]), np.array([0, 0]))
        logged = dataset.Logged(pa.array(context_texts), pa.array(chosen_texts, pa.string()), np.array([0, 1]),
                                np.array([0, 0]))
        parsed, actions = logged.parsed()
        expected = rows_of(Encoder(FeatureSpace()), parsed, actions, logged.local)
        assert got.shape[0] == 2 and expected.nnz >= 4
        _same(expected, got)


def test_held_out_candidates_featurize_alike():
    logs = exploring_logs()
    examples = dataset.examples(dataset.dedupe(logs.decisions), dataset.reward_events(logs.events),
                                dataset.RewardRules(), logs.end)
    ids = list(dict.fromkeys(examples.decision_ids[-300:]))
    texts = dataset.candidate_texts(logs.decisions, ids)
    ids = [d for d in ids if d in texts]
    owners = [examples.owner[examples.decision_ids.index(d)] for d in ids]
    lists = [json.loads(texts[d]) for d in ids]
    owner = [k for k, cands in enumerate(lists) for _ in cands]
    positions = [p for cands in lists for p in range(len(cands))]
    for space in SPACES:
        expected = rows_of(Encoder(space), examples.contexts(owners),
                           [c.get("features") or {} for cands in lists for c in cands], owner)
        got = columnar.rows(Encoder(space), examples.context_texts(owners), [texts[d] for d in ids],
                            np.array(owner), np.array(positions), field="features")
        assert expected.shape[0] > 20 * len(ids)
        _same(expected, got)


def test_evaluation_takes_the_row_path_for_candidates_it_does_not_cover(caplog):
    from shared.learning.model import LinearModel

    contexts = [{"user": {"segment": "s"}}, {"user": {"segment": "t"}}]
    lists = [[{"offerId": "a", "features": {"offer": {"pct": 10}}}, {"offerId": "b", "features": None}],
             [{"offerId": "c", "features": {"offer": {"pct": "ten"}}}]]  # a number, then text
    model = LinearModel("m", FeatureSpace(), np.ones(FeatureSpace().width, dtype=np.float32), 0.0)
    held = retrain._Decisions(pa.array([json.dumps(c) for c in contexts]), pa.array([json.dumps(x) for x in lists]),
                              lists)
    with caplog.at_level(logging.INFO, logger=retrain.__name__):
        got = retrain._rows(model, held)
    assert "row by row" in caplog.text
    expected = rows_of(Encoder(FeatureSpace()), contexts, [c.get("features") or {} for x in lists for c in x],
                       [0, 0, 1])
    _same(expected, got)
