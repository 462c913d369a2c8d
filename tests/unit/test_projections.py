"""Profiles and offer statistics from events: the maths, idempotence and determinism."""
from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from shared import events, projections
from shared.projections import Delivered, apply_tallies, project_user, replay
from tests import eventfactory as ef
from tests.eventfactory import BASE


def deliver(raws: list[dict], partition: str = "0", first: int = 100) -> list[Delivered]:
    return [Delivered(partition, first + i, events.parse(r)) for i, r in enumerate(raws)]


def profile_of(raws: list[dict], user: str = "u", **kw) -> dict:
    return project_user(None, user, deliver(raws, **kw)).profile


def test_a_view_a_cart_and_a_purchase_weigh_1_3_and_5_in_their_category():
    profile = profile_of([ef.view("u", "shoes"), ef.cart("u", "shoes"), ef.purchase("u", "books")])
    assert profile["categoryAffinity"] == {"shoes": 4.0, "books": 5.0}
    assert (profile["carts"], profile["purchases"], profile["eventCount"]) == (1, 1, 3)
    assert profile["affinityAsOf"] == "2026-11-22T03:00:00Z"


def test_affinity_halves_with_each_half_life_and_is_stored_as_of_the_last_event():
    later = BASE + timedelta(hours=72)
    profile = profile_of([ef.view("u", "shoes"), ef.view("u", "books", time=later)])
    assert profile["categoryAffinity"] == pytest.approx({"shoes": 0.5, "books": 1.0}, rel=1e-12)
    assert profile["affinityAsOf"] == ef.iso(later)


def test_the_half_life_is_configurable():
    raws = [ef.view("u", "shoes"), ef.view("u", "books", time=BASE + timedelta(hours=24))]
    profile = project_user(None, "u", deliver(raws), half_life_hours=12).profile
    assert profile["categoryAffinity"]["shoes"] == pytest.approx(0.25, rel=1e-12)


def test_an_event_older_than_affinity_as_of_counts_already_decayed_and_does_not_move_it_back():
    later = BASE + timedelta(hours=144)
    profile = profile_of([ef.view("u", "books", time=later), ef.purchase("u", "shoes", time=BASE)])
    assert profile["categoryAffinity"] == pytest.approx({"books": 1.0, "shoes": 5 * 0.25}, rel=1e-12)
    assert profile["affinityAsOf"] == ef.iso(later)


def test_recent_views_keep_the_50_most_recent_most_recent_first():
    raws = [ef.view("u", product=f"p-{i}", time=BASE + timedelta(minutes=i)) for i in range(60)]
    random.Random(3).shuffle(raws)  # arrival order must not matter for which 50 stay
    views = profile_of(raws)["recentViews"]
    assert [v["productId"] for v in views] == [f"p-{i}" for i in range(59, 9, -1)]
    assert views[0] == {"productId": "p-59", "category": "shoes", "time": ef.iso(BASE + timedelta(minutes=59))}


def test_offers_shown_and_clicked_are_counted_per_offer():
    profile = profile_of([ef.shown("u", "d-1", ("of-1", "of-2")), ef.shown("u", "d-2", ("of-1",)),
                          ef.clicked("u", "d-1", "of-2"), ef.reward("u", "d-1")])
    assert profile["offersShown"] == {"of-1": 2, "of-2": 1}
    assert profile["offersClicked"] == {"of-2": 1}
    assert profile["eventCount"] == 4


def test_the_watermark_is_the_last_applied_hub_message():
    profile = profile_of([ef.view("u"), ef.view("u")], partition="3", first=41)
    assert profile["watermark"] == {"partition": "3", "sequence": 42}


def test_applying_the_same_delivered_events_again_changes_nothing():
    delivered = deliver(ef.workload(40, 1, prefix="same"))
    user = delivered[0].event.user_id
    first = project_user(None, user, delivered)
    again = project_user(first.profile, user, delivered)
    assert again.profile is None and again.applied == 0 and again.redelivered == 40
    assert again.archived == delivered  # a redelivered batch archives the same events again


def test_an_overlapping_redelivered_batch_applies_only_the_events_not_seen_yet():
    delivered = deliver(ef.workload(30, 1, prefix="overlap"))
    user = delivered[0].event.user_id
    whole = project_user(None, user, delivered).profile
    part = project_user(None, user, delivered[:20]).profile
    overlapping = project_user(part, user, delivered[10:])
    assert overlapping.applied == 10 and overlapping.redelivered == 10
    assert overlapping.profile == whole


