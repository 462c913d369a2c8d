"""A queue-driven run: the start request's validation, and what the queue functions do with fake ports."""
import json
import random
from datetime import timedelta

import pytest

from shared import events
from shared.catalog_cache import EMPTY
from shared.simulation import run, service, shopper
from shared.simulation.run import InvalidStart
from shared.simulation.shopper import Outcome, Step, Tally

from .simulation_fakes import NOW, FakeDecide, FakeRuns, Posted, small_snapshot


def invalid_fields(body):
    with pytest.raises(InvalidStart) as raised:
        run.configure(body, NOW, default_seed=1)
    return [e["field"] for e in raised.value.errors]


@pytest.mark.parametrize("body, field", [
    ({"users": 0}, "users"),
    ({"users": 10_001}, "users"),
    ({"users": "10"}, "users"),
    ({}, "users"),
    ({"users": 10, "rate": True}, "rate"),
    ({"users": 10, "rate": "fast"}, "rate"),
    ({"users": 10, "rate": -1}, "rate"),
    ({"users": 10, "slots": 11}, "slots"),
    ({"users": 10, "seed": -1}, "seed"),
    ({"users": 10, "colour": "blue"}, "colour"),
    ({"users": 10, "world": {"gravity": 9.8}}, "world"),
    ({"users": 10, "world": {"base_rate": 2}}, "world"),
    ({"users": 10, "world": {"base_rate": "high"}}, "world"),
    # A weight that is not a finite number would fail every action of the run, not the start.
    ({"users": 10, "world": {"category_weight": "big"}}, "world"),
    ({"users": 10, "world": {"hour_weight": float("nan")}}, "world"),  # json.loads accepts NaN
    ({"users": 10, "world": {"discount_weight": True}}, "world"),
    ({"users": 10, "world": {"seed": "x"}}, "world"),
    ({"users": 10, "seed": True}, "seed"),
    ({"users": True}, "users"),
])
def test_an_invalid_start_request_names_the_bad_field(body, field):
    assert invalid_fields(body) == [field]


def test_an_unknown_world_parameter_is_named_in_the_message():
    with pytest.raises(InvalidStart, match="gravity"):
        run.configure({"users": 10, "world": {"gravity": 9.8}}, NOW, default_seed=1)


def test_a_body_that_is_not_an_object_is_refused():
    assert invalid_fields([{"users": 10}]) == [""]
    assert invalid_fields(None) == [""]


def test_a_valid_start_request_makes_a_run_config():
    config = run.configure({"users": 100, "rate": 20, "slots": 2, "world": {"fidelity": 0.9}}, NOW, default_seed=5)
    assert (config.users, config.rate, config.slots, config.seed, config.state) == (100, 20.0, 2, 5, "running")
    assert config.params.seed == 5 and config.params.fidelity == 0.9  # the world's seed is the run's
    assert config.behaviour.slots == 2
    assert config.thinkSeconds == pytest.approx(shopper.Timing.for_rate(100, 20, config.behaviour).think_seconds,
                                                abs=1e-3)
    assert config.startedAt == "2026-01-05T10:00:00Z"
    assert run.configure({"users": 100, "seed": 9}, NOW, default_seed=5).seed == 9
    assert run.configure({"users": 100}, NOW, default_seed=5).rate == run.DEFAULT_RATE


def test_a_zero_rate_run_does_not_wait():
    config = run.configure({"users": 10, "rate": 0}, NOW, default_seed=1)
    assert (config.thinkSeconds, config.returnSeconds) == (0.0, 0.0)


def test_rates_compare_the_achieved_ctr_with_random_and_oracle():
    tally = Tally(actions=12, impressions=10, clicks=2, expected=1.5, random=0.5, oracle=3.0)
    rates = run.rates(tally)
    assert rates["ctr"] == 0.2 and rates["randomCtr"] == 0.05 and rates["oracleCtr"] == 0.3
    assert rates["liftFraction"] == pytest.approx((0.2 - 0.05) / (0.3 - 0.05))
    assert run.rates(Tally())["ctr"] is None


