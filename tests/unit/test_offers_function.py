"""GET /api/offers as the host calls it: query validation to problem+json, and the decision as JSON."""
import json

import azure.functions as func
import pytest

from functions import offers as offers_api
from shared import bootstrap, coldstart, offers
from shared.catalog_cache import build_snapshot

from .offer_fakes import NOW

SNAPSHOT = build_snapshot(
    [], [{"id": f"o{i}", "title": f"offer {i}", "kind": "free_shipping", "minBasket": 10 * (i + 1),
          "validFrom": "2026-01-01T00:00:00Z", "validTo": "2036-01-01T00:00:00Z", "rules": {}} for i in range(12)],
    [], now=NOW)


@pytest.fixture
def published(monkeypatch):
    sent = []
    ports = offers.Ports(read_profile=lambda user_id: None, catalog=lambda: SNAPSHOT,
                         popular=coldstart.PopularityLists(lambda keys: [None] * len(keys), SNAPSHOT.fallback).get,
                         publish=sent.append, clock=lambda: NOW)
    monkeypatch.setattr(bootstrap, "offer_ports", lambda: ports)
    return sent


def call(params: dict) -> func.HttpResponse:
    request = func.HttpRequest("GET", "http://localhost/api/offers", params=params, body=b"")
    return offers_api.get_offers.build().get_user_function()(request)


def test_offers_for_a_user_are_the_decision_as_json(published):
    response = call({"userId": "u1", "n": "4"})
    body = json.loads(response.get_body())
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert body["userId"] == "u1" and body["coldStart"] is True and body["modelVersion"] == "baseline-1"
    assert len(body["offers"]) == 4 and body["eventId"] == published[0].id and len(published) == 1


def test_n_defaults_to_three(published):
    assert len(json.loads(call({"userId": "u1"}).get_body())["offers"]) == 3


@pytest.mark.parametrize("params, field", [
    ({}, "userId"), ({"userId": "  "}, "userId"), ({"userId": "x" * 129}, "userId"),
    ({"userId": "u1", "n": "0"}, "n"), ({"userId": "u1", "n": "11"}, "n"),
    ({"userId": "u1", "n": "abc"}, "n"), ({"userId": "u1", "n": "-1"}, "n"), ({"userId": "u1", "n": "2.5"}, "n"),
])
def test_a_bad_query_is_a_400_problem_naming_the_parameter(published, params, field):
    response = call(params)
    body = json.loads(response.get_body())
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert body["status"] == 400 and [e["field"] for e in body["errors"]] == [field]
    assert published == []  # no decision, no event


def test_both_bad_parameters_are_named_at_once(published):
    body = json.loads(call({"n": "99"}).get_body())
    assert [e["field"] for e in body["errors"]] == ["userId", "n"]
