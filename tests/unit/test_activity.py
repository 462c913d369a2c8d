"""Accepting website activity: all-or-nothing validation, grouping by user, the HTTP answers."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import azure.functions as func
import pytest
from azure.eventhub.exceptions import ConnectError

from functions import events as events_api
from shared import activity, bootstrap, events, publisher

NOW = datetime(2026, 11, 22, 5, 30, tzinfo=timezone.utc)


class FakePublish:
    """The publish port: records each call's events."""

    def __init__(self):
        self.calls: list[list[events.Event]] = []

    def __call__(self, batch):
        self.calls.append(list(batch))

    @property
    def events(self) -> list[events.Event]:
        return [e for call in self.calls for e in call]


def view(user: str = "u-1", n: int = 0, **changes) -> dict:
    raw = {"specversion": "1.0", "id": f"{user}-{n}", "source": "/store", "type": events.PRODUCT_VIEWED,
           "subject": user, "time": "2026-11-22T05:00:00Z", "data": {"productId": f"p{n}", "category": "shoes"}}
    raw.update(changes)
    return raw


def click(user: str, n: int) -> dict:
    return view(user, n, type=events.OFFER_CLICKED, data={"offerId": "of-1", "decisionId": f"d-{n}"})


def body(document) -> bytes:
    return json.dumps(document).encode()


def rejected(raw_body: bytes) -> tuple[activity.Rejected, FakePublish]:
    publish = FakePublish()
    with pytest.raises(activity.Rejected) as caught:
        activity.accept(raw_body, publish, now=NOW)
    return caught.value, publish


# --- the service: activity.accept -------------------------------------------------------------

def test_a_single_event_object_is_accepted_and_published():
    publish = FakePublish()
    assert activity.accept(body(view()), publish, now=NOW) == 1
    assert [(e.id, e.user_id, e.type) for e in publish.events] == [("u-1-0", "u-1", events.PRODUCT_VIEWED)]


def test_a_mixed_batch_of_several_users_is_published_in_one_call_in_request_order():
    sent = [view("u-1", 0), click("u-2", 1), view("u-1", 2), view("u-3", 3), click("u-1", 4)]
    publish = FakePublish()
    assert activity.accept(body(sent), publish, now=NOW) == 5
    assert len(publish.calls) == 1
    assert [e.id for e in publish.events] == [e["id"] for e in sent]


def test_an_event_without_time_gets_the_acceptance_time():
    raw = view()
    del raw["time"]
    publish = FakePublish()
    activity.accept(body([raw, view(n=1)]), publish, now=NOW)
    assert [e.time for e in publish.events] == [NOW, datetime(2026, 11, 22, 5, 0, tzinfo=timezone.utc)]


def test_one_bad_event_rejects_the_whole_batch_naming_its_index_and_field():
    sent = [view(n=i) for i in range(5)]
    sent[3]["data"]["productId"] = 42
    error, publish = rejected(body(sent))
    assert error.reason == activity.INVALID_EVENTS and publish.calls == []
    assert [e.to_dict() for e in error.errors] == [
        {"index": 3, "field": "data.productId", "message": "Input should be a valid string",
         "pointer": "#/3/data/productId"}]


def test_every_bad_event_is_named_not_only_the_first():
    sent = [view(n=0, subject=""), view(n=1), view(n=2, type="offerloop.product.liked"), view(n=3, time="noon")]
    error, publish = rejected(body(sent))
    assert [(e.index, e.field) for e in error.errors] == [(0, "subject"), (2, "type"), (3, "time")]
    assert "3 of 4 events are invalid" in error.detail and publish.calls == []


def test_a_missing_user_id_is_named_as_the_subject():
    raw = view()
    del raw["subject"]
    error, publish = rejected(body(raw))
    assert [(e.index, e.field, e.pointer) for e in error.errors] == [(0, "subject", "#/subject")]
    assert "userId" in error.errors[0].message and publish.calls == []


def test_offer_shown_is_refused_as_the_offers_apis_event():
    error, publish = rejected(body([view(), view(n=1, type=events.OFFER_SHOWN)]))
    assert [(e.index, e.field) for e in error.errors] == [(1, "type")]
    assert "emitted by the offers API" in error.errors[0].message and publish.calls == []


def test_duplicate_ids_in_one_request_are_refused():
    error, publish = rejected(body([view(n=0), view(n=1), view(n=0)]))
    assert [(e.index, e.field) for e in error.errors] == [(2, "id")]
    assert "event 0" in error.errors[0].message and publish.calls == []


