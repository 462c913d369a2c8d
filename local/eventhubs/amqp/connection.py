"""One AMQP 1.0 server connection over asyncio streams.

Covers protocol-header exchange, SASL (ANONYMOUS/PLAIN/EXTERNAL, any
credentials accepted), open/close, idle-timeout heartbeats and routing frames
to sessions.  Outgoing deliveries are produced by a single pump task per
connection so links share the socket fairly and respect write back-pressure.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, Optional, Protocol, Set

from .framing import (
    AMQP_FRAME,
    EMPTY_FRAME,
    FRAME_HEADER,
    MIN_MAX_FRAME_SIZE,
    PROTOCOL_AMQP,
    PROTOCOL_SASL,
    SASL_FRAME,
    FramingError,
    decode_frame_body,
    encode_frame,
)
from .link import OutgoingLink
from .performatives import (
    Attach,
    Begin,
    Close,
    Detach,
    Disposition,
    End,
    Error,
    Flow,
    Open,
    SaslInit,
    SaslMechanisms,
    SaslOutcome,
    Transfer,
)
from .session import Session

log = logging.getLogger(__name__)

SASL_MECHANISMS = ("ANONYMOUS", "PLAIN", "EXTERNAL")
SASL_OK, SASL_AUTH_FAILED = 0, 1
PUMP_BUDGET = 64  # deliveries per link turn, so one busy link cannot starve others


class Container(Protocol):
    """What the application provides to the AMQP layer."""

    container_id: str

    def on_link_attach(self, link: Any) -> None:
        """Set ``link.handler``; raise ``LinkError`` to refuse the link."""


class ConnectionOptions:
    def __init__(self, max_frame_size: int = 1024 * 1024, channel_max: int = 4095,
                 idle_timeout: float = 240.0) -> None:
        self.max_frame_size = max_frame_size
        self.channel_max = channel_max
        self.idle_timeout = idle_timeout  # seconds without any frame from the peer; 0 disables


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, container: Container,
                 options: ConnectionOptions, name: str) -> None:
        self.reader = reader
        self.writer = writer
        self.container = container
        self.options = options
        self.name = name
        self.remote_max_frame_size = MIN_MAX_FRAME_SIZE
        self.remote_channel_max = 0
        self.remote_idle_timeout = 0.0
        self.remote_container_id: Optional[str] = None
        self.sessions: Dict[int, Session] = {}  # by the peer's channel
        self._local_channels: Set[int] = set()
        self._opened = False
        self._amqp_started = False  # protocol headers (and SASL) done
        self._open_sent = False
        self._close_sent = False
        self._close_received = False
        self._last_read = time.monotonic()
        self._last_write = time.monotonic()
        self._ready: Dict[OutgoingLink, None] = {}  # insertion-ordered set
        self._pump_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    # ------------------------------------------------------------- writing
    def send_frame(self, channel: int, performative: Any, payload: bytes = b"",
                   frame_type: int = AMQP_FRAME) -> None:
        if self.writer.is_closing():
            return
        if log.isEnabledFor(logging.DEBUG) and not isinstance(performative, (Flow, Disposition, Transfer)):
            log.debug("%s -> [%d] %r", self.name, channel, performative)
        self.writer.write(encode_frame(channel, performative, payload, frame_type))
        self._last_write = time.monotonic()

    def schedule(self, link: OutgoingLink) -> None:
        self._ready[link] = None
        self._pump_wakeup.set()

    def close_with_error(self, condition: str, description: str) -> None:
        log.warning("%s: closing connection: %s %s", self.name, condition, description)
        if self._amqp_started:  # during SASL there is no AMQP connection to close
            self._send_close(Error(condition=condition, description=description))
        self.writer.close()

    def _send_close(self, error: Optional[Error] = None) -> None:
        if self._close_sent:
            return
        self._close_sent = True
        if not self._open_sent:
            # A close must follow our open, even when we refuse the connection early.
            self._open_sent = True
            self.send_frame(0, Open(container_id=self.container.container_id))
        self.send_frame(0, Close(error=error))

    async def shutdown(self, description: str = "The Event Hubs emulator is shutting down.") -> None:
        """Close from our side and give the peer a moment to answer."""
        if self._opened:
            self._send_close(Error(condition="amqp:connection:forced", description=description))
            try:
                await asyncio.wait_for(self.writer.drain(), 1.0)
            except Exception:  # noqa: BLE001 - peer may already be gone
                pass
        self.writer.close()

    # ------------------------------------------------------------- reading
    async def _read_frame(self) -> tuple[int, int, memoryview]:
        header = await self.reader.readexactly(FRAME_HEADER.size)
        size, doff, frame_type, channel = FRAME_HEADER.unpack(header)
        if size < FRAME_HEADER.size or doff < 2 or doff * 4 > size:
            raise FramingError(f"invalid frame header size={size} doff={doff}")
        if size > self.options.max_frame_size:
            raise FramingError(f"frame of {size} bytes exceeds max-frame-size {self.options.max_frame_size}")
        body = await self.reader.readexactly(size - FRAME_HEADER.size)
        self._last_read = time.monotonic()
        return frame_type, channel, memoryview(body)[doff * 4 - FRAME_HEADER.size:]

    async def _negotiate(self) -> bool:
        """Exchange protocol headers (and SASL); False if the peer speaks something else."""
        header = await self.reader.readexactly(8)
        if header == PROTOCOL_SASL:
            self.writer.write(PROTOCOL_SASL)
            self.send_frame(0, SaslMechanisms(sasl_server_mechanisms=list(SASL_MECHANISMS)), frame_type=SASL_FRAME)
            frame_type, _, body = await self._read_frame()
            init, _ = decode_frame_body(body)
            if frame_type != SASL_FRAME or not isinstance(init, SaslInit):
                raise FramingError("expected sasl-init")
            if str(init.mechanism) not in SASL_MECHANISMS:
                self.send_frame(0, SaslOutcome(code=SASL_AUTH_FAILED), frame_type=SASL_FRAME)
                return False
            # Any credentials are fine: this is a local emulator.
            self.send_frame(0, SaslOutcome(code=SASL_OK, additional_data=None), frame_type=SASL_FRAME)
            header = await self.reader.readexactly(8)
        if header != PROTOCOL_AMQP:
            log.info("%s: unsupported protocol header %r", self.name, header)
            self.writer.write(PROTOCOL_SASL)
            return False
        self.writer.write(PROTOCOL_AMQP)
        self._amqp_started = True
        return True

    async def serve(self) -> None:
        try:
            if not await self._negotiate():
                return
            self._tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._heartbeat())]
            while not self._close_received:
                frame_type, channel, body = await self._read_frame()
                if not body:
                    continue  # empty frame: heartbeat
                if frame_type != AMQP_FRAME:
                    raise FramingError(f"unexpected frame type {frame_type}")
                performative, payload = decode_frame_body(body)
                self._dispatch(channel, performative, payload)
                if self.writer.is_closing():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            log.debug("%s: peer went away: %r", self.name, exc)
        except FramingError as exc:
            self.close_with_error("amqp:connection:framing-error", str(exc))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one bad connection must not take the server down
            log.exception("%s: connection failed", self.name)
            self.close_with_error("amqp:internal-error", "The emulator hit an internal error.")
        finally:
            await self._cleanup()

    async def _cleanup(self) -> None:
        for session in self.sessions.values():
            session.release()
        self.sessions.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        try:
            await asyncio.wait_for(self.writer.drain(), 1.0)
        except Exception:  # noqa: BLE001
            pass
        self.writer.close()
        log.info("%s: connection closed", self.name)

    # ------------------------------------------------------------ dispatch
    def _dispatch(self, channel: int, performative: Any, payload: memoryview) -> None:
        if isinstance(performative, Transfer):
            self._session(channel).on_transfer(performative, payload)
            return
        if log.isEnabledFor(logging.DEBUG) and not isinstance(performative, (Flow, Disposition)):
            log.debug("%s <- [%d] %r", self.name, channel, performative)
        if isinstance(performative, (Flow, Disposition, Detach)) and channel not in self.sessions:
            # The Azure SDK detaches links after ending their session; nothing is left to do.
            log.debug("%s: ignoring %s on ended channel %d", self.name, type(performative).__name__, channel)
            return
        if isinstance(performative, Flow):
            self._session(channel).on_flow(performative)
        elif isinstance(performative, Disposition):
            self._session(channel).on_disposition(performative)
        elif isinstance(performative, Attach):
            self._session(channel).on_attach(performative)
        elif isinstance(performative, Detach):
            self._session(channel).on_detach(performative)
        elif isinstance(performative, Open):
            self._on_open(performative)
        elif isinstance(performative, Begin):
            self._on_begin(channel, performative)
        elif isinstance(performative, End):
            session = self.sessions.pop(channel, None)
            if session is not None:
                self._local_channels.discard(session.channel)
                session.on_end()
        elif isinstance(performative, Close):
            self._close_received = True
            if performative.error is not None:
                log.info("%s: peer closed with error %r", self.name, performative.error)
            self._send_close()
        else:
            raise FramingError(f"unexpected performative {type(performative).__name__}")

    def _session(self, channel: int) -> Session:
        session = self.sessions.get(channel)
        if session is None:
            raise FramingError(f"frame on channel {channel} without a session")
        return session

    def _on_open(self, performative: Any) -> None:
        if self._opened:
            raise FramingError("duplicate open")
        self._opened = True
        self.remote_container_id = performative.container_id
        max_frame = performative.max_frame_size if performative.max_frame_size is not None else 0xFFFFFFFF
        self.remote_max_frame_size = max(MIN_MAX_FRAME_SIZE, min(max_frame, 64 * 1024 * 1024))
        self.remote_channel_max = performative.channel_max if performative.channel_max is not None else 65535
        self.remote_idle_timeout = (performative.idle_timeout or 0) / 1000.0
        log.info("%s: open from container %r (max-frame %d, idle-timeout %.1fs)", self.name,
                 self.remote_container_id, self.remote_max_frame_size, self.remote_idle_timeout)
        self._open_sent = True
        self.send_frame(0, Open(
            container_id=self.container.container_id,
            hostname=None,
            max_frame_size=self.options.max_frame_size,
            channel_max=self.options.channel_max,
            idle_timeout=int(self.options.idle_timeout * 1000) or None,
        ))

    def _on_begin(self, channel: int, begin: Any) -> None:
        if not self._opened:
            raise FramingError("begin before open")
        if begin.remote_channel is not None:
            raise FramingError("begin answers a session we never started")
        if channel > self.options.channel_max or channel in self.sessions:
            raise FramingError(f"channel {channel} is out of range or in use")
        limit = min(self.remote_channel_max, self.options.channel_max)
        local = next((c for c in range(limit + 1) if c not in self._local_channels), None)
        if local is None:
            self.send_frame(channel, End(error=Error(condition="amqp:resource-limit-exceeded",
                                                     description="no free channels")))
            return
        self._local_channels.add(local)
        session = Session(self, local, channel, begin)
        self.sessions[channel] = session
        self.send_frame(local, session.begin_reply())

    # ---------------------------------------------------- background tasks
    async def _pump(self) -> None:
        while True:
            await self._pump_wakeup.wait()
            self._pump_wakeup.clear()
            while self._ready:
                link = next(iter(self._ready))
                del self._ready[link]
                try:
                    more = link.pump(PUMP_BUDGET)
                except Exception:  # noqa: BLE001 - fail the link, not the whole connection
                    log.exception("%s: delivering on %r failed", self.name, link)
                    link.detach(Error(condition="amqp:internal-error",
                                      description="The emulator failed to read events for this receiver."))
                    continue
                if more:
                    self._ready[link] = None  # more to send: back of the queue
                try:
                    await self.writer.drain()
                except ConnectionError:
                    return  # the read loop notices the closed socket and cleans up

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(min(0.5, self.remote_idle_timeout / 4) if self.remote_idle_timeout else 0.5)
            now = time.monotonic()
            if self.remote_idle_timeout and now - self._last_write >= self.remote_idle_timeout / 2:
                if not self.writer.is_closing():
                    self.writer.write(EMPTY_FRAME)
                    self._last_write = now
            if self.options.idle_timeout and now - self._last_read > self.options.idle_timeout:
                self.close_with_error("amqp:resource-limit-exceeded",
                                      f"No frames received for {self.options.idle_timeout:.0f}s (idle timeout).")
                return
