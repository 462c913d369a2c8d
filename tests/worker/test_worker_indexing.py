"""function_app.py as the Azure Functions Python worker indexes it: names and bindings.

The worker's own indexing code (azure-functions-runtime, the Python 3.13 worker library) runs
in .venv-worker (made by `bash local/worker-venv.sh`, which `make test` runs first) through
tests/worker/index_app.py, which drives it exactly as the host's proxy worker does at start-up
(WorkerInitRequest, then FunctionsMetadataRequest) and writes what the worker would hand the
host. No Functions host is involved; a few seconds in all.

When the app gains a function, add one line to EXPECTED.
"""
from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.worker, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
WORKER_PY = ROOT / ".venv-worker" / "bin" / "python"
HARNESS = Path(__file__).resolve().parent / "index_app.py"


def B(type_: str, direction: str, name: str, **props) -> dict:
    """One binding as the worker sends it to the host (a raw binding): direction IN or OUT."""
    return {"type": type_, "direction": direction, "name": name, **props}


# Each function the app registers -> its bindings. Of the properties, the ones in KEY_PROPS are
# compared exactly (one left out here must be absent); any other one listed here must match.
EXPECTED: dict[str, list[dict]] = {
    "get_health": [B("httpTrigger", "IN", "req", route="health", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "post_events": [B("httpTrigger", "IN", "req", route="events", methods=["POST"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "get_offers": [B("httpTrigger", "IN", "req", route="offers", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "related_products": [B("httpTrigger", "IN", "req", route="products/{productId}/related", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "refresh_coldstart": [B("timerTrigger", "IN", "timer", schedule="0 5 * * * *")],
    "ingest_activity": [B("eventHubTrigger", "IN", "events", eventHubName="%EVENTHUB_NAME%", connection="EventHubConnection", cardinality="MANY", consumerGroup="ingest", dataType="BINARY")],
    "simulation_start": [B("httpTrigger", "IN", "req", route="simulation/start", methods=["POST"], authLevel="FUNCTION"), B("http", "OUT", "$return")],
    "simulation_stop": [B("httpTrigger", "IN", "req", route="simulation/stop", methods=["POST"], authLevel="FUNCTION"), B("http", "OUT", "$return")],
    "simulation_status": [B("httpTrigger", "IN", "req", route="simulation/status", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "simulate_action": [B("queueTrigger", "IN", "msg", queueName="simulation-actions", connection="AzureWebJobsStorage"), B("queue", "OUT", "response", queueName="simulation-responses", connection="AzureWebJobsStorage")],
    "schedule_next": [B("queueTrigger", "IN", "msg", queueName="simulation-responses", connection="AzureWebJobsStorage")],
    "retrain_models": [B("timerTrigger", "IN", "timer", schedule="%RETRAIN_SCHEDULE%")],
    "admin_retrain": [B("httpTrigger", "IN", "req", route="admin/retrain", methods=["POST"], authLevel="FUNCTION"), B("http", "OUT", "$return")],
    "personalizer_api": [B("httpTrigger", "IN", "req", route="personalizer/{*path}", methods=["GET", "POST", "PUT", "DELETE"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "personalizer_retrain": [B("timerTrigger", "IN", "timer", schedule="%PERSONALIZER_RETRAIN_SCHEDULE%")],
    "get_stats": [B("httpTrigger", "IN", "req", route="stats", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "dashboard_page": [B("httpTrigger", "IN", "req", route="dashboard", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "store_page": [B("httpTrigger", "IN", "req", route="store", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    "static_file": [B("httpTrigger", "IN", "req", route="static/{*path}", methods=["GET"], authLevel="ANONYMOUS"), B("http", "OUT", "$return")],
    # "on_clicks": [B("eventHubTrigger", "IN", "events", eventHubName="clicks", connection="EventHubConnection", cardinality="MANY", consumerGroup="$Default")],
}

KEY_PROPS = ("route", "methods", "authLevel", "queueName", "connection", "eventHubName",
             "cardinality", "consumerGroup", "schedule")


def index(app_dir: Path, out: Path) -> tuple[subprocess.CompletedProcess, dict]:
    if not WORKER_PY.exists():
        pytest.skip(f"{WORKER_PY.relative_to(ROOT)} not found: `bash local/worker-venv.sh` makes it "
                    "(it needs a Python 3.13 and skips without one)")
    if not (WORKER_PY.parent.parent / ".installed").exists():
        pytest.fail(".venv-worker is incomplete (its install did not finish): rerun `bash local/worker-venv.sh`")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    proc = subprocess.run([str(WORKER_PY), "-P", str(HARNESS), str(app_dir), str(out)],
                          capture_output=True, text=True, timeout=120, env=env)
    report = json.loads(out.read_text()) if out.exists() else {}
    if proc.returncode not in (0, 1) or not report:  # 1 is the worker's own Failure
        pytest.fail(f"index_app.py crashed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc, report


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> dict:
    proc, report = index(ROOT, tmp_path_factory.mktemp("worker") / "index.json")
    assert proc.returncode == 0 and report["ok"], (
        f"the worker failed to index function_app.py: {report.get('error')}\n"
        f"{report.get('stack_trace', '')}\n{proc.stderr}")
    return report


def test_registers_exactly_the_expected_functions(indexed):
    assert sorted(indexed["functions"]) == sorted(EXPECTED), (
        "function_app.py registers other functions than EXPECTED lists "
        f"(worker {indexed['versions']})")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_function_bindings(indexed, name):
    fn = indexed["functions"].get(name)
    assert fn is not None, f"the worker did not index {name}"
    assert fn["entry_point"] == name and fn["script_file"] == "function_app.py"
    assert fn["worker"] is not None, f"{name} is not in the worker's function registry"

    actual = {b["name"]: b for b in fn["raw_bindings"]}
    expected = {b["name"]: b for b in EXPECTED[name]}
    assert sorted(actual) == sorted(expected), f"{name}: binding names differ: {fn['raw_bindings']}"
    for bname, want in expected.items():
        got = actual[bname]
        keys = ["type", "direction", *KEY_PROPS, *(k for k in want if k not in KEY_PROPS)]
        assert {k: got.get(k) for k in keys} == {k: want.get(k) for k in keys}, (
            f"{name}.{bname}: the worker would register {got}")
        # The typed BindingInfo the worker builds next to the raw binding must agree with it.
        info = fn["binding_info"][bname]
        assert (info["type"], info["direction"]) == (got["type"], got["direction"].lower())


# Apps the worker must refuse: id -> (function_app.py, part of the worker's error message).
BROKEN = {
    "duplicate-function-name": ("""
        @app.route(route="a")
        def same(req: func.HttpRequest) -> func.HttpResponse: ...

        @app.function_name("same")
        @app.route(route="b")
        def other(req: func.HttpRequest) -> func.HttpResponse: ...
        """, "does not have a unique function name"),
    # The worker accepts typing.List[...] for a batch but not the builtin list[...].
    "builtin-list-annotation": ("""
        @app.event_hub_message_trigger(arg_name="events", event_hub_name="clicks",
                                       connection="EventHubConnection",
                                       cardinality=func.Cardinality.MANY)
        def on_clicks(events: list[func.EventHubEvent]) -> None: ...
        """, "invalid non-type annotation"),
    "parameter-without-binding": ("""
        @app.route(route="a")
        def handler(req: func.HttpRequest, extra: str) -> func.HttpResponse: ...
        """, "declared in Python but not in the function definition"),
}

APP_HEADER = "import typing\n\nimport azure.functions as func\n\napp = func.FunctionApp()\n"


def write_app(tmp_path: Path, body: str) -> Path:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "function_app.py").write_text(APP_HEADER + textwrap.dedent(body))
    return app_dir


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_worker_refuses_a_broken_app(tmp_path, case):
    body, message = BROKEN[case]
    proc, report = index(write_app(tmp_path, body), tmp_path / "index.json")
    assert proc.returncode == 1 and not report["ok"], f"the worker indexed a broken app: {report}"
    assert report["init_status"] == "Failure"
    assert message in report["error"], report["error"]


def test_worker_accepts_a_typing_list_batch(tmp_path):
    """The counterpart of builtin-list-annotation: so that case fails for its annotation only."""
    proc, report = index(write_app(tmp_path, """
        @app.event_hub_message_trigger(arg_name="events", event_hub_name="clicks",
                                       connection="EventHubConnection",
                                       cardinality=func.Cardinality.MANY)
        def on_clicks(events: typing.List[func.EventHubEvent]) -> None: ...
        """), tmp_path / "index.json")
    assert proc.returncode == 0 and report["ok"], report.get("error")
    (binding,) = report["functions"]["on_clicks"]["raw_bindings"]
    assert binding == B("eventHubTrigger", "IN", "events", eventHubName="clicks",
                        connection="EventHubConnection", cardinality="MANY")