@pytest.mark.parametrize("raw_body, position", [
    (b'[{"specversion": "1.0",', "line 1 column 24"),
    (b'{"id": "a"}\n{"id": "b"}', "line 2 column 1"),
    (b"", "line 1 column 1"),
])
def test_malformed_json_is_refused_with_its_position(raw_body, position):
    error, publish = rejected(raw_body)
    assert error.reason == activity.MALFORMED_JSON and position in error.detail and publish.calls == []


@pytest.mark.parametrize("raw_body", [b'[NaN]', b'\xff\xfe{', b"[" * 100_000 + b"]" * 100_000])
def test_non_json_bodies_are_refused_as_malformed(raw_body):
    error, publish = rejected(raw_body)
    assert error.reason == activity.MALFORMED_JSON and publish.calls == []


@pytest.mark.parametrize("document", ["an event", 42, None])
def test_a_body_that_is_neither_an_event_nor_an_array_is_refused(document):
    error, publish = rejected(body(document))
    assert error.reason == activity.NOT_EVENTS and publish.calls == []


def test_an_empty_array_is_refused():
    error, publish = rejected(b"[]")
    assert error.reason == activity.EMPTY_BATCH and publish.calls == []


def test_more_than_500_events_are_refused_and_500_are_accepted():
    error, publish = rejected(body([view(n=i) for i in range(501)]))
    assert error.reason == activity.TOO_MANY_EVENTS and "501" in error.detail and publish.calls == []
    assert activity.accept(body([view(n=i) for i in range(500)]), FakePublish(), now=NOW) == 500


def test_a_body_over_1_mib_is_refused_before_it_is_parsed():
    raw = body([view(n=0, data={"productId": "p", "category": "c", "note": "x" * activity.MAX_BODY_BYTES})])
    error, publish = rejected(raw)
    assert error.reason == activity.BODY_TOO_LARGE and str(len(raw)) in error.detail and publish.calls == []


def test_a_declared_length_over_1_mib_is_refused_and_a_missing_one_is_not():
    with pytest.raises(activity.Rejected) as caught:
        activity.check_declared_length(str(activity.MAX_BODY_BYTES + 1))
    assert caught.value.reason == activity.BODY_TOO_LARGE
    for fine in (None, "", str(activity.MAX_BODY_BYTES), "not-a-number"):
        activity.check_declared_length(fine)


def test_an_event_over_256_kib_is_refused_by_index():
    big = view(n=1, data={"productId": "p", "category": "c", "note": "x" * activity.MAX_EVENT_BYTES})
    error, publish = rejected(body([view(n=0), big]))
    assert [(e.index, e.field) for e in error.errors] == [(1, "")] and publish.calls == []


def test_a_long_list_of_errors_is_cut_to_50_but_counted():
    error, _ = rejected(body([view(n=i, subject="") for i in range(80)]))
    assert len(error.errors) == activity.MAX_LISTED_ERRORS and "80 of 80 events" in error.detail


def test_what_the_publisher_raises_reaches_the_caller():
    def broken(_):
        raise publisher.Unavailable("down")

    with pytest.raises(publisher.Unavailable):
        activity.accept(body(view()), broken, now=NOW)


# --- the adapter: publisher.send with a fake producer -------------------------------------------

class FakeBatch:
    def __init__(self, partition_key: str, capacity: int):
        self.partition_key, self.capacity, self.events = partition_key, capacity, []

    def add(self, data):
        if len(self.events) == self.capacity:
            raise ValueError("EventDataBatch has reached its size limit")
        self.events.append(data)

    def __len__(self):
        return len(self.events)


class FakeProducer:
    """Records what was sent, batch by batch; `capacity` events fit in a batch."""

    def __init__(self, capacity: int = 100, fail_after: int | None = None):
        self.capacity, self.fail_after, self.sent = capacity, fail_after, []

    def create_batch(self, *, partition_key):
        return FakeBatch(partition_key, self.capacity)

    def send_batch(self, batch, timeout=None):
        assert timeout is not None and 0 < timeout <= publisher.SEND_TIMEOUT_SECONDS
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise ConnectError("Failed to initiate the connection due to exception: [Errno 111]")
        self.sent.append(batch)


def parsed(sent_events) -> list[events.Event]:
    return [events.parse(json.loads(b"".join(e.body))) for e in sent_events]


def accepted(raw_events) -> list[events.Event]:
    publish = FakePublish()
    activity.accept(body(raw_events), publish, now=NOW)
    return publish.events


def test_each_users_events_go_in_one_batch_keyed_by_user_in_order():
    sent = [view("u-1", 0), click("u-2", 1), view("u-1", 2), view("u-3", 3), click("u-1", 4), view("u-2", 5)]
    producer = FakeProducer()
    publisher.send(producer, accepted(sent))
    assert [(b.partition_key, [e.id for e in parsed(b.events)]) for b in producer.sent] == [
        ("u-1", ["u-1-0", "u-1-2", "u-1-4"]), ("u-2", ["u-2-1", "u-2-5"]), ("u-3", ["u-3-3"])]


