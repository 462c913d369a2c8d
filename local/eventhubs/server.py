"""The TCP listener: accepts AMQP connections, runs retention, shuts down cleanly."""
from __future__ import annotations

import asyncio
import fcntl
import itertools
import logging
from pathlib import Path
from typing import IO, Dict, Optional

from .amqp.connection import Connection, ConnectionOptions
from .broker import Broker
from .config import EmulatorConfig

log = logging.getLogger(__name__)


class EmulatorServer:
    def __init__(self, config: EmulatorConfig, data_dir: Path, host: str, port: int,
                 options: Optional[ConnectionOptions] = None) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.broker: Optional[Broker] = None
        self._lock_file: Optional[IO[str]] = None
        self.host = host
        self.port = port
        self.options = options or ConnectionOptions()
        self._server: Optional[asyncio.base_events.Server] = None
        self._connections: Dict[Connection, asyncio.Task] = {}
        self._ids = itertools.count(1)
        self._retention_task: Optional[asyncio.Task] = None

    async def start(self) -> int:
        self._lock_data_dir()
        self.broker = Broker(self.config, self.data_dir)
        self.broker.open()
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._retention_task = asyncio.create_task(self._retention_loop())
        return self.port

    def _lock_data_dir(self) -> None:
        # Two emulators appending to the same logs would corrupt them.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.data_dir / ".lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise OSError(f"data directory {self.data_dir} is in use by another emulator process") from None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.broker is not None
        peer = writer.get_extra_info("peername")
        connection = Connection(reader, writer, self.broker, self.options, f"conn-{next(self._ids)}@{peer}")
        log.debug("%s: accepted", connection.name)
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = task
        try:
            await connection.serve()
        finally:
            self._connections.pop(connection, None)

    async def _retention_loop(self) -> None:
        # Consumers and management reads also expire lazily; this keeps disk usage bounded.
        assert self.broker is not None
        shortest = min(hub.retention_ms for hub in self.config.hubs) / 1000
        interval = min(60.0, max(0.2, shortest / 10))
        while True:
            await asyncio.sleep(interval)
            try:
                self.broker.expire()
            except Exception:  # noqa: BLE001 - keep serving even if a deletion fails
                log.exception("retention pass failed")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._retention_task is not None:
            self._retention_task.cancel()
        connections = list(self._connections.items())
        await asyncio.gather(*(conn.shutdown() for conn, _ in connections), return_exceptions=True)
        tasks = [task for _, task in connections]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        if self.broker is not None:
            self.broker.close()
        if self._lock_file is not None:
            self._lock_file.close()
