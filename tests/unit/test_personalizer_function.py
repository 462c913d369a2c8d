"""The Personalizer-compatible HTTP function as the host calls it: routes and versions, the key, error bodies,
and the service over fake ports (the decision events it logs)."""
import json
from datetime import datetime, timezone

import azure.functions as func
import pytest

from functions import personalizer as api
from shared import bootstrap
from shared import events as ev
from shared import publisher
from shared.learning.explore import Serving
from shared.personalizer import configuration, service

NOW = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
RANK = {"contextFeatures": [{"user": {"type": "new"}}], "actions": [{"id": f"a{i}", "features": [{"n": i}]}
                                                                   for i in range(4)]}


class Ports:
    def __init__(self):
        self.settings = configuration.defaults()
        self.published, self.sent, self.refuse = [], [], False

    def save(self, settings):
        self.settings = settings
        return settings

    def send(self, batch):
        if self.refuse:
            raise publisher.Unavailable("hub down")
        self.sent.extend(batch)

    def ports(self) -> service.Ports:
        return service.Ports(settings=lambda: self.settings, save_settings=self.save,
                             serving=lambda: Serving(None, apprentice=True), publish=self.published.append,
                             send=self.send, clock=lambda: NOW)


@pytest.fixture
def fake(monkeypatch):
    holder = Ports()
    monkeypatch.setattr(bootstrap, "personalizer_ports", holder.ports)
    monkeypatch.delenv("PERSONALIZER_API_KEY", raising=False)
    return holder


def call(method: str, path: str, body=None, headers=None, params=None) -> func.HttpResponse:
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else (body or b"")
    request = func.HttpRequest(method, f"http://localhost/api/personalizer/{path}", body=data,
                               headers=headers or {}, params=params or {"api-version": "2022-09-01-preview"},
                               route_params={"path": path})
    return api.personalizer_api(request)


def test_rank_answers_201_with_personalizers_shape_and_logs_one_decision_event(fake):
    response = call("POST", "rank", RANK)
    body = json.loads(response.get_body())
    assert response.status_code == 201 and response.mimetype == "application/json"
    assert set(body) == {"ranking", "eventId", "rewardActionId"}
    assert sum(r["probability"] for r in body["ranking"]) == pytest.approx(1.0)
    (event,) = fake.published
    assert event.type == ev.PERSONALIZER_RANKED and event.data.decisionId == body["eventId"]
    assert event.user_id == service.SUBJECT and event.source == ev.PERSONALIZER_SOURCE
    assert [c.offerId for c in event.data.candidates] == ["a0", "a1", "a2", "a3"]


@pytest.mark.parametrize("prefix", ["", "v1.0/", "v1.1-preview.3/"])
def test_the_versioned_paths_reach_the_same_operations(fake, prefix):
    assert call("POST", f"{prefix}rank", RANK).status_code == 201
    assert call("POST", f"{prefix}events/e1/reward", {"value": 0.5}).status_code == 204
    assert call("POST", f"{prefix}events/e1/activate").status_code == 204
    assert call("GET", f"{prefix}configurations/service").status_code == 200


def test_rewards_and_activations_are_sent_before_the_204(fake):
    assert call("POST", "multislot/events/e9/reward", {"reward": [{"slotId": "top", "value": 1},
                                                                  {"slotId": "side", "value": 0.25}]}).status_code == 204
    assert call("POST", "multislot/events/e9/activate").status_code == 204
    assert [(e.type, e.data.decisionId, getattr(e.data, "slotId", None)) for e in fake.sent] == [
        (ev.PERSONALIZER_REWARDED, "e9", "top"), (ev.PERSONALIZER_REWARDED, "e9", "side"),
        (ev.PERSONALIZER_ACTIVATED, "e9", None)]
    assert {e.user_id for e in fake.sent} == {service.SUBJECT}


def test_a_reward_the_hub_refuses_is_a_503_with_retry_after_and_personalizers_error_body(fake):
    fake.refuse = True
    response = call("POST", "events/e1/reward", {"value": 1})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert json.loads(response.get_body())["error"]["code"] == "ServiceUnavailable"


def test_unknown_paths_are_404_and_wrong_methods_405_in_personalizers_error_shape(fake):
    missing, wrong = call("GET", "nothing/here"), call("GET", "rank")
    assert missing.status_code == 404 and json.loads(missing.get_body())["error"]["code"] == "ResourceNotFound"
    assert wrong.status_code == 405 and json.loads(wrong.get_body())["error"]["code"] == "MethodNotAllowed"


def test_with_a_key_set_the_key_header_is_required(fake, monkeypatch):
    monkeypatch.setenv("PERSONALIZER_API_KEY", "s3cret")
    refused = call("POST", "rank", RANK, headers={"Ocp-Apim-Subscription-Key": "wrong"})
    assert refused.status_code == 401 and json.loads(refused.get_body())["error"]["code"] == "401"
    assert call("POST", "rank", RANK).status_code == 401
    assert call("POST", "rank", RANK, headers={"Ocp-Apim-Subscription-Key": "s3cret"}).status_code == 201
    assert len(fake.published) == 1


def test_a_configuration_put_is_stored_and_drives_the_next_ranks_exploration(fake):
    config = json.loads(call("GET", "configurations/service").get_body())
    config.update(explorationPercentage=0.5, rewardWaitTime="PT5S", modelExportFrequency="PT30S")
    response = call("PUT", "configurations/service", config)
    assert response.status_code == 200
    assert json.loads(call("GET", "configurations/service").get_body())["explorationPercentage"] == 0.5
    assert fake.settings.reward_wait_seconds == 5 and fake.settings.model_export_seconds == 30
    call("POST", "rank", RANK)
    assert fake.published[-1].data.exploration.epsilon == 0.5
    ranking = json.loads(call("POST", "rank", dict(RANK, eventId="fixed")).get_body())["ranking"]
    assert sorted(r["probability"] for r in ranking) == pytest.approx([0.125, 0.125, 0.125, 0.625])


def test_a_bad_body_is_a_400_naming_the_field(fake):
    response = call("POST", "rank", {"actions": [{"features": []}]})
    error = json.loads(response.get_body())["error"]
    assert response.status_code == 400 and error["code"] == "BadRequest" and "id" in error["message"]
    assert fake.published == []


def test_what_offerloop_does_not_serve_is_a_501_that_says_so(fake):
    for method, path in (("GET", "featureImportances"), ("PUT", "featureImportances/f1"), ("DELETE", "logs")):
        response = call(method, path, {})
        error = json.loads(response.get_body())["error"]
        assert response.status_code == 501 and error["code"] == "NotImplemented" and "not supported" in error["message"]