class Ports:
    """service.Ports over fakes, with what each port saw."""

    def __init__(self, runs=None, snapshot=None):
        self.runs = runs or FakeRuns()
        self.enqueued: list[tuple[Step, float]] = []
        self.cleared = 0
        self.post = Posted()
        self.decide = FakeDecide([o.id for o in small_snapshot().offers[:5]])
        self.snapshot = snapshot or small_snapshot()

    def clear(self):
        self.cleared += 1

    @property
    def ports(self) -> service.Ports:
        return service.Ports(runs=self.runs, enqueue=lambda step, delay: self.enqueued.append((step, delay)),
                             clear=self.clear, catalog=lambda: self.snapshot, decide=self.decide, post=self.post,
                             clock=lambda: NOW)


def running(body=None):
    fakes = Ports()
    config = service.start(body or {"users": 20, "rate": 10, "seed": 3}, fakes.ports)
    fakes.enqueued.clear()
    return fakes, config


def a_step(config, **fields):
    user = shopper.pick_users(list(small_snapshot().users), config.users, config.seed)[0]
    return Step(**{"runId": config.runId, "userId": user, "session": 0, "step": 0, **fields})


def test_start_puts_each_users_first_step_on_the_queue():
    fakes = Ports()
    config = service.start({"users": 20, "rate": 10, "seed": 3}, fakes.ports)
    assert fakes.runs.current() == config
    steps = [step for step, _ in fakes.enqueued]
    assert sorted(s.userId for s in steps) == sorted(shopper.pick_users(list(small_snapshot().users), 20, 3))
    assert all((s.runId, s.session, s.step, s.action) == (config.runId, 0, 0, "view") for s in steps)
    for step, delay in fakes.enqueued:  # seeded per user, so a restarted run starts the same way
        rng = shopper.rng_for(config.seed, step.userId, 0, 0, "start")
        assert delay == config.timing.first_delay(rng, config.behaviour) and delay >= 0
    assert len({delay for _, delay in fakes.enqueued}) == 20  # spread out, not all at once
    with pytest.raises(run.AlreadyRunning):
        service.start({"users": 5}, fakes.ports)


def test_a_zero_rate_run_starts_every_user_at_once():
    fakes = Ports()
    service.start({"users": 20, "rate": 0}, fakes.ports)
    assert [delay for _, delay in fakes.enqueued] == [0.0] * 20


def test_start_refuses_more_users_than_the_catalog_has_and_an_empty_catalog():
    with pytest.raises(InvalidStart) as raised:
        service.start({"users": 2001}, Ports().ports)
    assert raised.value.errors[0]["field"] == "users"
    empty = Ports(snapshot=EMPTY)
    with pytest.raises(service.NoCatalog):
        service.start({"users": 1}, empty.ports)
    assert empty.runs.current() is None and empty.enqueued == []


@pytest.mark.parametrize("text", [
    "", "not json", "[]", "{}", '{"v": 1}', '{"v": 2, "runId": "r", "userId": "u", "session": 0, "step": 0}',
    '{"runId": "r", "userId": "u", "session": "0", "step": 0}',
    '{"runId": "r", "userId": "u", "session": 0, "step": 0, "unexpected": true}',
    '{"runId": "r", "userId": "u", "session": 0, "step": 0, "action": "dance"}',
])
def test_perform_and_follow_refuse_a_malformed_message(text):
    fakes, _ = running()
    with pytest.raises(service.BadMessage):
        service.perform(text, fakes.ports)
    with pytest.raises(service.BadMessage):
        service.follow(text, fakes.ports)
    assert fakes.post.batches == [] and fakes.runs.recorded == [] and fakes.enqueued == []


def test_an_outcome_is_not_a_step():
    fakes, config = running()
    outcome = Outcome(runId=config.runId, userId="u1", session=0, step=0, productId="p1")
    with pytest.raises(service.BadMessage):
        service.perform(outcome.model_dump_json(), fakes.ports)


