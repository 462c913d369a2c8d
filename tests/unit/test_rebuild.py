"""Rebuilding projections from the archive gives the live documents (over in-memory fakes)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ops import rebuild
from shared import ingest, projections
from shared.ingest import Message
from tests import eventfactory as ef
from tests.unit.ingest_fakes import Outage, World

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


def live(world: World, raws: list[dict], sizes: list[int], partition: str, first: int = 0) -> None:
    """Ingest `raws` on one partition in batches of the given sizes."""
    sequence = first
    while raws:
        size = sizes[sequence % len(sizes)]
        batch, raws = raws[:size], raws[size:]
        ingest.ingest([Message(json.dumps(r).encode(), partition, sequence + i, T0 + timedelta(seconds=sequence + i))
                       for i, r in enumerate(batch)], world.ports)
        sequence += len(batch)


def rebuilt(world: World) -> tuple[dict, dict, rebuild.Loaded, dict]:
    loaded = rebuild.load(world.archive)
    profiles, stats, traffic = projections.replay(loaded.deliveries, world.ports.half_life_hours)
    return profiles, stats, loaded, traffic


def test_rebuilding_from_the_archive_gives_the_live_documents_exactly():
    world = World()
    for partition in "0123":  # each user on one partition, as the partition key makes it
        live(world, ef.workload(250, 6, seed=int(partition) + 20, with_shown=True), [7, 50, 13], partition)
    profiles, stats, loaded, traffic = rebuilt(world)
    assert len(loaded.deliveries) == 1000 and loaded.duplicate_messages == 0
    assert rebuild.compare("profiles", world.profiles(), profiles).count == 0
    assert rebuild.compare("offerstats", world.stats(), stats).count == 0
    assert rebuild.compare("trafficstats", world.traffic(), traffic).count == 0
    assert world.profiles() == profiles and world.stats() == stats and world.traffic() == traffic
    assert sum(s["impressions"] for s in stats.values()) == sum(
        m["impressions"] for s in stats.values() for m in s["byMinute"].values()) > 0
    assert sum(t["events"] for t in traffic.values()) == 1000
    assert {t["partition"] for t in traffic.values()} == set("0123")


def test_a_message_archived_twice_by_a_redelivery_with_other_boundaries_is_read_once():
    world = World()
    raws = ef.workload(40, 3, seed=30, with_shown=True)
    batch = [Message(json.dumps(r).encode(), "1", i, T0) for i, r in enumerate(raws)]
    ingest.ingest(batch[:30], world.ports)
    ingest.ingest(batch[20:], world.ports)  # from an older checkpoint: 20..29 are archived twice
    profiles, stats, loaded, traffic = rebuilt(world)
    assert loaded.duplicate_messages == 10 and len(loaded.deliveries) == 40
    assert world.profiles() == profiles and world.stats() == stats and world.traffic() == traffic
    assert sum(t["events"] for t in traffic.values()) == 40


def test_a_reposted_event_is_ignored_by_the_rebuild_as_by_the_live_path():
    world = World()
    raws = ef.workload(30, 2, seed=31)
    live(world, raws + raws[:5], [100], "0")  # the first five again, in new hub messages
    profiles, _, loaded, traffic = rebuilt(world)
    assert len(loaded.deliveries) == 30
    assert world.profiles() == profiles and world.traffic() == traffic
    assert sum(t["events"] for t in traffic.values()) == 30  # the re-posts are not traffic either


def test_compare_names_what_differs_and_apply_makes_the_store_hold_the_archive():
    world = World()
    live(world, ef.workload(60, 4, seed=32, with_shown=True), [25], "2")
    profiles, stats, _, _ = rebuilt(world)
    some_user = sorted(profiles)[0]
    key = (some_user, some_user)
    world.profiles_container.items[key]["carts"] += 1
    world.profiles_container.items[("ghost", "ghost")] = {"id": "ghost", "userId": "ghost", "_etag": '"1"'}
    removed = sorted(world.stats())[0]
    world.stats_container.items.pop(next(k for k in world.stats_container.items if k[0] == removed))

    stored = world.profiles()
    difference = rebuild.compare("profiles", stored, profiles)
    assert list(difference.changed) == [some_user] and difference.changed[some_user].startswith("carts: stored")
    assert difference.orphans == ["ghost"] and difference.missing == []
    assert rebuild.compare("offerstats", world.stats(), stats).missing == [removed]

    rebuild.apply(world.ports.profiles, difference, profiles, stored, "userId")
    stats_difference = rebuild.compare("offerstats", world.stats(), stats)
    rebuild.apply(world.ports.offer_stats, stats_difference, stats, world.stats(), "offerId")
    assert world.profiles() == profiles and world.stats() == stats


def test_personalizer_events_are_traffic_and_no_profile_in_the_rebuild_as_live():
    from tests.unit.test_learning_rewards import activated, ranked, rewarded
    world = World()
    at = T0 + timedelta(minutes=3)
    loop = [json.loads(json.dumps(e)) for e in (ranked("e1", at), rewarded("e1", 1.0, at), activated("e1", at))]
    live(world, ef.workload(20, 2, seed=33) + loop, [9], "1")
    profiles, stats, _, traffic = rebuilt(world)
    assert world.profiles() == profiles and world.stats() == stats and world.traffic() == traffic
    assert "personalizer" not in profiles
    hour = next(t for t in traffic.values() if t["hour"] == "2026-11-22T10:00:00Z")
    assert hour["byMinute"]["03"]["byType"] == {e["type"]: 1 for e in loop}


def test_a_redelivered_batch_after_an_outage_leaves_traffic_as_the_rebuild_says():
    world = World()
    raws = ef.workload(50, 3, seed=34, with_shown=True)
    batch = [Message(json.dumps(r).encode(), "2", i, T0) for i, r in enumerate(raws)]
    world.traffic_container.fail_next = 1  # profiles and offer statistics written, traffic not
    with pytest.raises(Outage):
        ingest.ingest(batch, world.ports)
    ingest.ingest(batch, world.ports)  # the trigger's retry: its events are redelivered to the profiles now
    ingest.ingest(batch[10:], world.ports)  # and once more, partly
    _, _, _, traffic = rebuilt(world)
    assert world.traffic() == traffic and sum(t["events"] for t in traffic.values()) == 50
