"""Exploration: the logged probabilities are the probabilities the draws actually have."""
import random
from collections import Counter
from datetime import datetime, timezone

import pytest

from shared import policy
from shared.catalog import Offer, User
from shared.learning.explore import APPRENTICE, Exploration, LearnedChooser, Serving, pick


def test_epsilon_greedy_logs_one_minus_epsilon_plus_epsilon_over_k_for_the_best():
    scores, exploration, rng = [0.1, 0.5, 0.2, 0.3], Exploration(epsilon=0.2), random.Random(1)
    draws = [pick(scores, 1, exploration, rng)[0] for _ in range(20000)]
    probability = {i: p for i, p in draws}
    assert probability[1] == pytest.approx(0.8 + 0.2 / 4) and probability[0] == pytest.approx(0.05)
    counts = Counter(i for i, _ in draws)
    for index, p in probability.items():  # the frequencies match the logged probabilities
        assert abs(counts[index] / 20000 - p) < 4 * (p * (1 - p) / 20000) ** 0.5 + 1e-3


def test_later_slots_draw_from_the_rest_with_conditional_probabilities():
    chosen = pick([0.9, 0.8, 0.1], 3, Exploration(epsilon=0.0), random.Random(2))
    assert chosen == [(0, 1.0), (1, 1.0), (2, 1.0)]
    chosen = pick([0.9, 0.8, 0.1], 2, Exploration(epsilon=1.0), random.Random(3))
    assert len({i for i, _ in chosen}) == 2 and [p for _, p in chosen] == [pytest.approx(1 / 3), pytest.approx(1 / 2)]


def test_softmax_probabilities_follow_the_scores():
    exploration, rng = Exploration(policy="softmax", softmax_lambda=10.0), random.Random(4)
    draws = [pick([0.1, 0.2], 1, exploration, rng)[0] for _ in range(20000)]
    probability = dict(draws)
    assert probability[1] == pytest.approx(1 / (1 + 2.718281828 ** -1), rel=1e-6)
    assert sum(probability.values()) == pytest.approx(1.0)
    assert abs(Counter(i for i, _ in draws)[1] / 20000 - probability[1]) < 0.02


def test_bad_exploration_settings_are_refused():
    with pytest.raises(ValueError):
        Exploration(policy="thompson")
    with pytest.raises(ValueError):
        Exploration(epsilon=1.5)


def _candidates(n=5):
    offers = [Offer.from_doc({"id": f"o{i}", "title": f"Offer {i}", "kind": "free_shipping", "minBasket": 50,
                              "validFrom": "2026-01-01T00:00:00Z", "validTo": "2027-01-01T00:00:00Z"})
              for i in range(n)]
    return [policy.Scored(o, 1.0 - i / 10, {"offer": {"kind": o.kind}}) for i, o in enumerate(offers)]


def test_without_a_model_the_baseline_ranks_and_is_explored():
    context = policy.Context(User("u1"), datetime(2026, 1, 5, tzinfo=timezone.utc))
    chooser = LearnedChooser(lambda: Serving(None), lambda: Exploration(epsilon=0.2), random.Random(5))
    choices = [chooser(context, _candidates(), 1) for _ in range(500)]
    assert {c.model_version for c in choices} == {policy.MODEL_VERSION}
    best = [c for c in choices if c.chosen[0][0].offer.id == "o0"]
    assert best and all(c.chosen[0][1] == pytest.approx(0.84) for c in best)
    assert any(c.chosen[0][0].offer.id != "o0" for c in choices)  # 20% exploration shows others
    assert choices[0].exploration == {"policy": "epsilon-greedy", "epsilon": 0.2}


def test_apprentice_mode_shows_the_baseline_without_exploring():
    context = policy.Context(User("u1"), datetime(2026, 1, 5, tzinfo=timezone.utc))
    chooser = LearnedChooser(lambda: Serving(None, apprentice=True), lambda: Exploration(epsilon=0.5))
    choice = chooser(context, _candidates(), 2)
    assert [(s.offer.id, p) for s, p in choice.chosen] == [("o0", 1.0), ("o1", 1.0)]
    assert choice.exploration["policy"] == APPRENTICE
