"""The local stand-ins for offerloop's Azure services: how each starts and how we know it is ready.

A readiness check makes a real request through the same client the app uses (an open
port only says that something listens, not that it answers).
"""
from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import (
    LOOPBACK,
    ROOT,
    StackConfig,
    cosmos_connection_string,
    eventhubs_connection_string,
    storage_connection_string,
)

NODE_BIN = ROOT / "node_modules" / ".bin"


@dataclass(frozen=True)
class Service:
    name: str
    title: str
    ports: Callable[[StackConfig], dict[str, int]]  # label -> port, for messages and checks
    command: Callable[[StackConfig], list[str]]
    ready: Callable[[StackConfig], None]  # raises until the service answers
    timeout: float  # seconds to wait for readiness
    env: Callable[[StackConfig], dict[str, str]] = lambda config: {}
    needs_node: bool = False


def _azurite_command(config: StackConfig) -> list[str]:
    p = config.ports
    command = [
        str(NODE_BIN / "azurite"),
        "--skipApiVersionCheck",  # the current SDKs send a newer API version than Azurite knows
        "--disableProductStyleUrl",
        "--disableTelemetry",  # its upload on shutdown would wait for the network for ~10 s
        "--blobHost", LOOPBACK, "--blobPort", str(p.blob),
        "--queueHost", LOOPBACK, "--queuePort", str(p.queue),
        "--tableHost", LOOPBACK, "--tablePort", str(p.table),
    ]
    if config.persistent:
        return command + ["--location", str(config.data_dir / "azurite")]
    return command + ["--inMemoryPersistence"]


def _azurite_ready(config: StackConfig) -> None:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    # No SDK retries: the probe loop retries, and the SDK's 15 s backoff would hide readiness.
    connection = storage_connection_string(config.ports)
    BlobServiceClient.from_connection_string(connection, retry_total=0).get_service_properties(timeout=2)
    QueueServiceClient.from_connection_string(connection, retry_total=0).get_service_properties(timeout=2)
    # Table storage is not used by the app yet; any HTTP answer shows the endpoint serves.
    _http_status(f"http://{LOOPBACK}:{config.ports.table}/devstoreaccount1/Tables", accept_errors=True)


def _cosmos_ready(config: StackConfig) -> None:
    from shared.cosmos import client_from_connection_string

    client = client_from_connection_string(cosmos_connection_string(config.ports), timeout=2,
                                           retry_total=0)
    list(client.list_databases())


def eventhub_names(config_file: Path) -> list[str]:
    """The hub names an emulator config file declares (Microsoft's Config.json shape)."""
    document = json.loads(config_file.read_text())
    return [
        entity["Name"]
        for namespace in document["UserConfig"]["NamespaceConfig"]
        for entity in namespace.get("Entities", [])
    ]


def _eventhubs_ready(config: StackConfig) -> None:
    from azure.eventhub import EventHubProducerClient

    hubs = eventhub_names(config.eventhubs_config)
    producer = EventHubProducerClient.from_connection_string(
        eventhubs_connection_string(config.ports), eventhub_name=hubs[0], retry_total=0
    )
    with producer:
        producer.get_eventhub_properties()


def _redis_ready(config: StackConfig) -> None:
    import redis

    redis.Redis(host=LOOPBACK, port=config.ports.redis, socket_timeout=2).ping()


def _host_command(config: StackConfig) -> list[str]:
    if config.use_core_tools:
        return ["func", "start", "--port", str(config.ports.host)]
    return [sys.executable, "-m", "local.host", "--app-dir", str(config.app_dir),
            "--host", LOOPBACK, "--port", str(config.ports.host)]


def _host_ready(config: StackConfig) -> None:
    _http_status(f"http://{LOOPBACK}:{config.ports.host}/admin/host/status")


def _http_status(url: str, accept_errors: bool = False) -> int:
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        if accept_errors:
            return error.code
        raise


def host_settings(config: StackConfig) -> dict[str, str]:
    from .stack import Stack

    settings = Stack(config).settings
    if config.use_core_tools:
        # Core Tools starts the Python worker with this interpreter: the venv's, which has
        # the app's packages (the same as activating the venv before `func start`).
        settings["languageWorkers__python__defaultExecutablePath"] = sys.executable
    return settings


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


SERVICES: dict[str, Service] = {
    service.name: service
    for service in (
        Service(
            name="redis",
            title="Redis",
            ports=lambda c: {"redis": c.ports.redis},
            command=lambda c: [redis_server_path() or "redis-server", "--port", str(c.ports.redis),
                               "--bind", LOOPBACK, "--save", "", "--appendonly", "no"],
            ready=_redis_ready,
            timeout=20,
        ),
        Service(
            name="azurite",
            title="Azurite (blob, queue, table)",
            ports=lambda c: {"blob": c.ports.blob, "queue": c.ports.queue, "table": c.ports.table},
            command=_azurite_command,
            ready=_azurite_ready,
            timeout=60,
            needs_node=True,
        ),
        Service(
            name="cosmos",
            title="Cosmos DB server",
            ports=lambda c: {"cosmos": c.ports.cosmos},
            command=lambda c: [str(NODE_BIN / "cosmosdb-server"), "--host", LOOPBACK,
                               "-p", str(c.ports.cosmos), "--no-ssl",
                               "--keep-alive"],  # one connection per client, not one per request
            ready=_cosmos_ready,
            timeout=60,
            needs_node=True,
        ),
        Service(
            name="eventhubs",
            title="Event Hubs emulator",
            ports=lambda c: {"eventhubs": c.ports.eventhubs},
            command=lambda c: [sys.executable, "-m", "local.eventhubs",
                               "--config", str(c.eventhubs_config), "--host", LOOPBACK,
                               "--port", str(c.ports.eventhubs),
                               "--data-dir", str(c.data_dir / "eventhubs")],
            ready=_eventhubs_ready,
            timeout=30,
        ),
        Service(
            name="host",
            title="Functions host",
            ports=lambda c: {"host": c.ports.host},
            command=_host_command,
            ready=_host_ready,
            timeout=90,
            env=lambda c: host_settings(c),
        ),
    )
}

# The emulators start together; the host starts once they answer, because its
# triggers connect to them as it starts.
EMULATORS = ("redis", "azurite", "cosmos", "eventhubs")
ALL = EMULATORS + ("host",)
