"""Start, stop and observe the local stack's processes.

Each process is recorded in `<state>/run/<name>.json` with its PID and the kernel's
start time for that PID, so `down` stops exactly what `up` started, never a later
process that happens to reuse the PID. Every process gets its own session, so
stopping its process group also stops anything it spawned.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .config import LOOPBACK, StackConfig, emulator_settings
from .services import ALL, EMULATORS, NODE_BIN, SERVICES, Service, redis_server_path

POLL_SECONDS = 0.2
SEEDER = "seed"
STOP_GRACE_SECONDS = 15


class StackError(Exception):
    """A one-line, user-facing reason the stack could not start or stop."""


@dataclass
class Record:
    name: str
    pid: int
    start_ticks: int
    command: list[str]
    ports: dict[str, int]
    log: str
    started_at: float


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it are fixed.
    after = stat.rsplit(")", 1)[1].split()
    if after[0] in ("Z", "X"):
        return None
    return int(after[19])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


class Stack:
    def __init__(self, config: StackConfig, say: Callable[[str], None] = print,
                 services: Mapping[str, Service] = SERVICES, seed_catalog: bool = False):
        self.config = config
        self.say = say
        self.services = services
        self.seed_catalog = seed_catalog  # `make up`/`make run` seed an empty catalog; tests seed their own
        self._children: dict[str, subprocess.Popen] = {}

    @property
    def settings(self) -> dict[str, str]:
        """The app settings for this stack: local.settings.json (or the sample), the
        environment, then this stack's emulator connections, which always win."""
        values = dict(local_settings(self.config.app_dir))
        values.update({k: os.environ[k] for k in setting_names() if os.environ.get(k)})
        values.update(emulator_settings(self.config.ports))
        return values

    # -- records -------------------------------------------------------------------
    def _record_path(self, name: str) -> Path:
        return self.config.run_dir / f"{name}.json"

    def record(self, name: str) -> Record | None:
        """The record of a running process of ours, or None (stale records are removed)."""
        path = self._record_path(name)
        try:
            record = Record(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if _start_ticks(record.pid) != record.start_ticks:
            path.unlink(missing_ok=True)
            return None
        return record

    def log_path(self, name: str) -> Path:
        return self.config.logs_dir / f"{name}.log"

    # -- up ------------------------------------------------------------------------
    def up(self, names: Iterable[str] = ALL) -> list[str]:
        """Start the named services that are not running yet; return the ones started."""
        wanted = [n for n in ALL if n in set(names)]
        pending = [n for n in wanted if self.record(n) is None]
        for name in wanted:
            if name not in pending:
                self.say(f"  = {self.services[name].title:<30} already running (pid {self.record(name).pid})")
        if not pending:
            return []
        self._check_prerequisites([self.services[n] for n in pending])
        if self.seed_catalog:
            simulation_settings()  # a bad SIMULATION_* value fails before anything starts
        for directory in (self.config.logs_dir, self.config.run_dir, self.config.data_dir):
            directory.mkdir(parents=True, exist_ok=True)
        started: list[str] = []
        try:
            emulators = [n for n in pending if n in EMULATORS]
            self._start_and_wait(emulators)
            started += emulators
            if self.record("azurite") and self.record("cosmos"):
                from .provision import provision

                provision(self.settings)
            if "host" in pending:
                self._start_and_wait(["host"])
                started.append("host")
        except BaseException:
            # Leave nothing half-started behind: stop what this call started.
            self.down(started + [n for n in pending if n not in started], quiet=True)
            raise
        if self.seed_catalog and self.record("cosmos") and self.record(SEEDER) is None:
            self._seed_in_background()
        return started

    def _seed_in_background(self) -> None:
        """Seed the catalog if it is empty, then start a simulation of shoppers unless one runs,
        in a process of its own that `down` stops.

        Seeding the default catalog is ~11,000 writes, 15-25 s on the local Cosmos DB server;
        the stack does not wait for it (the API answers meanwhile, with what is there). The
        simulation has SIMULATION_USERS shoppers (default 100; 0: none) taking about
        SIMULATION_RATE actions per second (default 5).
        """
        command = [sys.executable, "-m", "ops", "seed", "--if-empty"]
        what = "catalog seeding (if empty)"
        if self.record("host"):
            users, rate = simulation_settings()
            command = [sys.executable, "-m", "ops", "demo", "--users", str(users), "--rate", str(rate),
                       "--api", f"http://{LOOPBACK}:{self.config.ports.host}/api"]
            if users:
                what += f", then a simulation of {users} shoppers at about {rate:g} actions/s,"
        seeder = Service(name=SEEDER, title="catalog seeding", ports=lambda c: {},
                         command=lambda c: command, ready=lambda c: None, timeout=0, env=lambda c: self.settings)
        self._spawn(seeder)
        self.say(f"  + {what} in the background; see {self._shown(self.log_path(SEEDER))}")

    def _check_prerequisites(self, services: list[Service]) -> None:
        if any(s.needs_node for s in services):
            if not shutil.which("node") or not shutil.which("npm"):
                raise StackError(
                    "Node.js >= 20 and npm are needed for Azurite and the Cosmos DB server but were "
                    "not found on PATH; install them (Debian/Ubuntu: apt-get install nodejs npm)"
                )
            if not (NODE_BIN / "azurite").exists() or not (NODE_BIN / "cosmosdb-server").exists():
                raise StackError("the npm emulators are not installed; run `make up` (it runs npm ci) "
                                 "or `npm ci` in the project folder")
        if any(s.name == "redis" for s in services) and not redis_server_path():
            raise StackError(
                "redis-server was not found on PATH; install it (Debian/Ubuntu: apt-get install "
                "redis-server, macOS: brew install redis) and run again"
            )
        for service in services:
            for label, port in service.ports(self.config).items():
                if not port_is_free(port):
                    variable = _port_variable(label)
                    raise StackError(
                        f"port {port} ({service.title}) is already in use by another process; "
                        f"stop that process or set {variable} to a free port"
                    )

    def _start_and_wait(self, names: list[str]) -> None:
        began = time.monotonic()
        for name in names:
            self._spawn(self.services[name])
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            results = list(pool.map(self._wait_ready, names))
        failures = [message for message in results if message]
        if failures:
            raise StackError(failures[0])
        for name in names:
            ports = ", ".join(f"{label} :{port}" for label, port in self.services[name].ports(self.config).items())
            self.say(f"  + {self.services[name].title:<30} ready ({ports})")
        self.say(f"    ready in {time.monotonic() - began:.1f} s")

    def _spawn(self, service: Service) -> None:
        command = service.command(self.config)
        log_path = self.log_path(service.name)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **service.env(self.config)}
        with open(log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command, cwd=self.config.app_dir, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._children[service.name] = process
        ticks = _start_ticks(process.pid)
        record = Record(service.name, process.pid, ticks or 0, command, service.ports(self.config),
                        str(log_path), time.time())
        self._record_path(service.name).write_text(json.dumps(asdict(record)))

    def _wait_ready(self, name: str) -> str | None:
        """Wait for one service; return an error message, or None once it answers."""
        service = self.services[name]
        process = self._children[name]
        deadline = time.monotonic() + service.timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            code = process.poll()
            if code is not None:
                return (f"{service.title} exited with code {code} while starting; "
                        f"see {self._shown(self.log_path(name))}")
            try:
                service.ready(self.config)
                return None
            except Exception as error:  # not ready yet: any failure of the probe counts
                last_error = error
                time.sleep(POLL_SECONDS)
        detail = f" (last check: {type(last_error).__name__})" if last_error else ""
        return (f"{service.title} was not ready within {service.timeout:.0f} s{detail}; "
                f"see {self._shown(self.log_path(name))}")

    def _shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    # -- down ----------------------------------------------------------------------
    def down(self, names: Iterable[str] = ALL, quiet: bool = False) -> list[str]:
        """Stop the named services this stack recorded, host first; return the ones stopped."""
        stopped = []
        seeder = self.record(SEEDER) if "cosmos" in set(names) else None
        if seeder is not None:  # still writing to the Cosmos DB server that is about to stop
            self._stop(seeder)
            if not quiet:
                self.say(f"  - {'catalog seeding':<30} stopped (pid {seeder.pid})")
        for name in reversed([n for n in ALL if n in set(names)]):
            record = self.record(name)
            if record is None:
                continue
            self._stop(record)
            stopped.append(name)
            if not quiet:
                self.say(f"  - {self.services[name].title:<30} stopped (pid {record.pid})")
        return stopped

    def _stop(self, record: Record) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(record.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + (STOP_GRACE_SECONDS if sig == signal.SIGTERM else 5)
            while time.monotonic() < deadline and self._alive(record):
                time.sleep(POLL_SECONDS)
            if not self._alive(record):
                break
        self._record_path(record.name).unlink(missing_ok=True)
        # A port can linger for a moment after its process exits; wait so a quick `up` works.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(port_is_free(p) for p in record.ports.values()):
            time.sleep(POLL_SECONDS)

    def _alive(self, record: Record) -> bool:
        child = self._children.get(record.name)
        if child is not None and child.pid == record.pid:
            return child.poll() is None  # reaps our own child so it does not linger as a zombie
        return _start_ticks(record.pid) == record.start_ticks

    def restart(self, name: str) -> None:
        self.down([name], quiet=True)
        self.up([name])

    def status(self) -> dict[str, Record | None]:
        return {name: self.record(name) for name in ALL}


def simulation_settings() -> tuple[int, float]:
    """(shoppers, actions per second) of the simulation `make up` starts, from the environment."""
    users, rate = os.environ.get("SIMULATION_USERS", "100").strip(), os.environ.get("SIMULATION_RATE", "5").strip()
    if not users.isdigit():
        raise StackError(f"SIMULATION_USERS must be a whole number of shoppers (0: no simulation), got {users!r}")
    try:
        rate_value = float(rate)
    except ValueError:
        rate_value = -1.0
    if not 0 <= rate_value <= 5000 or rate_value != rate_value:
        raise StackError(f"SIMULATION_RATE must be actions per second from 0 to 5000, got {rate!r}")
    return int(users), rate_value


def local_settings(app_dir: Path) -> dict[str, str]:
    """`Values` of the committed sample, overridden by local.settings.json's: a setting added since
    someone made their local.settings.json still gets its sample value."""
    values: dict[str, str] = {}
    for name in ("local.settings.sample.json", "local.settings.json"):
        path = app_dir / name
        if path.exists():
            values.update({k: str(v) for k, v in json.loads(path.read_text()).get("Values", {}).items()})
    return values


def setting_names() -> tuple[str, ...]:
    from shared.settings import NAMES

    return NAMES


def _port_variable(label: str) -> str:
    from .config import PORT_VARIABLES

    return PORT_VARIABLES[label][0]
