"""The queue-driven shopper simulation through the host on the local stack: start, status, the
website events it posts, conflicts and bad requests, a poisoned message, and stop."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Callable, Optional

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared import archive, cache, events, settings
from shared.simulation import service
from shared.simulation.shopper import SOURCE
from shared.simulation.store import PREFIX

from .ingest_support import ArchiveWatch, wait_for
from .offers_world import seeded  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(240)

START = {"users": 30, "rate": 0, "seed": 11}
POISON_QUEUE = f"{service.ACTIONS_QUEUE}-poison"


def call(api: str, method: str, path: str, body: Any = None, raw: Optional[bytes] = None
         ) -> tuple[int, dict, str]:
    """(status, JSON body, content type) of a request to the app."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(f"{api}/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), error.headers["Content-Type"]


def status(api: str) -> dict:
    code, body, _ = call(api, "GET", "simulation/status")
    assert code == 200
    return body


def queue(stack, name: str) -> QueueClient:
    return QueueClient.from_connection_string(stack.settings["AzureWebJobsStorage"], name,
                                              message_encode_policy=TextBase64EncodePolicy(),
                                              message_decode_policy=TextBase64DecodePolicy())


class ArchivedEvents(ArchiveWatch):
    """The archived events that `wanted` accepts, re-reading blobs that are new or rewritten."""

    def __init__(self, app_settings, wanted: Callable[[dict], bool]):
        super().__init__(app_settings, ())
        self.wanted = wanted
        self.events: dict[str, list[dict]] = {}

    def poll(self) -> list[dict]:
        changed = [b for b in (archive.parse_name(p.name) for p in self._listing()) if b]
        for batch, records in self.store.read_all(changed):
            self.events[batch.name] = [r["event"] for r in records if self.wanted(r["event"])]
        return [e for es in self.events.values() for e in es]


@pytest.fixture(scope="module")
def clean(api, stack, seeded):
    """No run and no simulation keys or messages left over, before and after this module."""
    redis = cache.redis_client(settings.load(stack.settings).redis_url)

    def wipe() -> None:
        call(api, "POST", "simulation/stop")
        keys = list(redis.scan_iter(f"{PREFIX}*", count=1000))
        if keys:
            redis.delete(*keys)
        for name in (*service.QUEUES, POISON_QUEUE):
            queue(stack, name).clear_messages()

    wipe()
    yield
    wipe()


@pytest.fixture(scope="module")
def running(api, stack, clean) -> dict:
    """A run of 30 users as fast as the stack goes; stopped at the end of the module (if a test did not)."""
    code, body, content_type = call(api, "POST", "simulation/start", START)
    try:
        assert code == 202 and content_type.startswith("application/json"), body
        yield body
    finally:
        call(api, "POST", "simulation/stop")


def test_start_answers_202_with_the_run(running):
    assert running["state"] == "running" and running["runId"]
    assert (running["users"], running["rate"], running["seed"], running["slots"]) == (30, 0.0, 11, 1)
    assert running["thinkSeconds"] == 0 and running["returnSeconds"] == 0
    assert running["world"]["seed"] == 11 and running["startedAt"].endswith("Z")


def test_status_counts_rising_impressions_and_clicks_and_the_ctrs_of_random_and_oracle(api, running):
    first = wait_for(lambda: (s := status(api))["impressions"] >= 50 and s, 30, "50 impressions")
    later = wait_for(lambda: (s := status(api))["impressions"] >= first["impressions"] + 100
                     and s["clicks"] > 0 and s, 30, "100 more impressions and a click")
    assert later["state"] == "running" and later["runId"] == running["runId"]
    assert later["clicks"] >= first["clicks"] and later["actions"] > first["actions"]
    # One slot a page: an impression per action (an action's counters land in a few increments,
    # so a reading may catch the in-flight ones half-way).
    assert 0 <= later["actions"] - later["impressions"] <= 40
    assert 0 < later["randomCtr"] < later["oracleCtr"] <= 1
    assert later["expectedCtr"] > later["randomCtr"]  # the baseline does better than chance...
    assert later["expectedCtr"] <= later["oracleCtr"]  # ...and no better than the oracle
    assert later["ctr"] == later["clicks"] / later["impressions"]
    assert later["actionsPerSecond"] > 0 and later["sessions"] >= START["users"]
    assert len(later["curve"]) >= 1 and sum(p["impressions"] for p in later["curve"]) <= later["impressions"]
    print(f"\nstatus: {later['actions']} actions, {later['actionsPerSecond']:.1f}/s, {later['impressions']} "
          f"impressions, ctr {later['ctr']:.3f}, expected {later['expectedCtr']:.3f}, "
          f"random {later['randomCtr']:.3f}, oracle {later['oracleCtr']:.3f}")


