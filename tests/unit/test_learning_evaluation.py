"""Offline evaluation: IPS on a random policy's logs finds a fixed policy's true CTR; the estimators agree."""
import numpy as np

from shared.learning import dataset, evaluation

from .learning_fakes import random_logs


def _random_log_events():
    logs = random_logs()
    out = dataset.examples(logs.decisions, dataset.reward_events(logs.events), dataset.RewardRules(), logs.end)
    candidates = dataset.candidates_of(logs.decisions, out.decision_ids)
    users = dict(zip(logs.decisions.column("decisionId").to_pylist(), logs.decisions.column("userId").to_pylist()))
    return logs, out, candidates, users


def test_ips_on_uniformly_random_logs_contains_the_true_ctr_of_the_baseline_policy():
    logs, out, candidates, users = _random_log_events()
    world = logs.world
    matches, truth = [], []
    contexts = out.contexts(out.owner)
    for i, decision in enumerate(out.decision_ids):
        context = contexts[i]
        target = candidates[decision][0]["offerId"]  # the baseline's choice: its best-ranked candidate
        matches.append(out.offer_ids[i] == target)
        page = world.products.get((context.get("page") or {}).get("productId"))
        truth.append(world.click_probability(users[decision], world.offers[target], context["time"]["hour"], page))
    assert 0.005 < np.mean(out.probabilities) < 0.1  # 1/K with dozens of candidates
    estimates = evaluation.estimate(evaluation.Logged(out.rewards, out.probabilities),
                                    evaluation.Target(np.array(matches)), rounds=1000)
    true_ctr = float(np.mean(truth))
    ips = estimates["ips"]
    assert ips.contains(true_ctr), (ips, true_ctr)
    assert ips.high - ips.low < 0.2  # an interval that says something
    assert estimates["snips"].contains(true_ctr)
    assert true_ctr > 2 * float(np.mean(out.rewards))  # the baseline is far better than the random logger


def test_a_policy_compared_with_itself_differs_by_exactly_nothing():
    rng = np.random.default_rng(1)
    logged = evaluation.Logged(rng.integers(0, 2, 500).astype(float), np.full(500, 0.25), np.full(500, 0.2))
    target = evaluation.Target(rng.random(500) < 0.25, np.full(500, 0.3))
    result = evaluation.compare(logged, target, target, rounds=200)
    assert result["difference"]["dr"].estimate == 0 and result["difference"]["dr"].low == 0
    assert set(result["candidate"]) == {"ips", "snips", "dr"}


def test_doubly_robust_with_a_perfect_reward_model_has_no_spread_from_the_logs():
    logged = evaluation.Logged(np.array([1.0, 0.0, 1.0, 0.0]), np.full(4, 0.5), np.array([1.0, 0.0, 1.0, 0.0]))
    target = evaluation.Target(np.array([True, False, False, True]), np.array([0.5, 0.5, 0.5, 0.5]))
    dr = evaluation.estimate(logged, target, rounds=100)["dr"]
    assert dr.estimate == dr.low == dr.high == 0.5
