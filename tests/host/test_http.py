"""HTTP triggers, the admin status endpoint, invocation logging, queue output, shutdown."""
from __future__ import annotations

import json
import re
import threading
import time

import pytest

from .conftest import wait_for

pytestmark = [pytest.mark.host, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def host(make_host):
    # OUT_QUEUE in local.settings.json is wrong on purpose: the real environment must win.
    return make_host(enable=["items", "plain", "boom", "enqueue", "relay"],
                     settings={"OUT_QUEUE": "not-this-queue"}, env={"OUT_QUEUE": "relay-items"})


def test_a_route_with_parameters_answers_under_the_route_prefix(host):
    status, headers, body = host.get("/v1/items/42/a/b")
    assert status == 201
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Seen"] == "yes"
    seen = json.loads(body)
    assert seen["route"] == {"id": "42", "rest": "a/b"}
    assert seen["method"] == "GET"
    assert seen["url"] == host.url("/v1/items/42/a/b")


def test_query_parameters_headers_and_body_reach_the_function(host):
    status, _, body = host.request("POST", "/v1/items/7?q=search&page=2", body=b'{"hello": "world"}',
                                   headers={"X-Test": "from-test", "Content-Type": "application/json"})
    assert status == 201
    seen = json.loads(body)
    assert seen["params"] == {"q": "search", "page": "2"}
    assert seen["body"] == '{"hello": "world"}'
    assert seen["header"] == "from-test"
    assert seen["route"] == {"id": "7"}


def test_a_route_constraint_that_does_not_match_is_not_found(host):
    assert host.get("/v1/items/not-a-number")[0] == 404


def test_a_wrong_method_is_not_found_as_in_azure(host):
    status, _, _ = host.request("DELETE", "/v1/items/7")
    assert status == 404
    assert host.request("GET", "/v1/items/7")[0] == 201  # the same path with its method is served


def test_an_unknown_route_gets_404(host):
    assert host.get("/v1/nothing-here")[0] == 404
    assert host.get("/api/items/7")[0] == 404  # routePrefix is v1, not the default api


def test_a_function_that_raises_gets_an_empty_500_and_its_traceback_is_logged(host):
    status, _, body = host.get("/v1/boom")
    assert status == 500
    assert body == b""
    log = wait_for(lambda: "the function failed on purpose" in host.log() and host.log(), 10, "the traceback")
    assert "Traceback (most recent call last)" in log
    assert "function_app.py" in log


def test_a_function_returning_a_string_answers_200_as_text(host):
    status, headers, body = host.get("/v1/plain")
    assert (status, body) == (200, b"just text")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_the_host_status_endpoint_reports_running(host):
    status, _, body = host.get("/admin/host/status")
    assert status == 200
    assert json.loads(body)["state"] == "Running"


def test_each_invocation_logs_one_line_with_outcome_id_and_duration(host):
    host.get("/v1/plain")
    host.get("/v1/boom")
    pattern = (r"Executed 'Functions.{name}' \({outcome}, Id=[0-9a-f-]{{36}}, Duration=\d+ms, "
               r"Trigger=httpTrigger\)")
    wait_for(lambda: re.search(pattern.format(name="boom", outcome="Failed: ValueError"), host.log()), 10,
             "the failure line")
    assert re.search(pattern.format(name="plain", outcome="Succeeded"), host.log())


def test_startup_lists_each_http_route_with_its_auth_level(host):
    log = host.log()
    assert f"items: [GET,POST] http://127.0.0.1:{host.port}/v1/items/{{id:int}}/{{*rest}} (authLevel: function)" in log
    assert "plain: [" in log and "(authLevel: anonymous)" in log
    assert "tick: disabled" in log


def test_a_queue_output_list_is_written_base64_after_the_function_returns(host):
    status, _, _ = host.request("POST", "/v1/enqueue", body="first,second,thïrd".encode())
    assert status == 202
    relayed = wait_for(lambda: len(host.records("relay")) >= 3 and host.records("relay"), 20,
                       "three relayed messages")
    assert sorted(r["body"] for r in relayed) == ["first", "second", "thïrd"]


def test_sigterm_lets_a_running_request_finish_and_exits_zero(make_host):
    host = make_host(enable=["slow"])
    answer = {}

    def call():
        answer["response"] = host.get("/v1/slow?seconds=2")

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: host.process is not None, 5, "the process")
    time.sleep(0.7)
    assert host.stop() == 0
    caller.join(10)
    assert answer["response"][0] == 200
    assert answer["response"][2] == b"finally"
    assert "Host stopped" in host.log()