def test_a_reposted_event_in_a_new_hub_message_is_ignored_and_not_archived():
    raws = [ef.view("u", "shoes"), ef.clicked("u", "d-1")]
    profile = profile_of(raws, first=10)
    reposted = project_user(profile, "u", deliver(raws, first=50))
    assert reposted.profile is None and reposted.archived == [] and reposted.tallies == []
    assert [d.sequence for d in reposted.repeated] == [50, 51]


def test_a_reposted_event_is_recognised_while_among_the_last_100_applied():
    raws = [ef.view("u", product=f"p-{i}") for i in range(101)]
    profile = profile_of(raws, first=0)
    assert len(profile["recentEvents"]) == projections.RECENT_EVENTS
    assert project_user(profile, "u", deliver(raws[1:2], first=500)).applied == 0
    assert project_user(profile, "u", deliver(raws[0:1], first=500)).applied == 1  # forgotten: applied again


def test_a_redelivery_older_than_the_remembered_ids_is_recognised_by_the_watermark():
    raws = [ef.view("u", product=f"p-{i}") for i in range(150)]
    profile = profile_of(raws, first=0)
    assert project_user(profile, "u", deliver(raws[:5], first=0)).redelivered == 5


def test_the_documents_do_not_depend_on_how_the_events_were_batched():
    raws = ef.workload(600, 7, seed=5, with_shown=True)
    delivered = deliver(raws, first=0)
    profiles, stats, _ = replay(delivered)
    rng = random.Random(9)
    live_profiles: dict[str, dict] = {}
    live_stats: dict[str, dict] = {}
    start = 0
    while start < len(delivered):
        size = rng.randint(1, 80)
        batch, start = delivered[start:start + size], start + size
        tallies = []
        for user in {d.event.user_id for d in batch}:
            outcome = project_user(live_profiles.get(user), user, [d for d in batch if d.event.user_id == user])
            if outcome.profile is not None:
                live_profiles[user] = outcome.profile
            tallies += outcome.tallies
        for doc_id, group in projections.group_tallies(tallies).items():
            changed = apply_tallies(live_stats.get(doc_id), group[0].offer_id, group[0].hour, group)
            if changed is not None:
                live_stats[doc_id] = changed
    assert live_profiles == profiles  # exactly: the affinity floats too
    assert live_stats == stats
    want_users, want_stats = ef.expected(raws)
    assert {u: p["eventCount"] for u, p in profiles.items()} == {u: v["eventCount"] for u, v in want_users.items()}
    assert {(s["offerId"], s["hour"]): {"impressions": s["impressions"], "clicks": s["clicks"]}
            for s in stats.values()} == want_stats


def test_offer_statistics_count_each_chosen_offer_in_the_hour_of_the_event():
    late = BASE + timedelta(minutes=59, seconds=59)
    stats = replay(deliver([ef.shown("u", "d-1", ("of-1", "of-2"), "m-1"),
                            ef.shown("u", "d-2", ("of-1",), "m-2", time=late),
                            ef.shown("u", "d-3", ("of-1",), "m-2", time=BASE + timedelta(hours=1))])).offer_stats
    assert stats["of-1:2026112203"] == {
        "id": "of-1:2026112203", "offerId": "of-1", "hour": "2026-11-22T03:00:00Z", "impressions": 2, "clicks": 0,
        "byModel": {"m-1": {"impressions": 1, "clicks": 0}, "m-2": {"impressions": 1, "clicks": 0}},
        "byMinute": {"00": {"impressions": 1, "clicks": 0, "byModel": {"m-1": {"impressions": 1, "clicks": 0}}},
                     "59": {"impressions": 1, "clicks": 0, "byModel": {"m-2": {"impressions": 1, "clicks": 0}}}},
        "watermarks": {"0": 101}}
    assert stats["of-1:2026112204"]["impressions"] == 1
    assert stats["of-2:2026112203"]["impressions"] == 1


def test_a_click_counts_for_the_model_that_showed_the_offer_in_the_hour_of_the_click():
    click_time = BASE + timedelta(hours=2)
    stats = replay(deliver([ef.shown("u", "d-1", ("of-1",), "m-7"), ef.clicked("u", "d-1", "of-1", time=click_time),
                            ef.clicked("u", "d-unknown", "of-1", time=click_time)])).offer_stats
    assert stats["of-1:2026112205"]["clicks"] == 2
    assert stats["of-1:2026112205"]["byModel"] == {"m-7": {"impressions": 0, "clicks": 1},
                                                   projections.UNKNOWN_MODEL: {"impressions": 0, "clicks": 1}}


