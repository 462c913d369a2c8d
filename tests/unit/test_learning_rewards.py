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
    out = dataset.examples(decisions, dataset.reward_events(events), rules, as_of, dataset.activations(events))
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


# The Personalizer-compatible API's loop: its decisions, rewards by slot id, activations.

def ranked(decision, at, actions=("a1",), slots=None, deferred=False):
    chosen = [ev.PersonalizerChosen(offerId=a, slot=i, probability=0.5, slotId=slots[i] if slots else None)
              for i, a in enumerate(actions)]
    data = ev.PersonalizerRankedV1(decisionId=decision, context={"user": {"kind": "new"}},
                                   candidates=[ev.PersonalizerAction(offerId=a, features={"actionId": a})
                                               for a in (*actions, "a9")],
                                   chosen=chosen, modelVersion="baseline",
                                   exploration=ev.Exploration(policy="epsilon-greedy", epsilon=0.2), deferred=deferred)
    return ev.new(ev.PERSONALIZER_RANKED, "personalizer", data, source=ev.PERSONALIZER_SOURCE, time=at).to_dict()


def rewarded(decision, value, at, slot=None):
    data = ev.PersonalizerRewardedV1(decisionId=decision, value=value, slotId=slot)
    return ev.new(ev.PERSONALIZER_REWARDED, "personalizer", data, source=ev.PERSONALIZER_SOURCE, time=at).to_dict()


def activated(decision, at):
    return ev.new(ev.PERSONALIZER_ACTIVATED, "personalizer", ev.PersonalizerActivatedV1(decisionId=decision),
                  source=ev.PERSONALIZER_SOURCE, time=at).to_dict()


def test_average_aggregation_takes_the_mean_of_the_rewards_in_the_wait_time():
    records = [shown("d1", T0), reward("d1", 0.2, T0 + timedelta(minutes=1)),
               reward("d1", 0.6, T0 + timedelta(minutes=2)), reward("d1", 1.0, T0 + timedelta(minutes=20))]
    assert join(records, RewardRules(aggregation="average"))[0][("d1", "o1")] == pytest.approx(0.4)


def test_a_multislot_reward_goes_to_its_slot_and_one_without_a_slot_to_the_first():
    rewards, out = join([ranked("e1", T0, actions=("a1", "a2", "a3"), slots=("top", "side", "foot")),
                         rewarded("e1", 0.9, T0, slot="side"), rewarded("e1", 0.4, T0, slot="foot"),
                         ranked("e2", T0, actions=("a1", "a2"), slots=("top", "side")), rewarded("e2", 0.7, T0)])
    assert rewards == {("e1", "a1"): 0.0, ("e1", "a2"): 0.9, ("e1", "a3"): 0.4, ("e2", "a1"): 0.7, ("e2", "a2"): 0.0}
    assert out.rewarded == 3


def test_a_deferred_decision_is_learned_from_only_once_activated():
    records = [ranked("e1", T0, deferred=True), rewarded("e1", 1.0, T0),
               ranked("e2", T0, deferred=True), rewarded("e2", 1.0, T0), activated("e2", T0 + timedelta(seconds=3)),
               ranked("e3", T0)]
    rewards, out = join(records)
    assert rewards == {("e2", "a1"): 1.0, ("e3", "a1"): 0.0}


def test_each_loop_keeps_its_own_decisions_and_old_rows_are_the_offers_loops():
    events, decisions = dataset.tables([shown("d1", T0), ranked("e1", T0), ranked("e2", T0, deferred=True)])
    assert decisions.column("loop").to_pylist() == ["offers", "personalizer", "personalizer"]
    assert decisions.column("deferred").to_pylist() == [False, False, True]
    assert dataset.for_loop(decisions, "personalizer").column("decisionId").to_pylist() == ["e1", "e2"]
    older = decisions.drop_columns(["loop"])
    assert dataset.for_loop(older, "offers").num_rows == 3 and dataset.for_loop(older, "personalizer").num_rows == 0
    nulls = decisions.set_column(decisions.schema.get_field_index("loop"), "loop",
                                 dataset.pa.nulls(3, dataset.pa.string()))
    assert dataset.for_loop(nulls, "offers").num_rows == 3


def test_the_multislot_chosen_keeps_its_slot_ids_and_offer_decisions_stay_as_they_were():
    _, decisions = dataset.tables([shown("d1", T0, offers=("o1", "o2")), ranked("e1", T0, ("a1", "a2"), ("top", "side"))])
    chosen = decisions.column("chosen").to_pylist()
    assert chosen[0] == '[{"offerId":"o1","slot":0,"probability":0.5},{"offerId":"o2","slot":1,"probability":0.5}]'
    assert '"slotId":"side"' in chosen[1]
