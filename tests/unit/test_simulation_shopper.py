"""A shopper's step (act), what comes next (schedule), and the delays a rate asks for (Timing)."""
import pytest

from shared import events
from shared.catalog import BUNDLE, PRODUCT_DEAL
from shared.simulation import shopper
from shared.simulation.shopper import Behaviour, ClickRef, Outcome, Step, Timing

from .simulation_fakes import FakeDecide, Posted, shopper_ports, small_snapshot, small_world

EVERYTHING = Behaviour(cart_rate=1.0, click_cart_rate=1.0, purchase_rate=1.0)  # every kind of event, every time


def a_user():
    return sorted(small_snapshot().users)[0]


def deal():
    return next(o for o in small_snapshot().offers if o.kind in (PRODUCT_DEAL, BUNDLE) and o.product_ids)


def click_step(**overrides):
    snapshot = small_snapshot()
    offer = deal()
    products = sorted(snapshot.products)
    fields = dict(runId="run-1", userId=a_user(), session=2, step=3, action="click", productId=products[0],
                  click=ClickRef(offerId=offer.id, decisionId="decision-0"), cart=products[1:3])
    fields.update(overrides)
    return Step(**fields)


def act(step, behaviour=EVERYTHING, seed=7, decide=None):
    post = Posted()
    candidates = [o.id for o in small_snapshot().offers[:8]]
    acted = shopper.act(step, behaviour, seed, shopper_ports(small_world(), decide or FakeDecide(candidates), post))
    return acted, post


def test_the_events_a_step_posts_are_valid_website_events():
    acted, post = act(click_step())
    parsed = [events.parse(raw, events.WEBSITE_TYPES) for raw in post.events]
    types = [e.type for e in parsed]
    # The click is posted before the page it lands on; the cart and purchase after.
    assert types[:3] == [events.OFFER_CLICKED, events.PRODUCT_VIEWED, events.CART_ADDED]
    assert types[3:] == [events.PRODUCT_PURCHASED] * 3  # the two items in the cart and the new one
    assert all(e.user_id == a_user() for e in parsed)
    assert len({e.id for e in parsed}) == len(parsed)
    assert acted.events == post.events
    assert acted.outcome.purchased and acted.outcome.cart == []
    assert parsed[0].data.offerId == deal().id
    assert parsed[1].data.productId in deal().product_ids  # following a deal lands on its product


def test_acting_the_same_step_twice_posts_the_same_event_ids():
    first, first_post = act(click_step())
    again, again_post = act(click_step())
    assert [e["id"] for e in first_post.events] == [e["id"] for e in again_post.events]
    assert first_post.events == again_post.events  # the same clock: the very same events
    assert first.outcome == again.outcome
    other, other_post = act(click_step(step=4))
    assert not {e["id"] for e in other_post.events} & {e["id"] for e in first_post.events}
    other_run, other_run_post = act(click_step(runId="run-2"))
    assert not {e["id"] for e in other_run_post.events} & {e["id"] for e in first_post.events}


def test_a_step_counts_its_impressions_and_the_expected_clicks_of_what_was_shown():
    candidates = [o.id for o in small_snapshot().offers[:8]]
    acted, _ = act(Step(runId="run-1", userId=a_user(), session=0, step=0), Behaviour(slots=2),
                   decide=FakeDecide(candidates))
    outlook = small_world().outlook(a_user(), candidates, 10, small_snapshot().products[acted.outcome.productId])
    assert acted.tally.actions == 1 and acted.tally.sessions == 1 and acted.tally.impressions == 2
    assert acted.tally.expected == pytest.approx(sum(outlook.probabilities[o] for o in candidates[:2]))
    assert acted.tally.random == pytest.approx(2 * outlook.random_ctr())
    assert acted.tally.oracle == pytest.approx(outlook.oracle_ctr(0) + outlook.oracle_ctr(1))
    assert [offer for offer, _ in acted.clicks] == candidates[:2]
    assert acted.outcome.impressions == 2


def test_an_offer_unknown_to_the_world_is_never_clicked():
    decide = FakeDecide(["ghost"], show=["ghost"])
    for step in range(50):
        acted, _ = act(Step(runId="run-1", userId=a_user(), session=0, step=step), decide=decide)
        assert acted.clicks == [("ghost", False)] and acted.outcome.clicked is None
        assert acted.tally.expected == 0


def outcome(step, clicked=False, session=1, user="u1", cart=()):
    click = ClickRef(offerId="o1", decisionId="d1") if clicked else None
    return Outcome(runId="run-1", userId=user, session=session, step=step, productId="p1", cart=list(cart),
                   clicked=click)


