"""Rewards joined to decisions with Personalizer's semantics: wait time, aggregation, default reward."""
from datetime import datetime, timedelta, timezone

import pytest

from shared import events as ev
from shared.learning import dataset
from shared.learning.dataset import RewardRules

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def shown(decision, at, offers=("o1",), user="u1"):
    data = ev.OfferShownV1(decisionId=decision, context={"user": {"segment": "student"}},
                           candidates=[ev.Candidate(offerId=o, features={"offer": {"kind": "bundle"}})
                                       for o in (*offers, "o9")],
                           chosen=[ev.Chosen(offerId=o, slot=i, probability=0.5) for i, o in enumerate(offers)],
                           modelVersion="baseline-1", exploration=ev.Exploration(policy="epsilon-greedy", epsilon=0.2))
    return ev.new(ev.OFFER_SHOWN, user, data, source="/t", id=decision, time=at).to_dict()


def click(decision, offer, at, user="u1"):
    return ev.new(ev.OFFER_CLICKED, user, ev.OfferClickedV1(offerId=offer, decisionId=decision), source="/t",
                  time=at).to_dict()


def reward(decision, value, at, offer=None, user="u1"):
    data = ev.RewardReceivedV1(decisionId=decision, value=value, offerId=offer)
    return ev.new(ev.REWARD_RECEIVED, user, data, source="/t", time=at).to_dict()


def join(records, rules=RewardRules(), as_of=T0 + timedelta(hours=1)):
    events, decisions = dataset.tables(records)
    out = dataset.examples(decisions, dataset.reward_events(events), rules, as_of)
    return {(d, o): r for d, o, r in zip(out.decision_ids, out.offer_ids, out.rewards)}, out


def test_a_click_within_the_wait_time_is_a_reward_of_one_and_a_late_one_counts_for_nothing():
    rewards, _ = join([shown("d1", T0), click("d1", "o1", T0 + timedelta(minutes=9)),
                       shown("d2", T0), click("d2", "o1", T0 + timedelta(minutes=11)), shown("d3", T0)])
    assert rewards == {("d1", "o1"): 1.0, ("d2", "o1"): 0.0, ("d3", "o1"): 0.0}


def test_the_default_reward_goes_to_decisions_without_one():
    rewards, out = join([shown("d1", T0), shown("d2", T0), click("d2", "o1", T0)], RewardRules(default=-0.25))
    assert rewards == {("d1", "o1"): -0.25, ("d2", "o1"): 1.0} and out.rewarded == 1


def test_earliest_takes_the_first_reward_and_sum_adds_them_up():
    records = [shown("d1", T0), reward("d1", 0.3, T0 + timedelta(minutes=2)),
               reward("d1", 0.5, T0 + timedelta(minutes=1))]
    assert join(records)[0][("d1", "o1")] == 0.5
    assert join(records, RewardRules(aggregation="sum"))[0][("d1", "o1")] == pytest.approx(0.8)


def test_a_reward_without_an_offer_is_the_first_slots_and_clicks_go_to_their_own_slot():
    rewards, out = join([shown("d1", T0, offers=("o1", "o2")), reward("d1", 0.7, T0),
                         click("d1", "o2", T0 + timedelta(seconds=5))])
    assert rewards == {("d1", "o1"): 0.7, ("d1", "o2"): 1.0}
    assert list(out.slots) == [0, 1] and list(out.owner) == [0, 0]  # one context, two rows


def test_decisions_younger_than_the_wait_time_are_pending():
    _, out = join([shown("d1", T0), shown("d2", T0 + timedelta(minutes=55))], as_of=T0 + timedelta(hours=1))
    assert out.decision_ids == ["d1"] and out.pending == 1


def test_a_repeated_event_is_counted_once():
    records = [shown("d1", T0), click("d1", "o1", T0)]
    events, decisions = dataset.tables(records + records)
    assert events.num_rows == 2 and decisions.num_rows == 1


def test_bad_rules_are_refused():
    for bad in ({"wait_seconds": 0}, {"aggregation": "max"}, {"default": 2}):
        with pytest.raises(ValueError):
            RewardRules(**bad)