def test_the_simulated_website_events_go_through_the_events_path_into_the_archive(api, stack, running):
    started = datetime.fromisoformat(running["startedAt"].replace("Z", "+00:00"))
    simulated: set[str] = set()

    def of_the_run(event: dict) -> bool:
        if datetime.fromisoformat(event["time"].replace("Z", "+00:00")) < started:
            return False
        if event.get("source") == SOURCE:
            simulated.add(event["subject"])
            return True
        return event["type"] == events.OFFER_SHOWN

    archived = ArchivedEvents(stack.settings, of_the_run)

    def enough() -> Optional[list[dict]]:
        found = archived.poll()
        kinds = {(e["type"], e["source"]) for e in found}
        return found if {(events.PRODUCT_VIEWED, SOURCE), (events.OFFER_CLICKED, SOURCE)} <= kinds \
            and len({e["subject"] for e in found if e["source"] == SOURCE}) == START["users"] else None

    found = wait_for(enough, 45, "views and clicks of every simulated user in the archive", interval=1)
    shown = {e["id"]: e for e in found if e["type"] == events.OFFER_SHOWN and e["subject"] in simulated}
    clicks = [e for e in found if e["type"] == events.OFFER_CLICKED]
    assert len(simulated) == START["users"] and shown
    assert all(e["source"] == events.OFFERS_SOURCE for e in shown.values())
    # Each click follows an offer the offers service showed that user.
    followed = [c for c in clicks if c["data"]["decisionId"] in shown]
    assert followed, "no archived click refers to an archived offer.shown"
    for click in followed:
        decision = shown[click["data"]["decisionId"]]
        assert decision["subject"] == click["subject"]
        assert click["data"]["offerId"] in [c["offerId"] for c in decision["data"]["chosen"]]
    print(f"\narchive: {len(found)} events of the run, {len(shown)} offer.shown, {len(clicks)} offer.clicked")


def test_a_second_start_while_running_is_a_409_problem(api, running):
    code, body, content_type = call(api, "POST", "simulation/start", {"users": 2})
    assert code == 409 and content_type.startswith("application/problem+json")
    assert body["status"] == 409 and body["runId"] == running["runId"]
    assert status(api)["runId"] == running["runId"]


@pytest.mark.parametrize("body, field", [
    ({"users": 0}, "users"),
    ({"users": "x"}, "users"),
    ({"users": 3, "rate": -1}, "rate"),
    ({"users": 3, "world": {"gravity": 2}}, "world"),
    ({"users": 3, "colour": "red"}, "colour"),
    ({}, "users"),
])
def test_an_invalid_start_is_a_400_problem_naming_the_field(api, running, body, field):
    code, problem, content_type = call(api, "POST", "simulation/start", body)
    assert code == 400 and content_type.startswith("application/problem+json"), problem
    assert problem["status"] == 400 and [e["field"] for e in problem["errors"]] == [field]


def test_a_malformed_start_body_is_a_400_problem(api, running):
    code, problem, content_type = call(api, "POST", "simulation/start", raw=b'{"users": 3')
    assert code == 400 and content_type.startswith("application/problem+json")
    assert problem["title"] == "Malformed JSON" and "JSON" in problem["detail"]


def test_a_malformed_message_ends_in_the_poison_queue_and_the_simulation_carries_on(api, stack, running):
    text = f"not a simulation step {time.time_ns()}"
    sent_at = time.monotonic()
    queue(stack, service.ACTIONS_QUEUE).send_message(text)
    poison = queue(stack, POISON_QUEUE)
    wait_for(lambda: text in [m.content for m in poison.peek_messages(max_messages=32)], 60,
             "the malformed message in simulation-actions-poison", interval=0.5)
    poisoned_after = time.monotonic() - sent_at
    at_poisoning = status(api)["impressions"]
    # The host tried it maxDequeueCount (5) times, each failure visible again after 2 s.
    assert poisoned_after >= 4 * 2 - 1
    carried_on = wait_for(lambda: (s := status(api))["impressions"] > at_poisoning + 20 and s, 20,
                          "impressions after the poisoning")
    assert carried_on["state"] == "running" and carried_on["runId"] == running["runId"]
    print(f"\npoisoned after {poisoned_after:.1f} s; impressions {at_poisoning} -> {carried_on['impressions']}")


def test_stop_freezes_the_counters_and_empties_both_queues(api, stack, running):
    code, body, _ = call(api, "POST", "simulation/stop")
    assert code == 200 and body["state"] == "stopped" and body["runId"] == running["runId"]
    assert body["stoppedAt"] >= body["startedAt"]
    time.sleep(3)  # steps already running finish (and their outcomes are dropped)
    settled = status(api)
    time.sleep(3)
    final = status(api)
    assert final["state"] == "stopped" and final["runId"] == running["runId"] and final["stoppedAt"]
    assert final["actions"] == settled["actions"] > 0
    assert final["impressions"] == final["actions"]  # one slot a page, and nothing half-counted now

    def empty() -> bool:
        return all(queue(stack, name).get_queue_properties().approximate_message_count == 0
                   for name in service.QUEUES)

    wait_for(empty, 15, "both simulation queues empty", interval=0.5)
    code, again, _ = call(api, "POST", "simulation/stop")
    assert code == 200 and again == {"state": "idle", "runId": None}
    assert status(api)["runId"] == running["runId"]  # the stopped run is still reported
    print(f"\nstopped: {final['actions']} actions, {final['impressions']} impressions, {final['clicks']} clicks, "
          f"ctr {final['ctr']:.3f}, expected {final['expectedCtr']:.3f}, random {final['randomCtr']:.3f}, "
          f"oracle {final['oracleCtr']:.3f}, lift {final['liftFraction']:.2f}")


def test_the_demo_command_starts_a_simulation_once(api, clean):
    """`python -m ops demo`'s last step (what `make up` runs once the catalog is seeded)."""
    from ops.demo import start_simulation

    try:
        first = start_simulation(api, 3, 1.0)
        assert "started: 3 users" in first
        current = status(api)
        assert current["state"] == "running" and current["users"] == 3 and current["rate"] == 1.0
        again = start_simulation(api, 5, 2.0)
        assert "already running" in again and current["runId"] in again
        assert status(api)["runId"] == current["runId"]  # the second call started nothing
    finally:
        call(api, "POST", "simulation/stop")
