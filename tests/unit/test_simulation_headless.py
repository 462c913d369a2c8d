"""The headless simulation: reproducible click sequences, and policies that achieve the CTRs the world predicts.

The statistical bounds: each impression i is clicked with its true probability p_i, drawn from
a generator of its own, so given everything before it a click is a Bernoulli(p_i) draw and
clicks - sum(p_i) is a sum of martingale differences with variance sum p_i (1 - p_i) <= sum p_i.
For the oracle policy sum p_i is the run's `tally.oracle` (it shows the best candidate); for the
uniform random policy the expected click of impression i is the candidates' mean probability, so
the sum is `tally.random`. A test allows Z standard deviations of that conservative bound.
"""
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import catalog
from shared.simulation import headless, world
from shared.simulation.headless import Options

from .simulation_fakes import SMALL, default_snapshot, small_snapshot

Z = 4.0  # a two-sided 4-sigma bound fails by chance less than once in 15,000 runs
IMPRESSIONS = 3000


def run(policy, impressions=IMPRESSIONS, seed=3, users=300, **options):
    return headless.run(policy, Options(impressions=impressions, users=users, seed=seed, **options),
                        spec=SMALL, snapshot=small_snapshot())


@pytest.fixture(scope="module")
def oracle_run():
    return run("oracle")


@pytest.fixture(scope="module")
def random_run():
    return run("random")


def bound(expected_clicks: float) -> float:
    """Z standard deviations of the click count, with Var <= sum p (see the module doc)."""
    return Z * math.sqrt(expected_clicks)


@pytest.mark.parametrize("policy", ["baseline", "random"])
def test_the_same_seed_and_policy_give_the_same_click_sequence(policy):
    first, second = run(policy, impressions=1500), run(policy, impressions=1500)
    assert len(first.sequence) == 1500
    assert first.sequence == second.sequence
    assert first.tally == second.tally
    assert any(clicked for *_, clicked in first.sequence)  # the sequence holds clicks, not only misses


SEQUENCE_DIGEST = """
import hashlib, json
from tests.unit.simulation_fakes import SMALL, small_snapshot
from shared.simulation import headless
result = headless.run("random", headless.Options(impressions=800, users=300, seed=3), spec=SMALL,
                      snapshot=small_snapshot())
print(hashlib.sha256(json.dumps(result.sequence).encode()).hexdigest())
"""


def test_two_processes_give_the_same_click_sequence_whatever_their_hash_seed():
    """Nothing depends on the order of a set or dict of strings, which changes from process to process."""
    root = Path(__file__).resolve().parents[2]
    runs = [subprocess.Popen([sys.executable, "-c", SEQUENCE_DIGEST], cwd=root, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": str(hash_seed), "PYTHONPATH": str(root)})
            for hash_seed in (1, 2)]
    digests = [r.communicate(timeout=120)[0].strip() for r in runs]
    assert all(r.returncode == 0 for r in runs)
    here = run("random", impressions=800).sequence
    assert digests == [hashlib.sha256(json.dumps(here).encode()).hexdigest()] * 2


@pytest.mark.parametrize("policy", ["baseline", "random"])
def test_another_seed_gives_another_click_sequence(policy):
    assert run(policy, impressions=1500, seed=3).sequence != run(policy, impressions=1500, seed=4).sequence


def test_the_oracle_policy_shows_the_best_candidate_every_time(oracle_run):
    tally = oracle_run.tally
    assert tally.impressions == IMPRESSIONS
    assert tally.expected == pytest.approx(tally.oracle)


def test_the_oracle_policy_achieves_the_oracle_ctr(oracle_run, random_run):
    tally = oracle_run.tally
    allowed = bound(tally.oracle)
    assert abs(tally.clicks - tally.oracle) <= allowed, (tally.clicks, tally.oracle, allowed)
    # The bound means something: it leaves out the random CTR by far (and is narrower than 0.1 of CTR).
    assert (tally.oracle - allowed) / tally.impressions > 2 * oracle_run.rate("random")
    assert (tally.oracle - allowed) / tally.impressions > 2 * random_run.ctr
    assert 2 * allowed / tally.impressions < 0.1


def test_the_uniform_random_policy_achieves_the_random_ctr(random_run, oracle_run):
    tally = random_run.tally
    allowed = bound(tally.random)
    assert abs(tally.clicks - tally.random) <= allowed, (tally.clicks, tally.random, allowed)
    # The bound means something: even its top is well under half the oracle's CTR.
    assert (tally.random + allowed) / tally.impressions < 0.5 * random_run.rate("oracle")
    assert (tally.random + allowed) / tally.impressions < 0.5 * oracle_run.ctr
    # What a random policy shows is worth, on average, what the random CTR says.
    assert abs(tally.expected - tally.random) <= bound(tally.random)


def test_no_policy_beats_the_oracle_in_expectation():
    for result in (run("baseline", impressions=1000), run("random", impressions=1000)):
        assert result.tally.expected <= result.tally.oracle + 1e-9
        assert result.tally.random <= result.tally.oracle + 1e-9


def test_with_two_slots_each_slot_counts_one_impression():
    result = run("oracle", impressions=1000, behaviour=headless.Behaviour(slots=2))
    assert result.tally.impressions >= 1000 and result.tally.impressions % 2 == 0
    assert result.tally.expected == pytest.approx(result.tally.oracle)  # the two best, slot by slot
    assert result.tally.impressions == len(result.sequence)


def test_the_curve_has_a_point_per_window_and_ends_at_the_run_ctr():
    result = run("baseline", impressions=2000, window=500)
    assert [p.impressions for p in result.curve] == [500, 1000, 1500, 2000]
    assert result.curve[-1].cumulative_ctr == pytest.approx(result.ctr)
    assert sum(p.ctr * 500 for p in result.curve) == pytest.approx(result.tally.clicks)
    assert result.to_dict()["impressions"] == 2000 and len(result.to_dict()["curve"]) == 4


def test_a_simulator_goes_on_where_it_stopped():
    snapshot = small_snapshot()
    truth = world.World(world.WorldParams(), snapshot.products, snapshot.offers, snapshot.users)
    options = Options(impressions=1000, users=300, seed=3)
    simulator = headless.Simulator(truth, snapshot, headless.chooser("baseline", truth, 3), options, "baseline")
    simulator.run(400)
    seen = []
    simulator.on_events = seen.extend
    resumed = simulator.run(600)
    assert resumed.tally.impressions == 1000
    assert resumed.sequence == run("baseline", impressions=1000).sequence
    assert any(e.type == "offerloop.offer.shown" for e in seen)


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown policy"):
        headless.chooser("clairvoyant", None, 1)


@pytest.fixture(scope="module")
def default_world_run():
    """The baseline in the default world (WorldParams(), the default CatalogSpec()); tally.random and
    tally.oracle are the expected CTRs of a random choice and of the oracle for the same impressions."""
    return headless.run("baseline", Options(impressions=4000, users=1000), params=world.WorldParams(),
                        spec=catalog.CatalogSpec(), snapshot=default_snapshot())


def test_in_the_default_world_the_oracle_ctr_is_at_least_twice_the_random_ctr(default_world_run):
    assert default_world_run.tally.impressions == 4000
    assert default_world_run.rate("oracle") >= 2 * default_world_run.rate("random")


def test_in_the_default_world_the_random_ctr_is_a_few_percent(default_world_run):
    assert 0.01 < default_world_run.rate("random") < 0.08
