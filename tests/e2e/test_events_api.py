"""POST /api/events through the host, onto the local Event Hubs emulator and back.

"Nothing forwarded" is checked on the hub itself: every partition's last enqueued sequence
number is the same after a refused request as before it. Events are read back on the
`analytics` consumer group (the ingest function owns `ingest`).
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import Message

import pytest
from azure.eventhub import EventHubConsumerClient, EventHubProducerClient

from shared import events

pytestmark = pytest.mark.timeout(180)

PROBLEM = "application/problem+json"


def post(api: str, payload, content_type: str = "application/json") -> tuple[int, Message, dict]:
    """POST a body (bytes, or a value to send as JSON); returns status, headers and the JSON answer."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(f"{api}/events", data=data, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"null")


def view(user: str, n: int, run: str, **changes) -> dict:
    raw = {"specversion": "1.0", "id": f"{run}-{user}-{n}", "source": "/e2e", "type": events.PRODUCT_VIEWED,
           "subject": user, "time": "2026-11-22T05:00:00Z",
           "data": {"productId": f"p{n}", "category": "shoes", "price": 10.5}}
    raw.update(changes)
    return raw


def batch(run: str, count: int, users: int) -> list[dict]:
    return [view(f"{run}-u{i % users}", i, run) for i in range(count)]


@pytest.fixture(scope="module")
def hub(stack):
    client = EventHubProducerClient.from_connection_string(
        stack.settings["EventHubConnection"], eventhub_name=stack.settings["EVENTHUB_NAME"])
    yield client
    client.close()


def positions(hub) -> dict[str, int]:
    """Each partition's last enqueued sequence number (-1 while it is empty)."""
    pids = hub.get_partition_ids()
    # Concurrently: each management call takes ~0.4 s against the emulator.
    with ThreadPoolExecutor(len(pids)) as pool:
        last = pool.map(lambda pid: hub.get_partition_properties(pid)["last_enqueued_sequence_number"], pids)
        return dict(zip(pids, last))


def read_back(stack, since: dict[str, int], ids: set[str], timeout: float = 60) -> list[tuple[str, int, object]]:
    """The events with these ids enqueued after `since`, as (partition, sequence number, EventData)."""
    found: list[tuple[str, int, object]] = []
    lock, done = threading.Lock(), threading.Event()

    def on_batch(context, received):
        with lock:
            for event in received:
                if event.body_as_json().get("id") in ids:
                    found.append((context.partition_id, event.sequence_number, event))
            if len({e.body_as_json()["id"] for _, _, e in found}) == len(ids):
                done.set()

    clients = []
    for pid, last in since.items():
        client = EventHubConsumerClient.from_connection_string(
            stack.settings["EventHubConnection"], consumer_group="analytics",
            eventhub_name=stack.settings["EVENTHUB_NAME"])
        clients.append(client)
        threading.Thread(target=client.receive_batch, daemon=True, kwargs=dict(
            on_event_batch=on_batch, partition_id=pid, max_wait_time=1,
            starting_position=last if last >= 0 else "-1", starting_position_inclusive=False)).start()
    done.wait(timeout)
    for client in clients:
        client.close()
    return found


def assert_problem(status: int, headers: Message, body: dict, expected_status: int) -> None:
    assert status == expected_status, body
    assert headers["Content-Type"].startswith(PROBLEM)
    assert body["status"] == expected_status and body["title"] and body["detail"]
    assert body["type"].startswith("urn:offerloop:problem:")


def with_bad(run: str, index: int, **changes) -> list[dict]:
    """Ten valid events of several users with the one at `index` changed."""
    sent = batch(run, 10, 3)
    sent[index] = {**sent[index], **changes}
    return sent


def without(raw: dict, key: str) -> dict:
    return {k: v for k, v in raw.items() if k != key}


# Bad request -> (status, the errors it must name as (index, field)).
def bad_requests(run: str) -> dict[str, tuple[object, int, list]]:
    wrong_type = with_bad(run, 2)
    wrong_type[2] = {**wrong_type[2], "data": {**wrong_type[2]["data"], "price": "10.50"}}
    missing_user = batch(run, 10, 3)
    missing_user[0] = without(missing_user[0], "subject")
    return {
        "malformed json": (json.dumps(batch(run, 10, 3)).encode()[:-5], 400, []),
        "wrong field type": (wrong_type, 400, [(2, "data.price")]),
        "unknown event type": (with_bad(run, 1, type="offerloop.product.liked"), 400, [(1, "type")]),
        "offer.shown from a website": (with_bad(run, 4, type=events.OFFER_SHOWN), 400, [(4, "type")]),
        "missing userId": (missing_user, 400, [(0, "subject")]),
        "duplicate ids": (with_bad(run, 9, id=f"{run}-{run}-u0-0"), 400, [(9, "id")]),
        "empty array": ([], 400, []),
        "501 events": (batch(run, 501, 50), 413, []),
        "body over 1 MB": (with_bad(run, 5, data={"productId": "p", "category": "c", "pad": "x" * 1_100_000}),
                           413, []),
    }


