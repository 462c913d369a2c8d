"""Link endpoints (AMQP 1.0 part 2.6): credit-based flow control and deliveries.

The application (the "container") attaches a *handler* to each link:

* ``IncomingLink`` (the peer sends, we receive): ``handler.on_message(link,
  message_format, payload)`` returns the outcome composite (e.g. ``Accepted()``)
  after the message has been processed; we settle with it.
* ``OutgoingLink`` (we send): ``handler.take(link, limit)`` returns up to
  ``limit`` ``(payload, message_format)`` pairs ready to go now.  When more
  become available the handler calls ``link.wake()``.
"""
from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .performatives import Attach, Detach, Error, Source, Target, Transfer

if TYPE_CHECKING:  # pragma: no cover
    from .session import Session

log = logging.getLogger(__name__)

ROLE_SENDER = False
ROLE_RECEIVER = True
SND_UNSETTLED, SND_SETTLED, SND_MIXED = 0, 1, 2

# Credit we grant peers sending to us; topped up once half is used.
INCOMING_CREDIT = 1000
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024


class LinkError(Exception):
    """Raised by a container to refuse or end a link with an AMQP error."""

    def __init__(self, condition: str, description: str, info: Optional[Dict[Any, Any]] = None) -> None:
        super().__init__(f"{condition}: {description}")
        self.error = Error(condition=condition, description=description, info=info)


