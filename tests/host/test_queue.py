"""Queue triggers: base64 decoding, delete on success, retries and the poison queue."""
from __future__ import annotations

import base64

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueServiceClient

from .conftest import wait_for

pytestmark = [pytest.mark.host, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def host(make_host):
    return make_host(enable=["work", "flaky"])


@pytest.fixture(scope="module")
def queues(azurite):
    with QueueServiceClient.from_connection_string(azurite) as service:
        yield service


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def messages(queues, name: str) -> list[str]:
    try:
        return [m.content for m in queues.get_queue_client(name).peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


def test_the_host_creates_the_queues_it_listens_to(host, queues):
    names = {q.name for q in queues.list_queues()}
    assert {"work-items", "flaky-items"} <= names


def test_a_succeeding_message_is_decoded_from_base64_and_deleted(host, queues):
    queues.get_queue_client("work-items").send_message(encoded("héllo wörld"))
    seen = wait_for(lambda: host.records("work"), 20, "the work function")
    assert seen[0]["body"] == "héllo wörld"
    assert seen[0]["dequeue_count"] == 1
    assert seen[0]["id"] and seen[0]["pop_receipt"] and seen[0]["insertion_time"]
    wait_for(lambda: messages(queues, "work-items") == [], 10, "the message to be deleted")


def test_a_failing_message_is_retried_then_moved_to_the_poison_queue(host, queues):
    queues.get_queue_client("flaky-items").send_message(encoded("doomed"))
    wait_for(lambda: messages(queues, "flaky-items-poison"), 30, "the poison queue")
    attempts = host.records("flaky")
    assert [a["dequeue_count"] for a in attempts] == [1, 2, 3]  # maxDequeueCount is 3 in host.json
    assert len({a["invocation_id"] for a in attempts}) == 3
    assert messages(queues, "flaky-items-poison") == [encoded("doomed")]
    assert messages(queues, "flaky-items") == []
    assert "Message has reached MaxDequeueCount of 3. Moving message to queue 'flaky-items-poison'." in host.log()


def test_a_message_that_is_not_base64_goes_straight_to_the_poison_queue(host, queues):
    before = len(host.records("work"))
    queues.get_queue_client("work-items").send_message("plain text, not base64!")
    wait_for(lambda: "plain text, not base64!" in messages(queues, "work-items-poison"), 20, "the poison queue")
    assert len(host.records("work")) == before
    assert messages(queues, "work-items") == []
