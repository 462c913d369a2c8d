"""Where the local stack listens and keeps its files, read once from the environment.

Every port can be moved with an environment variable (see README.md, "Ports"), so the
stack can run beside other software, and tests run a second stack on free ports.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parent.parent

# Well-known development credentials of the emulators. They are public and only
# accepted by the local emulators, never by Azure.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
COSMOS_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
EVENTHUBS_KEY_NAME = "RootManageSharedAccessKey"
EVENTHUBS_KEY = "SAS_KEY_VALUE"

LOOPBACK = "127.0.0.1"

# field name -> (environment variable, default port)
PORT_VARIABLES = {
    "host": ("FUNCTIONS_PORT", 7071),
    "blob": ("AZURITE_BLOB_PORT", 10000),
    "queue": ("AZURITE_QUEUE_PORT", 10001),
    "table": ("AZURITE_TABLE_PORT", 10002),
    "cosmos": ("COSMOS_PORT", 8081),
    "eventhubs": ("EVENTHUBS_PORT", 5672),
    "redis": ("REDIS_PORT", 6379),
}


class ConfigError(Exception):
    """A setting of the local stack is unusable; the message says which and why."""


@dataclass(frozen=True)
class Ports:
    host: int = 7071
    blob: int = 10000
    queue: int = 10001
    table: int = 10002
    cosmos: int = 8081
    eventhubs: int = 5672
    redis: int = 6379

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Ports":
        values = {}
        for name, (variable, default) in PORT_VARIABLES.items():
            raw = env.get(variable, "").strip()
            if not raw:
                values[name] = default
                continue
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise ConfigError(f"{variable}={raw!r} is not a port number (1-65535)")
            values[name] = int(raw)
        ports = cls(**values)
        taken = [getattr(ports, f.name) for f in fields(ports)]
        if len(set(taken)) != len(taken):
            raise ConfigError(f"two services were given the same port: {ports}")
        return ports


@dataclass(frozen=True)
class StackConfig:
    """One local stack: its ports, its folder of logs/PIDs/data, and its app."""

    ports: Ports
    state_dir: Path
    app_dir: Path = ROOT
    eventhubs_config: Path = ROOT / "local" / "eventhubs" / "Config.json"
    persistent: bool = True  # keep Azurite and Event Hubs data on disk between runs
    use_core_tools: bool = False  # run the app with `func start` instead of the dev host

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "StackConfig":
        state = Path(env.get("OFFERLOOP_STATE_DIR", "") or ROOT / ".local")
        config = cls(ports=Ports.from_env(env), state_dir=state.resolve())
        if env.get("EVENTHUBS_CONFIG"):
            config = replace(config, eventhubs_config=Path(env["EVENTHUBS_CONFIG"]).resolve())
        host_kind = env.get("OFFERLOOP_HOST", "auto")
        if host_kind not in ("auto", "func", "dev"):
            raise ConfigError(f"OFFERLOOP_HOST={host_kind!r}: use auto, func or dev")
        from shutil import which

        use_func = host_kind == "func" or (host_kind == "auto" and which("func") is not None)
        return replace(config, use_core_tools=use_func)

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on loopback right now (the kernel picks them)."""
    import socket
    from contextlib import ExitStack

    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind((LOOPBACK, 0))
        return [s.getsockname()[1] for s in sockets]


def ephemeral_config(state_dir: Path, **overrides) -> StackConfig:
    """A throwaway stack on free ports with in-memory emulators, for tests and benchmarks.

    Free ports let it run beside a developer's `make up`, and prove every port is configurable.
    """
    names = [f.name for f in fields(Ports)]
    ports = Ports(**dict(zip(names, free_ports(len(names)))))
    return StackConfig(ports=ports, state_dir=state_dir, persistent=False, **overrides)


def storage_connection_string(ports: Ports, host: str = LOOPBACK) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{ports.blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{ports.queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{ports.table}/{AZURITE_ACCOUNT};"
    )


def eventhubs_connection_string(ports: Ports, host: str = LOOPBACK) -> str:
    return (
        f"Endpoint=sb://{host}:{ports.eventhubs};SharedAccessKeyName={EVENTHUBS_KEY_NAME};"
        f"SharedAccessKey={EVENTHUBS_KEY};UseDevelopmentEmulator=true"
    )


def cosmos_connection_string(ports: Ports, host: str = LOOPBACK) -> str:
    return f"AccountEndpoint=http://{host}:{ports.cosmos}/;AccountKey={COSMOS_KEY};"


def emulator_settings(ports: Ports) -> dict[str, str]:
    """The app settings that point the function app at this stack's emulators.

    They override what local.settings.json says, so a stack on moved ports still
    wires the app to itself.
    """
    return {
        "AzureWebJobsStorage": storage_connection_string(ports),
        "EventHubConnection": eventhubs_connection_string(ports),
        "CosmosDBConnection": cosmos_connection_string(ports),
        "REDIS_URL": f"redis://{LOOPBACK}:{ports.redis}/0",
    }
