"""Fixtures for the dev host tests: Azurite on free ports, and the host run as a subprocess
against a copy of tests/host/app (so each run gets its own local.settings.json)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest
from tests.waiting import wait_for  # noqa: F401  (callers import it from here too)

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "app"
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
FUNCTIONS = ("items", "plain", "boom", "slow", "enqueue", "work", "relay", "flaky", "tick", "startup",
             "hourly", "batch")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = 20) -> int:
    """SIGTERM our own child (by PID), escalating to SIGKILL; return its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(10)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[str]:
    """A fresh in-memory Azurite; yields its connection string."""
    if not AZURITE.exists():
        pytest.skip("Azurite is not installed (run npm ci)")
    blob, queue, table = free_port(), free_port(), free_port()
    log = open(tmp_path_factory.mktemp("azurite") / "azurite.log", "wb")
    process = subprocess.Popen(
        [str(AZURITE), "--inMemoryPersistence", "--skipApiVersionCheck", "--silent",
         "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
         "--blobPort", str(blob), "--queuePort", str(queue), "--tablePort", str(table)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    connection = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
                  f"BlobEndpoint=http://127.0.0.1:{blob}/devstoreaccount1;"
                  f"QueueEndpoint=http://127.0.0.1:{queue}/devstoreaccount1;"
                  f"TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;")
    try:
        from azure.storage.queue import QueueServiceClient

        client = QueueServiceClient.from_connection_string(connection, retry_total=0)

        def answers() -> bool:
            try:
                client.get_service_properties(timeout=2)
                return True
            except Exception:
                assert process.poll() is None, "Azurite exited while starting"
                return False

        wait_for(answers, 30, "Azurite")
        yield connection
    finally:
        # In-memory data only, and Azurite can take many seconds to close idle connections.
        stop_process(process, timeout=2)
        log.close()


class Host:
    """One run of `python -m local.host` against a copy of the test app."""

    def __init__(self, app_dir: Path, record_dir: Path, env: dict, log_path: Path):
        self.app_dir, self.record_dir, self.env, self.log_path = app_dir, record_dir, env, log_path
        self.port = free_port()
        self.process: Optional[subprocess.Popen] = None
        self.exit_code: Optional[int] = None

    def start(self, wait: bool = True) -> "Host":
        self.port = free_port()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.host", "--app-dir", str(self.app_dir), "--port", str(self.port),
             "--host", "127.0.0.1"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            wait_for(self._ready, 60, "the host to answer /admin/host/status")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the host exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        try:
            return self.get("/admin/host/status")[0] == 200
        except OSError:
            return False

    def stop(self) -> int:
        if self.process is not None:
            self.exit_code = stop_process(self.process)
            self.process = None
        return self.exit_code

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method: str, path: str, body: bytes = None, headers: dict = None):
        """(status, headers, body) of one request; HTTP errors are returned, not raised."""
        req = urllib.request.Request(self.url(path), data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records(self, function: str) -> list[dict]:
        path = self.record_dir / f"{function}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def make_host(tmp_path_factory, azurite) -> Iterator[Callable[..., Host]]:
    """make_host(enable=[function names], env={...}, settings={...}) -> a started Host.

    Functions not enabled are disabled with AzureWebJobs.<name>.Disabled, so hosts of
    different tests do not compete for the same queues. `settings` go to local.settings.json.
    """
    hosts: list[Host] = []

    def make(enable=FUNCTIONS, env: dict = None, settings: dict = None, start: bool = True) -> Host:
        base = tmp_path_factory.mktemp("host")
        app_dir, record_dir = base / "app", base / "records"
        shutil.copytree(APP, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
        record_dir.mkdir()
        values = {"FUNCTIONS_WORKER_RUNTIME": "python", "RECORD_DIR": str(record_dir),
                  "OUT_QUEUE": "relay-items", "HOURLY_SCHEDULE": "0 0 * * * *", "EVENT_HUB": "hubname",
                  **(settings or {})}
        (app_dir / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AzureWebJobs")}
        full_env.update({"AzureWebJobsStorage": azurite, "PYTHONUNBUFFERED": "1"})
        full_env.update({f"AzureWebJobs.{name}.Disabled": "true" for name in FUNCTIONS if name not in enable})
        full_env.update(env or {})
        host = Host(app_dir, record_dir, full_env, base / "host.log")
        hosts.append(host)
        return host.start() if start else host

    yield make
    for host in hosts:
        host.stop()