def test_a_click_is_always_followed_by_a_click_step_of_the_same_session():
    behaviour = Behaviour(continue_session=0.0, max_steps=5)  # nothing else would go on
    for user in range(30):
        for step in (0, 3, 4, 10):
            done = outcome(step, clicked=True, user=f"u{user}", cart=["p9"])
            nxt, delay = shopper.schedule(done, behaviour, Timing(4.0, 60.0), seed=1)
            assert (nxt.action, nxt.session, nxt.step) == ("click", done.session, step + 1)
            assert nxt.click == done.clicked and nxt.productId == "p1" and nxt.cart == ["p9"]
            assert 0 <= delay <= shopper.MAX_DELAY_SECONDS


def test_sessions_end_by_max_steps_and_the_next_one_starts_at_step_0():
    behaviour = Behaviour(continue_session=1.0, max_steps=6)
    for user in range(20):
        done, steps = outcome(0, user=f"u{user}", cart=["p2"]), [0]
        while True:
            nxt, _ = shopper.schedule(done, behaviour, Timing(0.0, 0.0), seed=3)
            if nxt.session != done.session:
                break
            steps.append(nxt.step)
            done = outcome(nxt.step, user=f"u{user}", cart=["p2"])
        assert steps == list(range(6))
        assert (nxt.session, nxt.step, nxt.action) == (2, 0, "view")
        assert nxt.productId is None and nxt.cart == [] and nxt.click is None  # a new visit, cart abandoned


def test_a_session_goes_on_about_as_often_as_continue_session_says():
    behaviour = Behaviour(continue_session=0.8, max_steps=1000)
    went_on = sum(shopper.schedule(outcome(1, user=f"u{i}"), behaviour, Timing(), seed=5)[0].session == 1
                  for i in range(2000))
    # Binomial(2000, 0.8): sd ~ 18, so 4 sd is about 72.
    assert abs(went_on - 1600) < 72


def test_schedule_is_deterministic_per_seed():
    done = outcome(2, user="u7")
    assert shopper.schedule(done, Behaviour(), Timing(), seed=9) == shopper.schedule(done, Behaviour(), Timing(), 9)
    delays = {shopper.schedule(done, Behaviour(), Timing(), seed=s)[1] for s in range(20)}
    assert len(delays) == 20


def test_a_zero_rate_means_no_waiting():
    timing = Timing.for_rate(100, 0, Behaviour())
    assert (timing.think_seconds, timing.return_seconds) == (0.0, 0.0)
    for user in range(20):
        for done in (outcome(1, user=f"u{user}"), outcome(1, clicked=True, user=f"u{user}"),
                     outcome(19, user=f"u{user}")):
            assert shopper.schedule(done, Behaviour(), timing, seed=1)[1] == 0.0


def test_a_higher_rate_gives_shorter_think_and_return_times():
    slow, fast = Timing.for_rate(100, 10, Behaviour()), Timing.for_rate(100, 40, Behaviour())
    assert 0 < fast.think_seconds < slow.think_seconds
    assert fast.think_seconds == pytest.approx(slow.think_seconds / 4)
    assert fast.return_seconds == pytest.approx(10 * fast.think_seconds)
    more_users = Timing.for_rate(400, 10, Behaviour())
    assert more_users.think_seconds == pytest.approx(4 * slow.think_seconds)


def test_for_rate_makes_users_take_about_rate_actions_per_second():
    """The mean time between two actions of one user is users / rate (clicks, which come sooner, aside)."""
    behaviour = Behaviour()
    timing = Timing.for_rate(100, 10, behaviour)
    end = timing.session_end_share(behaviour)
    cycle = (1 - end) * timing.think_seconds + end * timing.return_seconds
    assert cycle == pytest.approx(100 / 10)


def test_pick_users_picks_distinct_users_the_same_for_the_same_seed():
    users = sorted(small_snapshot().users)
    picked = shopper.pick_users(users, 50, seed=4)
    assert len(set(picked)) == 50 and set(picked) <= set(users)
    assert shopper.pick_users(list(reversed(users)), 50, seed=4) == picked
    assert shopper.pick_users(users, 50, seed=5) != picked
    assert len(shopper.pick_users(users[:10], 50, seed=4)) == 10


def test_a_step_message_refuses_unknown_fields_and_bad_values():
    with pytest.raises(ValueError):
        Step.model_validate_json('{"runId": "r", "userId": "u", "session": 0, "step": 0, "extra": 1}')
    with pytest.raises(ValueError):
        Step.model_validate_json('{"runId": "r", "userId": "u", "session": -1, "step": 0}')
    step = click_step()
    assert Step.model_validate_json(step.model_dump_json()) == step
