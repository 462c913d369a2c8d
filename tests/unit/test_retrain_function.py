"""POST /api/admin/retrain: the report on success; a problem document, and nothing promoted, when the job fails."""
import json

import azure.functions as func

from functions import retrain


def request() -> func.HttpRequest:
    return func.HttpRequest("POST", "http://localhost/api/admin/retrain", body=b"")


def test_the_report_is_returned(monkeypatch):
    report = {"promoted": True, "reason": "promoted: …", "version": "m1"}
    monkeypatch.setattr(retrain.bootstrap, "retrain", lambda force: report if force else None)
    response = retrain.admin_retrain.build().get_user_function()(request())
    assert response.status_code == 200 and json.loads(response.get_body()) == report


def test_a_failing_job_is_a_503_problem(monkeypatch):
    def fail(force):
        raise ConnectionError("blob storage unreachable")

    monkeypatch.setattr(retrain.bootstrap, "retrain", fail)
    response = retrain.admin_retrain.build().get_user_function()(request())
    body = json.loads(response.get_body())
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert body["type"] == "urn:offerloop:problem:retrain-failed" and "unreachable" in body["detail"]
    assert response.headers["Retry-After"] == "30"
