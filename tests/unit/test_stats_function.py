"""GET /api/stats as the host calls it, over the statistics service with fake ports."""
import json

import azure.functions as func
import pytest

from functions import stats as stats_api
from shared import bootstrap, stats

from .test_stats import FakePorts


@pytest.fixture
def fake(monkeypatch) -> FakePorts:
    fake = FakePorts()
    answers = stats.Answers(fake.ports(), seconds=0)
    monkeypatch.setattr(bootstrap, "stats_answers", lambda: answers)
    return fake


def call(params: dict) -> func.HttpResponse:
    request = func.HttpRequest("GET", "http://localhost/api/stats", params=params, body=b"")
    return stats_api.get_stats.build().get_user_function()(request)


def test_stats_is_an_anonymous_get_on_the_stats_route():
    bindings = json.loads(stats_api.get_stats.build().get_function_json())["bindings"]
    assert bindings[0] == {"direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["GET"],
                           "authLevel": "ANONYMOUS", "route": "stats"}


def test_the_last_60_minutes_by_default_never_cached_by_the_browser(fake):
    response = call({})
    body = json.loads(response.get_body())
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert len(body["series"]) == 60 and body["to"] == "2026-11-22T03:10:00Z"
    assert body["totals"] == {"impressions": 5, "clicks": 2, "ctr": 0.4, "events": 9}  # 03:00 is in the window now
    assert len(json.loads(call({"minutes": "1440"}).get_body())["series"]) == 1440
    assert json.loads(call({"minutes": " 5 "}).get_body())["from"] == "2026-11-22T03:06:00Z"


@pytest.mark.parametrize("minutes", ["0", "1441", "ten", "-5", "1.5", "1e3"])
def test_a_bad_number_of_minutes_is_a_400_problem(fake, minutes):
    response = call({"minutes": minutes})
    body = json.loads(response.get_body())
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    assert [e["field"] for e in body["errors"]] == ["minutes"] and "1 to 1440" in body["errors"][0]["message"]
    assert fake.hours == []  # nothing was read


def test_an_unreachable_database_is_a_503_problem_to_retry(fake):
    fake.down = True
    response = call({})
    body = json.loads(response.get_body())
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert body["type"] == "urn:offerloop:problem:stats-unavailable" and "offerstats" in body["detail"]
    assert response.headers["Retry-After"] == "5"
