"""Process helpers for the Event Hubs emulator integration tests.

Starts ``python -m local.eventhubs`` and Azurite as subprocesses on free
loopback ports and stops them by PID.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the tests import local.eventhubs for its AMQP codec
    sys.path.insert(0, str(ROOT))
AZURITE = ROOT / "node_modules" / ".bin" / "azurite"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def emulator_config(hubs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """A Config.json document in Microsoft's emulator format."""
    entities = []
    for hub in hubs:
        entity = {
            "Name": hub["name"],
            "PartitionCount": str(hub.get("partitions", 1)),
            "ConsumerGroups": [{"Name": g} for g in hub.get("groups", [])],
        }
        if "retention_hours" in hub:
            entity["RetentionHours"] = hub["retention_hours"]
        entities.append(entity)
    return {"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Name": "emulatorNs1", "Entities": entities}],
                           "LoggingConfig": {"Type": "File"}}}


class _LineReader:
    """Reads a child's stdout on a thread so waiting for a line can time out."""

    def __init__(self, stream: Any) -> None:
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line starting with {prefix!r} within {timeout}s")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"process exited before printing {prefix!r}")
            if line.startswith(prefix):
                return line.strip()


class EmulatorProcess:
    """The emulator under test; restartable on the same port and data directory."""

    def __init__(self, config_path: Path, data_dir: Path, log_path: Path, extra_args: Optional[List[str]] = None):
        self.config_path = config_path
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_args = extra_args or []
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.hub_names = [e["Name"] for e in json.loads(config_path.read_text())["UserConfig"]["NamespaceConfig"][0]["Entities"]]

    @property
    def connection_string(self) -> str:
        return (f"Endpoint=sb://localhost:{self.port};SharedAccessKeyName=RootManageSharedAccessKey;"
                "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true")

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "local.eventhubs", "--config", str(self.config_path), "--host", "127.0.0.1",
                 "--port", str(self.port), "--data-dir", str(self.data_dir), "--log-level", "info", *self.extra_args],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
            )
        line = _LineReader(self.proc.stdout).wait_for("eventhubs emulator listening on", timeout)
        self.port = int(line.rsplit(":", 1)[1])  # keep the port across restarts
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        from azure.eventhub import EventHubProducerClient

        deadline = time.monotonic() + timeout
        last_error: Optional[BaseException] = None
        while time.monotonic() < deadline:
            producer = EventHubProducerClient.from_connection_string(
                self.connection_string, eventhub_name=self.hub_names[0], retry_total=0)
            try:
                producer.get_eventhub_properties()
                return
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                last_error = exc
                time.sleep(0.2)
            finally:
                producer.close()
        raise TimeoutError(f"emulator not ready after {timeout}s: {last_error!r}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def restart(self, sig: int = signal.SIGTERM) -> int:
        code = self.stop(sig)
        self.start()
        return code

    @staticmethod
    def root() -> Path:
        return ROOT

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class AzuriteProcess:
    def __init__(self) -> None:
        self.blob_port = free_port()
        self.proc: Optional[subprocess.Popen] = None

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
                f"BlobEndpoint=http://127.0.0.1:{self.blob_port}/devstoreaccount1;")

    def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [str(AZURITE), "--inMemoryPersistence", "--skipApiVersionCheck", "--silent", "--blobHost", "127.0.0.1",
             "--blobPort", str(self.blob_port), "--queuePort", str(free_port()), "--tablePort", str(free_port())],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"azurite exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.blob_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("azurite did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


class RawAmqpClient:
    """A minimal blocking AMQP peer built from the emulator's own codec.

    Used to check protocol details the SDK never exercises (drain, echo, no-SASL
    connections) and the exact shape of the frames the emulator sends.
    """

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def recv_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("emulator closed the connection")
            data += chunk
        return data

    def send(self, channel: int, performative: Any, frame_type: int = 0) -> None:
        from local.eventhubs.amqp.framing import encode_frame

        self.sock.sendall(encode_frame(channel, performative, frame_type=frame_type))

    def read_frame(self) -> tuple:
        """(channel, performative, raw body, payload); heartbeats are skipped."""
        import struct

        from local.eventhubs.amqp.framing import decode_frame_body

        while True:
            size, doff, _type, channel = struct.unpack(">IBBH", self.recv_exact(8))
            body = self.recv_exact(size - 8)[doff * 4 - 8:]
            if body:
                performative, payload = decode_frame_body(memoryview(body))
                return channel, performative, body, bytes(payload)

    def send_empty(self) -> None:
        self.sock.sendall(b"\x00\x00\x00\x08\x02\x00\x00\x00")

    def read_any(self, timeout: float) -> Any:
        """The next frame's performative, or None for an empty (heartbeat) frame."""
        import struct

        from local.eventhubs.amqp.framing import decode_frame_body

        previous = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            size, doff, _type, _channel = struct.unpack(">IBBH", self.recv_exact(8))
            body = self.recv_exact(size - 8)[doff * 4 - 8:]
        finally:
            self.sock.settimeout(previous)
        return decode_frame_body(memoryview(body))[0] if body else None

    def expect(self, kind: type) -> tuple:
        channel, performative, body, payload = self.read_frame()
        assert isinstance(performative, kind), f"expected {kind.__name__}, got {performative!r}"
        return channel, performative, body, payload

    def close(self) -> None:
        self.sock.close()
