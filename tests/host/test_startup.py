"""Apps the dev host cannot run fail at startup with one line naming the function."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from .conftest import ROOT, free_port

pytestmark = [pytest.mark.host, pytest.mark.timeout(60)]

HEADER = """
import azure.functions as func
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
"""


def run_app(tmp_path, code: str, env: dict = None) -> subprocess.CompletedProcess:
    (tmp_path / "function_app.py").write_text(HEADER + textwrap.dedent(code))
    (tmp_path / "host.json").write_text('{"version": "2.0"}')
    environment = {"PATH": "/usr/bin:/bin", "AzureWebJobsStorage": "UseDevelopmentStorage=true", **(env or {})}
    return subprocess.run([sys.executable, "-m", "local.host", "--app-dir", str(tmp_path),
                           "--port", str(free_port())],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=45)


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unsupported_trigger_is_refused_naming_the_function(tmp_path):
    result = run_app(tmp_path, """
        @app.blob_trigger(arg_name="blob", path="uploads/{name}", connection="AzureWebJobsStorage")
        def uploaded(blob: func.InputStream):
            pass
        """)
    line = error_line(result)
    assert "function 'uploaded'" in line
    assert "trigger type 'blobTrigger' is not supported" in line


def test_an_unsupported_output_binding_is_refused_naming_the_function(tmp_path):
    result = run_app(tmp_path, """
        @app.route(route="save")
        @app.blob_output(arg_name="out", path="saved/x.txt", connection="AzureWebJobsStorage")
        def save(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
            return func.HttpResponse("ok")
        """)
    line = error_line(result)
    assert "function 'save'" in line and "'blob'" in line and "not supported" in line


def test_an_app_setting_expression_that_does_not_resolve_is_refused(tmp_path):
    result = run_app(tmp_path, """
        @app.queue_trigger(arg_name="msg", queue_name="%MISSING_QUEUE%", connection="AzureWebJobsStorage")
        def consume(msg: func.QueueMessage):
            pass
        """)
    line = error_line(result)
    assert "function 'consume'" in line and "'%MISSING_QUEUE%' does not resolve" in line


def test_a_parameter_annotation_that_does_not_match_its_binding_is_refused(tmp_path):
    result = run_app(tmp_path, """
        @app.queue_trigger(arg_name="msg", queue_name="things", connection="AzureWebJobsStorage")
        def consume(msg: int):
            pass
        """)
    line = error_line(result)
    assert "consume" in line and "does not match its Python annotation" in line


def test_a_six_field_schedule_is_required_for_a_cron_timer(tmp_path):
    result = run_app(tmp_path, """
        @app.timer_trigger(schedule="*/5 * * * *", arg_name="timer")
        def every_five(timer: func.TimerRequest):
            pass
        """)
    line = error_line(result)
    assert "function 'every_five'" in line and "was not recognized as a valid cron expression" in line
