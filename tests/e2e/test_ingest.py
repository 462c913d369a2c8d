"""Ingest on the local stack: posted activity is archived once and projected; re-posts change
nothing; a rebuild from the archive gives the same documents; invalid events are dead-lettered."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest
from azure.eventhub import EventData, EventHubProducerClient

from local.config import ROOT
from local.eventhubs.partitioning import partition_for_key
from local.provision import provision
from ops import rebuild
from shared import archive, projections, settings
from tests import eventfactory as ef
from tests.e2e.ingest_support import ArchiveWatch, documents, read_docs, wait_for, with_etags

pytestmark = pytest.mark.timeout(120)
PARTITIONS = 4


def post(api: str, events: list[dict]) -> dict:
    request = urllib.request.Request(f"{api}/events", data=json.dumps(events).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return json.loads(response.read())


def post_all(api: str, events: list[dict]) -> None:
    for start in range(0, len(events), 500):  # the API takes at most 500 events per request
        assert post(api, events[start:start + 500]) == {"accepted": len(events[start:start + 500])}


def body_of(dead_letter: dict) -> bytes:
    if "bodyBase64" in dead_letter:
        return base64.b64decode(dead_letter["bodyBase64"])
    return dead_letter["body"].encode()


def one_user_per_partition(token: str) -> list[str]:
    users: dict[int, str] = {}
    n = 0
    while len(users) < PARTITIONS:
        users.setdefault(partition_for_key(f"sentinel-{token}-{n}", PARTITIONS), f"sentinel-{token}-{n}")
        n += 1
    return list(users.values())


class Posted:
    def __init__(self, stack, raws: list[dict], offers: tuple[str, ...]):
        self.settings = stack.settings
        self.raws, self.offers = raws, offers
        self.users, self.stats = ef.expected(raws)
        self.stat_ids = {projections.offer_stats_id(o, h) for o, h in self.stats}
        self.watch = ArchiveWatch(self.settings, [r["id"] for r in raws])
        self.profiles, self.offer_stats = documents(self.settings)


@pytest.fixture(scope="module")
def posted(api, stack) -> Posted:
    """1,000 website events of 50 users, posted to /api/events and ingested (within 10 s)."""
    token = uuid.uuid4().hex[:8]
    offers = tuple(f"of-{token}-{i}" for i in range(4))
    state = Posted(stack, ef.workload(1000, 50, seed=41, prefix=f"u{token}", offers=offers), offers)
    state.watch.poll()
    post_all(api, state.raws)
    wait_for(lambda: state.watch.poll() == len(state.raws), 10, "every posted event in the archive")
    wait_for(lambda: all(d.get("eventCount") == state.users[u]["eventCount"]
                         for u, d in read_docs(state.profiles, state.users).items())
             and len(read_docs(state.profiles, state.users)) == len(state.users), 10, "every profile")
    return state


def test_every_posted_event_is_archived_exactly_once(posted):
    assert set(posted.watch.copies) == {r["id"] for r in posted.raws}
    assert set(posted.watch.copies.values()) == {1}
    record = posted.watch.records[posted.raws[0]["id"]]
    assert record["event"]["data"] == posted.raws[0]["data"] and record["event"]["time"] == posted.raws[0]["time"]


def test_each_profile_reflects_exactly_its_users_events(posted):
    profiles = read_docs(posted.profiles, posted.users)
    for user, want in posted.users.items():
        assert {k: profiles[user][k] for k in want} == want, user
        views = [r for r in posted.raws if r["subject"] == user and r["type"] == ef.events.PRODUCT_VIEWED]
        newest = sorted(views, key=lambda r: r["time"], reverse=True)[:projections.RECENT_VIEWS]
        assert [v["productId"] for v in profiles[user]["recentViews"]] == [r["data"]["productId"] for r in newest]
    stats = read_docs(posted.offer_stats, posted.stat_ids)
    assert {(s["offerId"], s["hour"]): {"impressions": s["impressions"], "clicks": s["clicks"]}
            for s in stats.values()} == posted.stats


def test_posting_the_same_events_again_changes_nothing(posted, api):
    before = with_etags(posted.profiles, posted.users), with_etags(posted.offer_stats, posted.stat_ids)
    post_all(api, posted.raws)
    # Then one new event per partition: once each is archived, every partition got past the re-post.
    sentinels = [ef.view(user) for user in one_user_per_partition(uuid.uuid4().hex[:8])]
    post_all(api, sentinels)
    watch = ArchiveWatch(posted.settings, [s["id"] for s in sentinels])
    wait_for(lambda: watch.poll() == len(sentinels), 15, "the events posted after the re-post")
    assert (with_etags(posted.profiles, posted.users), with_etags(posted.offer_stats, posted.stat_ids)) == before
    posted.watch.poll()
    assert set(posted.watch.copies.values()) == {1}  # not archived again either


def test_rebuilding_from_the_archive_gives_identical_profiles_and_offer_statistics(posted):
    config = settings.load(posted.settings)
    loaded = rebuild.load(archive.from_settings(config))
    profiles, stats, _ = projections.replay(loaded.deliveries, config.affinity_half_life_hours)
    assert {u: profiles[u] for u in posted.users} == read_docs(posted.profiles, posted.users)
    assert {i: stats[i] for i in posted.stat_ids} == read_docs(posted.offer_stats, posted.stat_ids)


def test_the_rebuild_command_recreates_the_live_documents_in_an_empty_database(posted):
    fresh = {**posted.settings, "COSMOS_DATABASE": f"rebuild-{uuid.uuid4().hex[:8]}"}
    provision(fresh, fresh["COSMOS_DATABASE"])
    env = {**os.environ, **fresh}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "ops", "rebuild", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=90)

    compared = run("--compare")
    assert compared.returncode == 1 and "missing" in compared.stdout
    rebuilt = run()
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    profiles, offer_stats = documents(fresh)
    assert read_docs(profiles, posted.users) == read_docs(posted.profiles, posted.users)
    assert read_docs(offer_stats, posted.stat_ids) == read_docs(posted.offer_stats, posted.stat_ids)
    again = run("--compare")
    assert again.returncode == 0, again.stdout


def test_invalid_events_sent_straight_to_the_hub_are_dead_lettered_and_the_rest_of_the_batch_processed(api, stack):
    token = uuid.uuid4().hex[:8]
    user = f"u{token}"
    partition = str(partition_for_key(user, PARTITIONS))
    good = [ef.view(user, "shoes"), ef.purchase(user, "books")]
    wrong_type = ef.view(user)
    wrong_type["data"]["price"] = "cheap"
    garbage = f"garbage {token} \xff".encode("latin-1")
    producer = EventHubProducerClient.from_connection_string(stack.settings["EventHubConnection"],
                                                             eventhub_name=stack.settings["EVENTHUB_NAME"])
    with producer:  # one hub batch, so the host gets them together
        batch = producer.create_batch(partition_id=partition)
        for body in (good[0], garbage, wrong_type, good[1]):
            batch.add(EventData(body if isinstance(body, bytes) else json.dumps(body).encode()))
        producer.send_batch(batch)
    watch = ArchiveWatch(stack.settings, [e["id"] for e in good])
    wait_for(lambda: watch.poll() == 2, 10, "the valid events in the archive")

    def ours():
        return [d for d in watch.dead_letters() if token.encode() in body_of(d)]

    dead = wait_for(ours, 10, "the dead letters")
    reasons = {d["sequence"]: d["errors"] for d in dead}
    assert len(dead) == 2 and all(d["partition"] == partition for d in dead)
    sequences = sorted(reasons)
    assert reasons[sequences[0]][0]["message"].startswith("not a JSON document")
    assert reasons[sequences[1]] == [{"field": "data.price", "message": "Input should be a valid number"}]
    profile = read_docs(documents(stack.settings)[0], [user])[user]
    assert profile["eventCount"] == 2 and profile["purchases"] == 1
