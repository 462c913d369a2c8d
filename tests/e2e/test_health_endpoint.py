"""GET /api/health through the host, against the real local services."""
from __future__ import annotations

import json
import urllib.request

import pytest

pytestmark = pytest.mark.timeout(120)

DEPENDENCIES = {"blob", "queue", "cosmos", "eventhubs", "redis"}
NO_MODEL = "ModelUnavailable: no model promoted yet; serving the baseline"  # until a retrain promotes one


def get(url: str) -> tuple[int, str, dict]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"], json.loads(response.read())


def test_health_checks_every_dependency_and_is_degraded_while_no_model_serves(api):
    status, content_type, body = get(f"{api}/health")
    assert status == 200 and content_type.startswith("application/json")
    assert body == {"status": "degraded", "dependencies": {**{name: "ok" for name in DEPENDENCIES}, "model": NO_MODEL}}


def test_health_is_degraded_and_names_the_dependency_that_is_down(api, stack):
    stack.down(["redis"], quiet=True)
    try:
        status, _, body = get(f"{api}/health")
    finally:
        stack.up(["redis"])
    assert status == 200 and body["status"] == "degraded"
    assert body["dependencies"]["redis"] != "ok" and "Error" in body["dependencies"]["redis"]
    assert {k for k, v in body["dependencies"].items() if v == "ok"} == DEPENDENCIES - {"redis"}
    assert body["dependencies"]["model"] == NO_MODEL