CASES = sorted(bad_requests("x"))


@pytest.mark.parametrize("case", CASES)
def test_a_bad_request_gets_a_problem_naming_what_is_wrong_and_nothing_is_forwarded(api, hub, case):
    run = uuid.uuid4().hex[:8]
    payload, expected_status, expected_errors = bad_requests(run)[case]
    before = positions(hub)
    status, headers, body = post(api, payload)
    assert_problem(status, headers, body, expected_status)
    assert [(e["index"], e["field"]) for e in body["errors"]] == expected_errors
    assert all(e["message"] for e in body["errors"])
    if case == "malformed json":
        assert "line 1 column" in body["detail"]
    assert positions(hub) == before, "a refused request forwarded events"


def test_another_content_type_gets_415_and_nothing_is_forwarded(api, hub):
    before = positions(hub)
    status, headers, body = post(api, batch("ct", 3, 3), content_type="text/plain")
    assert_problem(status, headers, body, 415)
    assert "application/cloudevents+json" in body["detail"]
    assert positions(hub) == before


def test_100_events_of_10_users_are_accepted_and_each_users_events_are_in_order_in_one_partition(api, hub, stack):
    run = uuid.uuid4().hex[:8]
    sent = batch(run, 100, 10)
    del sent[7]["time"]  # gets the acceptance time
    before = positions(hub)
    began = time.time()
    status, headers, body = post(api, sent, content_type="application/cloudevents-batch+json")
    assert (status, body) == (202, {"accepted": 100})

    found = read_back(stack, before, {e["id"] for e in sent})
    assert sorted(e.body_as_json()["id"] for _, _, e in found) == sorted(e["id"] for e in sent)  # each once
    partitions_of: dict[str, set[str]] = {}
    received_order: dict[str, list[str]] = {}
    for pid, _, event in sorted(found, key=lambda f: (f[0], f[1])):
        parsed = events.parse(json.loads(event.body_as_str()), events.WEBSITE_TYPES)
        assert event.partition_key.decode() == parsed.user_id and event.content_type == "application/cloudevents+json"
        partitions_of.setdefault(parsed.user_id, set()).add(pid)
        received_order.setdefault(parsed.user_id, []).append(parsed.id)
    assert len(partitions_of) == 10 and all(len(p) == 1 for p in partitions_of.values())
    for user, ids in received_order.items():
        assert ids == [e["id"] for e in sent if e["subject"] == user]
    (timeless,) = [e for _, _, e in found if e.body_as_json()["id"] == sent[7]["id"]]
    stamped = events.parse(timeless.body_as_json()).time.timestamp()
    assert began - 5 <= stamped <= time.time() + 5


@pytest.mark.parametrize("users", [500, 50])
def test_a_full_batch_of_500_events_is_accepted_and_on_the_hub(api, hub, users):
    run = uuid.uuid4().hex[:8]
    before = positions(hub)
    began = time.monotonic()
    status, _, body = post(api, batch(run, 500, users))
    took = time.monotonic() - began
    assert (status, body) == (202, {"accepted": 500})
    after = positions(hub)
    assert sum(after[p] - before[p] for p in before) == 500
    print(f"\nPOST /api/events: 500 events of {users} users took {took * 1000:.0f} ms")


def test_event_hubs_down_gets_503_with_retry_after_and_recovers(api, hub, stack):
    run = uuid.uuid4().hex[:8]
    stack.down(["eventhubs"], quiet=True)
    try:
        status, headers, body = post(api, batch(run, 5, 2))
    finally:
        stack.up(["eventhubs"])
    assert_problem(status, headers, body, 503)
    assert int(headers["Retry-After"]) > 0
    before = positions(hub)
    status, _, body = post(api, batch(run + "b", 5, 2))
    assert (status, body) == (202, {"accepted": 5})
    assert sum(positions(hub)[p] - before[p] for p in before) == 5
