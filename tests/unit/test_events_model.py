"""The event contract (shared/events.py): each type valid and invalid, schema versions, round trips."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from shared import events

NOW = datetime(2026, 11, 22, 5, 30, tzinfo=timezone.utc)

VALID_DATA = {
    events.PRODUCT_VIEWED: {"productId": "p1", "category": "shoes", "price": 59.9, "device": "mobile"},
    events.CART_ADDED: {"productId": "p1", "category": "shoes", "price": 59.9, "quantity": 2},
    events.PRODUCT_PURCHASED: {"productId": "p1", "category": "shoes", "price": 59.9, "quantity": 1,
                               "orderId": "o-1"},
    events.OFFER_CLICKED: {"offerId": "of-1", "decisionId": "d-1"},
    events.REWARD_RECEIVED: {"decisionId": "d-1", "value": 1.0, "offerId": "of-1"},
    events.OFFER_SHOWN: {
        "decisionId": "d-1", "context": {"user": {"segment": "bargain"}},
        "candidates": [{"offerId": "of-1", "features": {"kind": "bundle"}},
                       {"offerId": "of-2", "features": {"kind": "free_shipping"}}],
        "chosen": [{"offerId": "of-2", "slot": 0, "probability": 0.85}],
        "modelVersion": "v3", "exploration": {"policy": "epsilon-greedy", "epsilon": 0.2}, "coldStart": False,
    },
}

# One wrong data field per type -> the field the error must name.
INVALID_DATA = {
    events.PRODUCT_VIEWED: ({"productId": 17}, "data.productId"),
    events.CART_ADDED: ({"quantity": 0}, "data.quantity"),
    events.PRODUCT_PURCHASED: ({"price": "59.90"}, "data.price"),
    events.OFFER_CLICKED: ({"decisionId": ""}, "data.decisionId"),
    events.REWARD_RECEIVED: ({"value": 2}, "data.value"),
    events.OFFER_SHOWN: ({"chosen": [{"offerId": "of-2", "slot": 0, "probability": 1.5}]},
                         "data.chosen.0.probability"),
}


def cloud_event(event_type: str = events.PRODUCT_VIEWED, **changes) -> dict:
    raw = {"specversion": "1.0", "id": "e-1", "source": "/store", "type": event_type, "subject": "u-1",
           "time": "2026-11-22T05:00:00Z", "data": dict(VALID_DATA[event_type])}
    raw.update(changes)
    return raw


def fields_of(raw, allowed=tuple(t for t, _ in events.SCHEMAS)) -> list[str]:
    with pytest.raises(events.InvalidEvent) as caught:
        events.parse(raw, allowed)
    return [e.field for e in caught.value.errors]


@pytest.mark.parametrize("event_type", sorted(VALID_DATA))
def test_each_type_parses_into_its_schema_with_the_subject_as_user(event_type):
    event = events.parse(cloud_event(event_type))
    assert (event.type, event.user_id, event.id, event.schema_version) == (event_type, "u-1", "e-1", 1)
    assert type(event.data) is events.SCHEMAS[(event_type, 1)]
    assert event.time == datetime(2026, 11, 22, 5, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("event_type", sorted(INVALID_DATA))
def test_each_type_names_its_invalid_data_field(event_type):
    change, field = INVALID_DATA[event_type]
    raw = cloud_event(event_type, data={**VALID_DATA[event_type], **change})
    assert fields_of(raw) == [field]


@pytest.mark.parametrize("event_type", sorted(VALID_DATA))
def test_each_type_names_a_missing_required_data_field(event_type):
    data = dict(VALID_DATA[event_type])
    first_required = next(name for name, f in events.SCHEMAS[(event_type, 1)].model_fields.items()
                          if f.is_required())
    del data[first_required]
    assert fields_of(cloud_event(event_type, data=data)) == [f"data.{first_required}"]


@pytest.mark.parametrize("event_type", sorted(VALID_DATA))
def test_each_type_survives_a_json_round_trip_unchanged(event_type):
    event = events.parse(cloud_event(event_type))
    again = events.parse(json.loads(event.to_json()))
    assert again == event and again.to_dict() == event.to_dict()


def test_the_json_form_is_a_structured_cloudevent_naming_its_schema_version():
    document = json.loads(events.parse(cloud_event(events.CART_ADDED)).to_json())
    assert document == {
        "specversion": "1.0", "id": "e-1", "source": "/store", "type": "offerloop.cart.added",
        "time": "2026-11-22T05:00:00Z", "subject": "u-1", "dataschema": "urn:offerloop:cart.added:1",
        "datacontenttype": "application/json",
        "data": {"productId": "p1", "category": "shoes", "price": 59.9, "quantity": 2},
    }


def test_a_named_schema_version_1_is_the_same_as_none():
    event = events.parse(cloud_event(dataschema="urn:offerloop:product.viewed:1"))
    assert event.schema_version == 1 and event == events.parse(cloud_event())


def test_an_unknown_schema_version_is_refused_by_name():
    with pytest.raises(events.InvalidEvent) as caught:
        events.parse(cloud_event(dataschema="urn:offerloop:product.viewed:2"))
    assert caught.value.errors == [events.FieldError("dataschema", "unknown version 2 of offerloop.product.viewed")]


def test_a_schema_of_another_type_is_refused():
    assert fields_of(cloud_event(dataschema="urn:offerloop:cart.added:1")) == ["dataschema"]


def test_unknown_data_fields_are_kept_but_wrong_types_are_not_coerced():
    event = events.parse(cloud_event(data={**VALID_DATA[events.PRODUCT_VIEWED], "referrer": "mail"}))
    assert event.to_dict()["data"]["referrer"] == "mail"
    assert fields_of(cloud_event(data={"productId": "p1", "category": "shoes", "price": "12"})) == ["data.price"]
    assert fields_of(cloud_event(events.CART_ADDED, data={**VALID_DATA[events.CART_ADDED], "quantity": 1.0})) \
        == ["data.quantity"]


def test_every_envelope_mistake_is_named_at_once():
    raw = cloud_event(specversion="0.3", id="", subject=None, type="offerloop.product.liked", data="p1")
    del raw["source"]
    assert sorted(fields_of(raw)) == ["data", "id", "source", "specversion", "subject", "type"]


def test_a_website_may_not_send_the_offers_functions_event():
    assert events.OFFER_SHOWN not in events.WEBSITE_TYPES
    assert fields_of(cloud_event(events.OFFER_SHOWN), events.WEBSITE_TYPES) == ["type"]


def test_a_missing_time_is_the_acceptance_time_and_a_bad_one_is_refused():
    raw = cloud_event()
    del raw["time"]
    assert events.parse(raw, now=NOW).time == NOW
    assert fields_of(cloud_event(time="yesterday")) == ["time"]
    assert fields_of(cloud_event(time="2026-11-22T05:00:00")) == ["time"]  # RFC 3339 needs an offset


def test_an_offset_time_is_kept_as_the_same_instant_and_written_in_utc():
    for written in ("2026-11-22T07:00:00+02:00", "2026-11-22T10:30:00+05:30", "2026-11-21T19:00:00-10:00",
                    "2026-11-22t05:00:00z", "2026-11-22T05:00:00.0000000Z"):
        event = events.parse(cloud_event(time=written))
        assert event.to_dict()["time"] == "2026-11-22T05:00:00Z", written
    for not_rfc3339 in ("20261122T050000Z", "2026-W47-7T05:00:00Z", "2026-11-22", 1763787600):
        assert fields_of(cloud_event(time=not_rfc3339)) == ["time"], not_rfc3339


def test_an_extension_attribute_with_an_invalid_name_is_not_blamed_on_the_time():
    with pytest.raises(events.InvalidEvent) as caught:
        events.parse(cloud_event(**{"user-id": "u-1"}))
    assert [e.field for e in caught.value.errors] == [""]
    assert "lower cased and alphanumeric" in caught.value.errors[0].message


def test_binary_data_and_non_objects_are_not_events():
    assert fields_of(cloud_event(data_base64="AAAA")) == ["data"]
    assert fields_of(["not", "an", "event"]) == [""]


def test_new_events_get_a_fresh_id_the_current_time_and_the_latest_version():
    data = events.OfferClickedV1(offerId="of-1", decisionId="d-1")
    first = events.new(events.OFFER_CLICKED, "u-1", data, source="/offerloop/test")
    second = events.new(events.OFFER_CLICKED, "u-1", data, source="/offerloop/test")
    assert first.id != second.id and len(first.id) == 36
    assert abs((first.time - datetime.now(timezone.utc)).total_seconds()) < 5
    assert first.schema_version == 1 and events.parse(json.loads(first.to_json())) == first