def test_each_event_body_is_the_cloudevent_json_with_its_content_type():
    producer = FakeProducer()
    publisher.send(producer, accepted([view("u-1", 0), click("u-1", 1)]))
    (batch,) = producer.sent
    assert [e.content_type for e in batch.events] == ["application/cloudevents+json"] * 2
    assert parsed(batch.events) == accepted([view("u-1", 0), click("u-1", 1)])


def test_a_full_batch_is_sent_and_the_users_next_batch_continues_in_order():
    producer = FakeProducer(capacity=2)
    publisher.send(producer, accepted([view("u-1", i) for i in range(5)] + [view("u-2", 9)]))
    assert [(b.partition_key, len(b)) for b in producer.sent] == [("u-1", 2), ("u-1", 2), ("u-1", 1), ("u-2", 1)]
    assert [e.id for b in producer.sent[:3] for e in parsed(b.events)] == [f"u-1-{i}" for i in range(5)]


def test_an_event_hubs_failure_becomes_unavailable_with_a_retry_after():
    producer = FakeProducer(fail_after=1)
    with pytest.raises(publisher.Unavailable) as caught:
        publisher.send(producer, accepted([view("u-1", 0), view("u-2", 1)]))
    assert caught.value.retry_after == publisher.RETRY_AFTER_SECONDS and "ConnectError" in str(caught.value)
    assert [b.partition_key for b in producer.sent] == ["u-1"]


# --- the trigger: POST /api/events as the host calls it ------------------------------------------

@pytest.fixture
def port(monkeypatch):
    """The trigger wired to a fake publish port instead of Event Hubs."""
    publish = FakePublish()
    monkeypatch.setattr(bootstrap, "app_settings", lambda: None)
    monkeypatch.setattr(publisher, "for_settings", lambda config: publish)
    return publish


def post(raw_body: bytes, content_type: str | None = "application/json", **headers) -> func.HttpResponse:
    if content_type:
        headers["Content-Type"] = content_type
    request = func.HttpRequest("POST", "http://localhost/api/events", headers=headers, body=raw_body)
    return events_api.post_events.build().get_user_function()(request)


def problem_of(response: func.HttpResponse) -> dict:
    assert response.mimetype == "application/problem+json"
    document = json.loads(response.get_body())
    assert document["status"] == response.status_code and document["title"] and document["detail"]
    return document


@pytest.mark.parametrize("content_type", ["application/json", "application/cloudevents+json",
                                          "application/cloudevents-batch+json", "Application/JSON; charset=utf-8"])
def test_accepted_events_answer_202_with_the_count(port, content_type):
    response = post(body([view("u-1", 0), click("u-2", 1)]), content_type)
    assert response.status_code == 202 and json.loads(response.get_body()) == {"accepted": 2}
    assert len(port.events) == 2


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_other_content_types_answer_415(port, content_type):
    response = post(body(view()), content_type)
    document = problem_of(response)
    assert response.status_code == 415 and document["type"] == "urn:offerloop:problem:unsupported-media-type"
    assert "application/cloudevents-batch+json" in response.headers["Accept-Post"] and port.calls == []


def test_invalid_events_answer_400_naming_index_and_field(port):
    response = post(body([view(n=0), view(n=1, data={"productId": "p"})]))
    document = problem_of(response)
    assert response.status_code == 400 and document["type"] == "urn:offerloop:problem:invalid-events"
    assert [(e["index"], e["field"]) for e in document["errors"]] == [(1, "data.category")]
    assert port.calls == []


def test_too_many_events_and_too_large_bodies_answer_413(port):
    assert post(body([view(n=i) for i in range(501)])).status_code == 413
    oversize = post(body(view()), **{"Content-Length": str(activity.MAX_BODY_BYTES + 1)})
    assert oversize.status_code == 413 and problem_of(oversize)["type"].endswith(":body-too-large")
    assert port.calls == []


def test_malformed_json_answers_400_with_the_position(port):
    response = post(b'{"specversion": "1.0" "id": "x"}')
    assert response.status_code == 400 and "column 23" in problem_of(response)["detail"]


def test_event_hubs_being_down_answers_503_with_retry_after(monkeypatch):
    def down(_):
        raise publisher.Unavailable("ConnectError: refused", retry_after=7)

    monkeypatch.setattr(bootstrap, "app_settings", lambda: None)
    monkeypatch.setattr(publisher, "for_settings", lambda config: down)
    response = post(body(view()))
    assert response.status_code == 503 and response.headers["Retry-After"] == "7"
    assert problem_of(response)["type"] == "urn:offerloop:problem:events-unavailable"