def test_offer_statistics_skip_tallies_at_or_below_their_partition_watermark():
    tallies = project_user(None, "u", deliver([ef.shown("u", "d-1", ("of-1",))] * 1 + [
        ef.shown("u", "d-2", ("of-1",))], first=7)).tallies
    document = apply_tallies(None, "of-1", tallies[0].hour, tallies)
    assert document["impressions"] == 2 and document["watermarks"] == {"0": 8}
    assert apply_tallies(document, "of-1", tallies[0].hour, tallies) is None
    other_partition = [projections.Tally("of-1", tallies[0].hour, "1", 3, "m-1", "00", impressions=1)]
    assert apply_tallies(document, "of-1", tallies[0].hour, other_partition)["impressions"] == 3


def test_nothing_in_the_documents_comes_from_the_wall_clock():
    raws = ef.workload(200, 3, seed=11, with_shown=True)
    profiles, stats, _ = replay(deliver(raws))
    times = {v["time"] for p in profiles.values() for v in p["recentViews"]} | {
        p["affinityAsOf"] for p in profiles.values()} | {s["hour"] for s in stats.values()}
    assert all(t.startswith("2026-11-22T0") for t in times)  # all within the events' hours


def test_the_documents_given_are_not_changed():
    import json

    delivered = deliver(ef.workload(120, 1, seed=12, with_shown=True, prefix="pure"))
    user = delivered[0].event.user_id
    profile = project_user(None, user, delivered[:60]).profile
    tallies = project_user(None, user, delivered[:60]).tallies
    stats = {doc_id: apply_tallies(None, g[0].offer_id, g[0].hour, g)
             for doc_id, g in projections.group_tallies(tallies).items()}
    before = json.dumps([profile, stats], sort_keys=True)
    later = project_user(profile, user, delivered[60:])
    for doc_id, group in projections.group_tallies(later.tallies).items():
        apply_tallies(stats.get(doc_id), group[0].offer_id, group[0].hour, group)
    assert later.applied == 60
    assert json.dumps([profile, stats], sort_keys=True) == before


# -- per-minute breakdowns and traffic ---------------------------------------------------------

def test_each_minute_of_an_offers_hour_sums_to_the_hour_per_model_too():
    raws = ef.workload(500, 6, seed=21, with_shown=True)
    stats = replay(deliver(raws, first=0)).offer_stats
    for document in stats.values():
        minutes = document["byMinute"].values()
        assert sum(m["impressions"] for m in minutes) == document["impressions"]
        assert sum(m["clicks"] for m in minutes) == document["clicks"]
        for model, counts in document["byModel"].items():
            assert counts == {k: sum(m["byModel"].get(model, {}).get(k, 0) for m in minutes)
                              for k in ("impressions", "clicks")}
    # every minute key is the minute of an event's time, as "MM"
    shown_minutes = {(r["data"]["chosen"][0]["offerId"], ef.hour(r["time"]), r["time"][14:16])
                     for r in raws if r["type"] == events.OFFER_SHOWN}
    assert all(m in stats[projections.offer_stats_id(o, h)]["byMinute"] for o, h, m in shown_minutes)


def test_a_redelivered_batch_counts_no_minute_twice():
    delivered = deliver([ef.shown("u", "d-1", ("of-1",), "m-1", time=BASE + timedelta(minutes=7)),
                         ef.clicked("u", "d-1", "of-1", time=BASE + timedelta(minutes=8))], first=10)
    tallies = project_user(None, "u", delivered).tallies
    assert [t.minute for t in tallies] == ["07", "08"]
    document = apply_tallies(None, "of-1", tallies[0].hour, tallies)
    assert apply_tallies(document, "of-1", tallies[0].hour, tallies) is None
    overlapping = tallies + [projections.Tally("of-1", tallies[0].hour, "0", 12, "m-1", "08", impressions=1)]
    again = apply_tallies(document, "of-1", tallies[0].hour, overlapping)
    assert again["byMinute"]["07"] == {"impressions": 1, "clicks": 0,
                                       "byModel": {"m-1": {"impressions": 1, "clicks": 0}}}
    assert again["byMinute"]["08"]["byModel"] == {"m-1": {"impressions": 1, "clicks": 1}}
    assert again["impressions"] == 2 and again["watermarks"] == {"0": 12}


