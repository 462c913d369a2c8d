"""The simulation's run store against the session's Redis: one current run, exact counters under
concurrency, the rate window and the per-minute curve, and stopping."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from shared import cache, settings
from shared.simulation import run
from shared.simulation.shopper import Tally
from shared.simulation.store import PREFIX, RunStore

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 3, 2, 11, 57, 10, tzinfo=timezone.utc)  # a run's start; its minute is 11:57
NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=timezone.utc)


@pytest.fixture
def redis_client(stack):
    client = cache.redis_client(settings.load(stack.settings).redis_url)

    def wipe() -> None:
        keys = list(client.scan_iter(f"{PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)

    wipe()  # the store's keys are fixed; the e2e simulation tests use them too
    yield client
    wipe()


@pytest.fixture
def store(redis_client) -> RunStore:
    return RunStore(lambda: redis_client)


def config(at: datetime = T0, users: int = 5) -> run.RunConfig:
    return run.configure({"users": users, "rate": 0, "seed": 7}, at, default_seed=0)


def test_a_second_begin_while_a_run_is_current_is_already_running(store):
    first, second = config(), config()
    store.begin(first)
    with pytest.raises(run.AlreadyRunning) as raised:
        store.begin(second)
    assert raised.value.run_id == first.runId
    assert store.current() == first and store.latest() == first
    assert store.active(first.runId) is not None and store.active(second.runId) is None


def test_records_from_many_threads_add_up_exactly(store):
    cfg = config()
    store.begin(cfg)
    threads, each = 8, 200
    at = NOW - timedelta(seconds=3)

    def record(thread: int) -> None:
        for i in range(each):
            store.record(cfg.runId, Tally(actions=1, impressions=1, clicks=(thread + i) % 2, expected=0.125,
                                          random=0.0625, oracle=0.25, sessions=1 if i == 0 else 0), at)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(record, range(threads)))
    totals, recent, curve = store.counters(cfg, NOW)
    n = threads * each
    # Binary fractions, so the float sums are exact too.
    assert totals == Tally(actions=n, impressions=n, clicks=n // 2, expected=n * 0.125, random=n * 0.0625,
                           oracle=n * 0.25, sessions=threads)
    assert recent == n
    assert [t for m, t in curve if m == "2026-03-02T12:00:00Z"] == [totals]


def test_counters_give_totals_the_actions_of_the_rate_window_and_the_curve_per_minute(store):
    cfg = config()
    store.begin(cfg)
    one = lambda clicks=0: Tally(actions=1, impressions=1, clicks=clicks, expected=0.5, random=0.25,  # noqa: E731
                                 oracle=0.75)
    store.record(cfg.runId, one(1), T0 + timedelta(seconds=10))  # 11:57:20
    store.record(cfg.runId, one(), datetime(2026, 3, 2, 11, 58, 40, tzinfo=timezone.utc))
    for second in (21, 25, 25, 29):  # inside the window: the complete seconds before NOW's
        store.record(cfg.runId, one(int(second == 25)), NOW.replace(second=second))
    store.record(cfg.runId, one(), NOW)  # the current second is not complete: left out of the rate
    store.record(cfg.runId, one(), NOW - timedelta(seconds=run.RATE_WINDOW_SECONDS + 1))  # 12:00:19, too old
    store.record(cfg.runId, Tally(actions=1), NOW.replace(second=22))  # an action without an impression

    totals, recent, curve = store.counters(cfg, NOW)
    assert (totals.actions, totals.impressions, totals.clicks) == (9, 8, 3)
    assert (totals.expected, totals.random, totals.oracle) == (4.0, 2.0, 6.0)
    assert recent == 5  # 21, 22, 25, 25, 29
    assert [m for m, _ in curve] == ["2026-03-02T11:57:00Z", "2026-03-02T11:58:00Z", "2026-03-02T11:59:00Z",
                                     "2026-03-02T12:00:00Z"]
    assert [(t.actions, t.impressions, t.clicks) for _, t in curve] == [(1, 1, 1), (1, 1, 0), (0, 0, 0), (7, 6, 2)]

    body = run.status(cfg, totals, recent, curve)
    assert body["state"] == "running" and body["actions"] == 9 and body["clicks"] == 3
    assert body["ctr"] == 3 / 8 and body["randomCtr"] == 0.25 and body["oracleCtr"] == 0.75
    assert body["actionsPerSecond"] == pytest.approx(5 / (run.RATE_WINDOW_SECONDS - 1))
    assert [p["minute"] for p in body["curve"]] == ["2026-03-02T11:57:00Z", "2026-03-02T11:58:00Z",
                                                    "2026-03-02T12:00:00Z"]  # minutes without impressions left out


def test_end_clears_the_current_run_but_latest_still_reports_it(store):
    cfg = config()
    store.begin(cfg)
    store.record(cfg.runId, Tally(actions=2, impressions=2, clicks=1), NOW - timedelta(seconds=2))
    ended = run.stopped(cfg, NOW)
    store.end(ended)
    assert store.current() is None
    assert store.latest() == ended and ended.state == "stopped" and ended.stoppedAt == "2026-03-02T12:00:30Z"
    assert store.active(cfg.runId) is None
    totals, _, curve = store.counters(ended, NOW + timedelta(hours=1))  # the curve ends where the run did
    assert (totals.actions, totals.clicks) == (2, 1) and curve[-1][0] == "2026-03-02T12:00:00Z"
    successor = config(NOW + timedelta(seconds=5))
    store.begin(successor)  # the slot is free again
    assert store.current() == successor


def test_ending_an_old_run_leaves_a_newer_current_run_alone(store):
    old = config()
    store.begin(old)
    store.end(run.stopped(old, NOW))
    newer = config(NOW)
    store.begin(newer)
    store.end(run.stopped(old, NOW + timedelta(seconds=1)))  # a late second stop of the old run
    assert store.current() == newer and store.latest() == newer
    assert store.active(newer.runId) is not None
    with pytest.raises(run.AlreadyRunning):
        store.begin(config(NOW))
