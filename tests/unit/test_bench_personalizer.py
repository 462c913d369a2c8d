"""bench/personalizer.py's pure pieces (the generated requests, the figures, the host's environment)
and bench/load.py's open loop, which it drives the client with."""
from __future__ import annotations

import asyncio
import json
import os
import random

import pytest

from bench import personalizer as bench
from bench.load import LoadResult, open_loop
from shared.personalizer.errors import parse
from shared.personalizer.requests import RankRequest


def test_the_catalogue_and_requests_are_the_same_for_a_seed_and_have_realistic_feature_counts():
    items = bench.catalogue(bench.CATALOGUE, random.Random(1))
    assert items == bench.catalogue(bench.CATALOGUE, random.Random(1))
    assert len({i["id"] for i in items}) == bench.CATALOGUE
    assert {bench.feature_count(i["features"]) for i in items} == {10}
    request = bench.rank_request(random.Random(2), items, 50)
    assert request == bench.rank_request(random.Random(2), items, 50)
    assert bench.feature_count(request["contextFeatures"]) == 13
    assert len({a["id"] for a in request["actions"]}) == 50


@pytest.mark.parametrize("actions", bench.ACTION_COUNTS)
def test_the_requests_are_valid_rank_requests_for_the_servers_own_validation(actions):
    items = bench.catalogue(bench.CATALOGUE, random.Random(3))
    request = bench.rank_request(random.Random(4), items, actions)
    parsed = parse(RankRequest, json.dumps(request).encode())
    assert len(parsed.candidates()) == actions
    assert all(isinstance(o, dict) and len(o) == 1 for o in request["contextFeatures"])  # one namespace each


def test_the_training_world_rewards_the_segments_favourite_category():
    items = bench.catalogue(16, random.Random(5))
    request = {"contextFeatures": [{"user": {"segment": "student"}}], "actions": items}
    favourite = bench.FAVOURITE["student"]
    by_category = {bench.click_probability(request, i["id"]): i["features"][0]["item"]["category"] == favourite
                   for i in items}
    assert by_category == {0.6: True, 0.1: False}


def test_the_summary_adds_the_mean_to_the_load_figures():
    figures = bench.summary(LoadResult(100, 2.0, 4, 3, 1, [10.0, 20.0, 60.0]), "rank_10actions")
    assert figures["rank_10actions_mean_ms"] == 30.0
    assert figures["rank_10actions_p50_ms"] == 20.0 and figures["rank_10actions_errors"] == 1
    assert figures["rank_10actions_achieved_rps"] == 1.5


def test_environment_sets_the_variables_and_puts_them_back(monkeypatch):
    monkeypatch.setenv("BENCH_TEST_KEPT", "before")
    monkeypatch.delenv("BENCH_TEST_NEW", raising=False)
    with bench.environment({"BENCH_TEST_KEPT": "inside", "BENCH_TEST_NEW": "1"}):
        assert os.environ["BENCH_TEST_KEPT"] == "inside" and os.environ["BENCH_TEST_NEW"] == "1"
    assert os.environ["BENCH_TEST_KEPT"] == "before" and "BENCH_TEST_NEW" not in os.environ


def test_the_open_loop_sends_on_schedule_whatever_earlier_calls_take_and_counts_failures():
    async def send(i: int) -> bool:
        await asyncio.sleep(0.2)  # every call is slower than the interval between them
        return i % 4 != 0

    result = asyncio.run(open_loop(send, rate=100, seconds=0.4, label="test"))
    assert result.sent == 40 and result.errors == 10 and result.ok == 30
    assert result.duration_s < 1.0  # a closed loop would take 40 x 0.2 s
    assert min(result.latencies_ms) >= 200  # measured from when each call was due
