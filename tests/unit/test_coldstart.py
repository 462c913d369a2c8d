"""Cold-start lists: popularity per segment and globally, from Redis with an in-process fallback."""
import json
from collections import Counter
from datetime import timedelta

from shared import coldstart

from .offer_fakes import NOW, offer

SEGMENTS = Counter({"student": 30, "premium": 10})


class FakeRedis:
    def __init__(self, values=None, failing=False):
        self.values = dict(values or {})
        self.failing = failing
        self.calls = 0

    def mget(self, keys):
        self.calls += 1
        if self.failing:
            raise ConnectionError("redis is down")
        return [self.values.get(k) for k in keys]

    def mset(self, mapping):
        self.values.update(mapping)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_bigger_discounts_rank_higher_until_statistics_say_otherwise():
    offers = [offer("o10", discount=10), offer("o30", discount=30)]
    assert coldstart.popularity(offers, SEGMENTS, NOW)[None] == ["o10", "o30"][::-1]
    clicked = {"o10": (1000, 200), "o30": (1000, 5)}  # 20% vs 0.5% observed
    assert coldstart.popularity(offers, SEGMENTS, NOW, clicked)[None] == ["o10", "o30"]


def test_targeted_offers_appear_only_in_their_segments_lists():
    offers = [offer("o-all", discount=20), offer("o-premium", discount=10, segments=["premium"])]
    lists = coldstart.popularity(offers, SEGMENTS, NOW)
    assert "o-premium" not in lists["student"]
    assert lists["premium"][0] == "o-premium"  # targeted offers get a boost where they apply
    assert set(lists) == {"student", "premium", None}


def test_expired_offers_and_offers_that_need_affinity_are_left_out():
    offers = [offer("o-ok"), offer("o-over", valid_to=NOW - timedelta(hours=1)),
              offer("o-loyal", minCategoryAffinity=1.0)]
    assert coldstart.popularity(offers, SEGMENTS, NOW)[None] == ["o-ok"]


def test_without_users_the_global_list_still_ranks_the_untargeted_offers():
    lists = coldstart.popularity([offer("o1"), offer("o2", segments=["student"])], Counter(), NOW)
    assert lists == {None: ["o1"]}


def test_the_job_writes_every_list_as_json_under_its_key():
    redis = FakeRedis()
    coldstart.run([offer("o1"), offer("o2", discount=50)], SEGMENTS, {}, redis.mset, NOW)
    assert json.loads(redis.values["offerloop:coldstart:global"]) == ["o2", "o1"]
    assert json.loads(redis.values["offerloop:coldstart:segment:student"]) == ["o2", "o1"]


def test_a_segment_reads_its_own_list_and_falls_back_to_the_global_one():
    redis = FakeRedis({coldstart.segment_key("student"): '["s1"]', coldstart.GLOBAL_KEY: '["g1"]'})
    lists = coldstart.PopularityLists(redis.mget, fallback=lambda segment: ["local"])
    assert lists.get("student") == (["s1"], "redis")
    assert lists.get("premium") == (["g1"], "redis")
    assert lists.get(None) == (["g1"], "redis")


def test_lists_are_kept_for_their_ttl():
    redis, clock = FakeRedis({coldstart.GLOBAL_KEY: '["g1"]'}), Clock()
    lists = coldstart.PopularityLists(redis.mget, lambda s: [], ttl=30, clock=clock)
    lists.get(None)
    lists.get(None)
    assert redis.calls == 1
    clock.now += 31
    lists.get(None)
    assert redis.calls == 2


def test_when_redis_fails_the_in_process_list_answers_and_redis_is_retried_later():
    redis, clock = FakeRedis(failing=True), Clock()
    lists = coldstart.PopularityLists(redis.mget, lambda segment: [f"local-{segment}"], retry_after=5, clock=clock)
    assert lists.get("student") == (["local-student"], "fallback")
    assert lists.get("student") == (["local-student"], "fallback")
    assert redis.calls == 1 and lists.failures == 1  # not one failing call per request
    redis.failing, redis.values = False, {coldstart.GLOBAL_KEY: '["g1"]'}
    clock.now += 6
    assert lists.get("student") == (["g1"], "redis")


def test_lists_not_computed_yet_fall_back_without_counting_a_failure():
    lists = coldstart.PopularityLists(FakeRedis().mget, lambda segment: ["local"])
    assert lists.get("student") == (["local"], "fallback") and lists.failures == 0