def test_a_document_written_before_by_minute_is_read_and_updated():
    hour = "2026-11-22T03:00:00Z"
    old = {"id": "of-1:2026112203", "offerId": "of-1", "hour": hour, "impressions": 5, "clicks": 1,
           "byModel": {"m-1": {"impressions": 5, "clicks": 1}}, "watermarks": {"0": 50}}
    kept = json.dumps(old, sort_keys=True)
    tallies = [projections.Tally("of-1", hour, "0", 50, "m-1", "02", impressions=1),  # counted before the upgrade
               projections.Tally("of-1", hour, "0", 51, "m-2", "30", impressions=1),
               projections.Tally("of-1", hour, "0", 52, "m-1", "31", clicks=1)]
    document = apply_tallies(old, "of-1", hour, tallies)
    assert (document["impressions"], document["clicks"]) == (6, 2)
    assert document["byModel"] == {"m-1": {"impressions": 5, "clicks": 2}, "m-2": {"impressions": 1, "clicks": 0}}
    assert document["byMinute"] == {
        "30": {"impressions": 1, "clicks": 0, "byModel": {"m-2": {"impressions": 1, "clicks": 0}}},
        "31": {"impressions": 0, "clicks": 1, "byModel": {"m-1": {"impressions": 0, "clicks": 1}}}}
    assert json.dumps(old, sort_keys=True) == kept  # the stored document is not changed in place
    assert apply_tallies(old, "of-1", hour, tallies[:1]) is None


def test_traffic_counts_every_event_by_type_in_its_hour_minute_and_partition():
    delivered = deliver([ef.view("a", time=BASE + timedelta(minutes=1, seconds=59)),
                         ef.view("b", time=BASE + timedelta(minutes=2)),
                         ef.cart("a", time=BASE + timedelta(minutes=2, seconds=30)),
                         ef.view("a", time=BASE + timedelta(hours=1))], partition="3", first=40)
    traffic = replay(delivered).traffic_stats
    assert set(traffic) == {"2026112203:3", "2026112204:3"}
    assert traffic["2026112203:3"] == {
        "id": "2026112203:3", "hour": "2026-11-22T03:00:00Z", "partition": "3", "events": 3,
        "byType": {events.PRODUCT_VIEWED: 2, events.CART_ADDED: 1},
        "byMinute": {"01": {"events": 1, "byType": {events.PRODUCT_VIEWED: 1}},
                     "02": {"events": 2, "byType": {events.PRODUCT_VIEWED: 1, events.CART_ADDED: 1}}},
        "watermark": 42}
    assert traffic["2026112204:3"]["watermark"] == 43 and traffic["2026112204:3"]["events"] == 1


def test_traffic_skips_events_at_or_below_its_watermark_and_leaves_the_stored_document_alone():
    delivered = deliver([ef.view("u", time=BASE + timedelta(seconds=i)) for i in range(10)], partition="1", first=0)
    hour = "2026-11-22T03:00:00Z"
    first = projections.apply_traffic(None, hour, "1", delivered[:6])
    kept = json.dumps(first, sort_keys=True)
    assert projections.apply_traffic(first, hour, "1", delivered[:6]) is None  # a redelivered batch
    rest = projections.apply_traffic(first, hour, "1", delivered[3:])  # overlapping: 3..5 again
    assert rest["events"] == 10 and rest["byMinute"]["00"]["events"] == 10 and rest["watermark"] == 9
    assert json.dumps(first, sort_keys=True) == kept
    assert projections.apply_traffic(None, hour, "1", delivered) == rest  # batching does not matter


def test_traffic_does_not_count_a_reposted_event_and_the_personalizer_loops_events_make_no_profile():
    from tests.unit.test_learning_rewards import ranked
    raws = [ef.view("u"), ef.view("u", product="p-2")]
    loop = ranked("e1", BASE)
    replayed = replay(deliver(raws + raws[:1] + [loop], first=0))  # the first view re-posted in a new message
    assert sum(t["events"] for t in replayed.traffic_stats.values()) == 3
    assert replayed.traffic_stats["2026112203:0"]["byType"] == {events.PRODUCT_VIEWED: 2, events.PERSONALIZER_RANKED: 1}
    assert set(replayed.profiles) == {"u"} and replayed.profiles["u"]["eventCount"] == 2