class Link:
    """State shared by both directions."""

    def __init__(self, session: "Session", attach: Any, handle: int) -> None:
        self.session = session
        self.name: str = attach.name
        self.handle = handle  # ours
        self.remote_handle: int = attach.handle
        self.remote_attach = attach
        self.source: Optional[Any] = attach.source if isinstance(attach.source, Source) else None
        self.target: Optional[Any] = attach.target if isinstance(attach.target, Target) else None
        self.properties: Dict[Any, Any] = attach.properties if isinstance(attach.properties, dict) else {}
        self.desired_capabilities: List[str] = [str(c) for c in (attach.desired_capabilities or [])]
        self.offered_capabilities: List[str] = []
        self.reply_properties: Optional[Dict[Any, Any]] = None
        self.handler: Any = None
        self.attached = False
        self.detaching = False  # we sent detach and wait for the peer's
        self.closed = False

    # -- addressing helpers
    @property
    def source_address(self) -> Optional[str]:
        return self.source.address if self.source is not None else None

    @property
    def target_address(self) -> Optional[str]:
        return self.target.address if self.target is not None else None

    @property
    def connection(self) -> Any:
        return self.session.connection

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} handle={self.handle} src={self.source_address!r} " \
               f"tgt={self.target_address!r}>"

    def reply_attach(self, role: bool, initial_delivery_count: Optional[int], max_message_size: Optional[int]) -> Any:
        # Echo source and target: the Azure SDK treats a reply without them as a
        # refused link, even when a detach carrying the real error follows.
        return Attach(
            name=self.name,
            handle=self.handle,
            role=role,
            snd_settle_mode=self.remote_attach.snd_settle_mode,
            rcv_settle_mode=self.remote_attach.rcv_settle_mode,
            source=self.source or Source(),
            target=self.target or Target(),
            initial_delivery_count=initial_delivery_count,
            max_message_size=max_message_size,
            offered_capabilities=self.offered_capabilities or None,
            properties=self.reply_properties,
        )

    def detach(self, error: Optional[Error] = None, closed: bool = True) -> None:
        """Detach from our side (e.g. a stolen receiver); the peer answers with its detach."""
        if self.detaching or self.closed:
            return
        self.detaching = True
        self.session.send(Detach(handle=self.handle, closed=closed, error=error))
        self.on_detached()

    def on_detached(self) -> None:
        """Release application resources; called once, whichever side detached first."""
        if self.closed:
            return
        self.closed = True
        self.attached = False
        if self.handler is not None and hasattr(self.handler, "on_link_closed"):
            try:
                self.handler.on_link_closed(self)
            except Exception:  # noqa: BLE001 - a faulty handler must not break the connection
                log.exception("link close handler failed for %r", self)

    def on_flow(self, flow: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class IncomingLink(Link):
    """The peer is the sender; we receive and settle its deliveries."""

    def __init__(self, session: "Session", attach: Any, handle: int) -> None:
        super().__init__(session, attach, handle)
        self.delivery_count = attach.initial_delivery_count or 0
        self.credit = 0
        self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        self._partial: Optional[bytearray] = None
        self._partial_first: Optional[Any] = None

    def reply(self) -> Any:
        return self.reply_attach(ROLE_RECEIVER, None, self.max_message_size)

    def grant_credit(self) -> None:
        self.credit = INCOMING_CREDIT
        self.session.send_flow(self)

    def flow_fields(self) -> Dict[str, Any]:
        return {"delivery_count": self.delivery_count, "link_credit": self.credit}

    def on_flow(self, flow: Any) -> None:
        if flow.echo:
            self.session.send_flow(self)

    def on_transfer(self, transfer: Any, payload: memoryview) -> Optional[Tuple[int, Any]]:
        """Accumulate a (possibly multi-frame) delivery.

        Returns ``(delivery_id, outcome)`` for a completed unsettled delivery, so the
        session can settle it; ``None`` otherwise.
        """
        if self._partial is None:
            self._partial = bytearray()
            self._partial_first = transfer
        self._partial += payload
        if transfer.aborted:
            self._partial = None
            return None
        if len(self._partial) > self.max_message_size:
            self._partial = None
            raise LinkError("amqp:link:message-size-exceeded",
                            f"The message exceeds the link's maximum size of {self.max_message_size} bytes.")
        if transfer.more:
            return None
        first, data = self._partial_first, bytes(self._partial)
        self._partial = None
        self.delivery_count += 1
        self.credit -= 1
        if self.credit < INCOMING_CREDIT // 2:
            self.grant_credit()
        message_format = first.message_format or 0
        outcome = self.handler.on_message(self, message_format, data)
        if first.settled:
            return None
        return first.delivery_id, outcome


class OutgoingLink(Link):
    """We are the sender; the peer grants credit."""

    def __init__(self, session: "Session", attach: Any, handle: int) -> None:
        super().__init__(session, attach, handle)
        self.delivery_count = 0
        self.credit = 0
        self.drain = False
        # Settled-at-send unless the peer insists on unsettled deliveries; Event
        # Hubs deliveries need no acknowledgement either way.
        self.settled = attach.snd_settle_mode != SND_UNSETTLED

    def reply(self) -> Any:
        return self.reply_attach(ROLE_SENDER, self.delivery_count, None)

    def flow_fields(self) -> Dict[str, Any]:
        fields: Dict[str, Any] = {"delivery_count": self.delivery_count, "link_credit": max(self.credit, 0)}
        if self.handler is not None and hasattr(self.handler, "available"):
            fields["available"] = self.handler.available(self)
        return fields

    def on_flow(self, flow: Any) -> None:
        remote_count = flow.delivery_count if flow.delivery_count is not None else 0
        if flow.link_credit is not None:
            # link-credit is relative to the receiver's view of delivery-count.
            self.credit = (remote_count + flow.link_credit - self.delivery_count) & 0xFFFFFFFF
            if self.credit > 0x7FFFFFFF:
                self.credit = 0
        self.drain = bool(flow.drain)
        if flow.echo:
            self.session.send_flow(self)
        self.wake()

    def wake(self) -> None:
        if self.attached and not self.closed:
            self.connection.schedule(self)

    def pump(self, budget: int) -> bool:
        """Send up to ``budget`` deliveries; True if called again may send more."""
        if not self.attached or self.closed or self.detaching:
            return False
        sent = 0
        while sent < budget:
            room = min(self.credit, self.session.remote_incoming_window, budget - sent)
            if room <= 0:
                return False
            batch = self.handler.take(self, room)
            if not batch:
                if self.drain and self.credit > 0:
                    # Nothing to send: consume the credit and tell the receiver.
                    self.delivery_count = (self.delivery_count + self.credit) & 0xFFFFFFFF
                    self.credit = 0
                    self.drain = False
                    self.session.send_flow(self, drain=True)
                return False
            for payload, message_format in batch:
                self._send_delivery(payload, message_format)
                sent += 1
        return True

    def _send_delivery(self, payload: bytes, message_format: int) -> None:
        tag = struct.pack(">Q", self.delivery_count)
        transfer = Transfer(
            handle=self.handle,
            delivery_id=None,  # assigned by the session
            delivery_tag=tag,
            message_format=message_format,
            settled=self.settled,
            more=False,
            rcv_settle_mode=None,
            state=None,
            resume=False,
            aborted=False,
            batchable=False,
        )
        self.session.send_transfer(transfer, payload)
        self.delivery_count = (self.delivery_count + 1) & 0xFFFFFFFF
        self.credit -= 1
