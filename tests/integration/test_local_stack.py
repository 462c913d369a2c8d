"""The stack manager: starts and stops exactly its processes, and fails with one clear line."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from local.services import SERVICES
from local.stack import Stack, StackError, _start_ticks, port_is_free
from tests.stackfixture import make_stack_config, quiet_stack

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def _cli(state: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    config = make_stack_config(state)
    ports = config.ports
    base = {**os.environ, "OFFERLOOP_STATE_DIR": str(state), "REDIS_PORT": str(ports.redis),
            "AZURITE_BLOB_PORT": str(ports.blob), "AZURITE_QUEUE_PORT": str(ports.queue),
            "AZURITE_TABLE_PORT": str(ports.table), "COSMOS_PORT": str(ports.cosmos),
            "EVENTHUBS_PORT": str(ports.eventhubs), "FUNCTIONS_PORT": str(ports.host)}
    return subprocess.run([sys.executable, "-m", "local", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**base, **(env or {})}, timeout=100)


def test_down_stops_every_process_up_started_and_frees_its_ports(tmp_path):
    stack = quiet_stack(make_stack_config(tmp_path))
    started = stack.up(["redis", "azurite", "cosmos"])
    records = [stack.record(name) for name in started]
    assert started == ["redis", "azurite", "cosmos"] and all(records)
    assert stack.up(["redis"]) == []  # already running: nothing new
    assert stack.down() == ["cosmos", "azurite", "redis"]
    for record in records:
        assert _start_ticks(record.pid) is None, f"{record.name} still running"
        assert all(port_is_free(port) for port in record.ports.values())
    assert not any((tmp_path / "run").iterdir())


def test_a_busy_port_is_named_with_the_variable_that_moves_it(tmp_path):
    config = make_stack_config(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", config.ports.redis))
        squatter.listen()
        with pytest.raises(StackError) as error:
            quiet_stack(config).up(["redis"])
    message = str(error.value)
    assert f"port {config.ports.redis} (Redis) is already in use" in message
    assert "REDIS_PORT" in message and "\n" not in message


def test_a_service_not_ready_in_time_names_itself_and_its_log_and_is_stopped(tmp_path):
    never_ready = dataclasses.replace(
        SERVICES["redis"], command=lambda c: ["sleep", "60"], timeout=1,
        ready=lambda c: (_ for _ in ()).throw(ConnectionRefusedError()))
    stack = Stack(make_stack_config(tmp_path), say=lambda line: None,
                  services={**SERVICES, "redis": never_ready})
    with pytest.raises(StackError) as error:
        stack.up(["redis"])
    assert str(error.value).startswith("Redis was not ready within 1 s")
    assert str(tmp_path / "logs" / "redis.log") in str(error.value)
    assert stack.record("redis") is None  # the half-started process was stopped


def test_a_service_that_exits_while_starting_says_so(tmp_path):
    crashing = dataclasses.replace(SERVICES["redis"], command=lambda c: ["false"])
    stack = Stack(make_stack_config(tmp_path), say=lambda line: None,
                  services={**SERVICES, "redis": crashing})
    with pytest.raises(StackError, match=r"Redis exited with code 1 while starting; see .*redis\.log"):
        stack.up(["redis"])


def test_the_command_line_without_node_fails_with_one_line(tmp_path):
    result = _cli(tmp_path, "up", "azurite", env={"PATH": str(Path(sys.executable).parent)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "offerloop: Node.js >= 20 and npm are needed for Azurite and the Cosmos DB server but were "
        "not found on PATH; install them (Debian/Ubuntu: apt-get install nodejs npm)"]


def test_the_command_line_up_then_down_leaves_nothing_running(tmp_path):
    up = _cli(tmp_path, "up", "redis")
    assert up.returncode == 0, up.stderr
    assert "Redis" in up.stdout and "ready" in up.stdout
    pid = json.loads((tmp_path / "run" / "redis.json").read_text())["pid"]
    down = _cli(tmp_path, "down")
    assert down.returncode == 0 and "stopped redis" in down.stdout
    assert _start_ticks(pid) is None