def test_perform_runs_a_step_of_the_current_run_and_counts_it():
    fakes, config = running()
    step = a_step(config)
    answer = service.perform(step.model_dump_json(), fakes.ports)
    outcome = Outcome.model_validate_json(answer)
    assert (outcome.runId, outcome.userId, outcome.session, outcome.step) == (config.runId, step.userId, 0, 0)
    assert outcome.impressions == 1
    posted = [events.parse(raw, events.WEBSITE_TYPES) for raw in fakes.post.events]
    assert posted[0].type == events.PRODUCT_VIEWED and posted[0].data.productId == outcome.productId
    assert fakes.decide.calls == [(step.userId, outcome.productId, 1)]
    [(run_id, tally, at)] = fakes.runs.recorded
    assert (run_id, tally.actions, tally.impressions, tally.sessions, at) == (config.runId, 1, 1, 1, NOW)


@pytest.mark.parametrize("stale", ["another run", "stopped run"])
def test_perform_of_a_step_whose_run_is_not_active_posts_nothing(stale):
    fakes, config = running()
    if stale == "stopped run":
        service.stop(fakes.ports)
        step = a_step(config)
    else:
        step = a_step(config, runId="not-the-current-run")
    assert service.perform(step.model_dump_json(), fakes.ports) is None
    assert fakes.post.batches == [] and fakes.decide.calls == [] and fakes.runs.recorded == []


def test_follow_enqueues_the_next_step_after_its_delay():
    fakes, config = running()
    outcome = Outcome(runId=config.runId, userId="u1", session=0, step=0, productId="p1")
    service.follow(outcome.model_dump_json(), fakes.ports)
    assert fakes.enqueued == [shopper.schedule(outcome, config.behaviour, config.timing, config.seed)]


def test_follow_of_an_outcome_whose_run_ended_enqueues_nothing():
    fakes, config = running()
    service.stop(fakes.ports)
    outcome = Outcome(runId=config.runId, userId="u1", session=0, step=0, productId="p1")
    service.follow(outcome.model_dump_json(), fakes.ports)
    assert fakes.enqueued == []


def test_stop_ends_the_run_clears_the_queues_and_status_keeps_its_counters():
    fakes, config = running()
    service.perform(a_step(config).model_dump_json(), fakes.ports)
    stopped = service.stop(fakes.ports)
    assert stopped.state == "stopped" and stopped.stoppedAt == "2026-01-05T10:00:00Z"
    assert fakes.cleared == 1 and fakes.runs.current() is None
    assert service.stop(fakes.ports) is None
    status = service.status(fakes.ports)
    assert status["state"] == "stopped" and status["runId"] == config.runId and status["actions"] == 1
    assert service.status(Ports().ports) == {"state": "idle", "runId": None}


def test_a_whole_session_through_perform_and_follow_is_the_same_as_acting_it_directly():
    """The queue functions only carry the state: the steps they run are shopper.act's."""
    fakes, config = running({"users": 5, "rate": 0, "seed": 8})
    text = a_step(config).model_dump_json()
    for _ in range(10):
        answer = service.perform(text, fakes.ports)
        service.follow(answer, fakes.ports)
        (nxt, delay), = fakes.enqueued
        assert delay == 0.0  # rate 0: no waiting
        fakes.enqueued.clear()
        text = nxt.model_dump_json()
    assert len(fakes.runs.recorded) == 10
    assert sum(t.actions for _, t, _ in fakes.runs.recorded) == 10
    ids = [e["id"] for e in fakes.post.events]
    assert len(ids) == len(set(ids))


def test_queue_delay_rounds_at_random_keeping_the_mean():
    rng = random.Random(1)
    delays = [service.queue_delay(2.25, rng) for _ in range(4000)]
    assert set(delays) == {2, 3}
    assert sum(delays) / len(delays) == pytest.approx(2.25, abs=0.03)  # sd of the mean ~0.007
    assert service.queue_delay(0.0) == 0


def test_run_config_round_trips_as_json():
    config = run.configure({"users": 3, "world": {"hour_weight": 0.5}}, NOW, default_seed=2)
    again = run.RunConfig.model_validate_json(config.model_dump_json())
    assert again == config and again.params.hour_weight == 0.5
    assert json.loads(config.model_dump_json())["world"]["seed"] == 2
    assert run.stopped(config, NOW + timedelta(minutes=1)).stoppedAt == "2026-01-05T10:01:00Z"
