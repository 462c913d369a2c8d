"""Sessions (AMQP 1.0 part 2.5): channels, handles and the transfer windows."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, Optional

from .framing import performative_size
from .link import ROLE_RECEIVER, IncomingLink, Link, LinkError, OutgoingLink
from .performatives import Accepted, Begin, Detach, Disposition, End, Error, Flow, Rejected

if TYPE_CHECKING:  # pragma: no cover
    from .connection import Connection

log = logging.getLogger(__name__)

# Frames the peer may send before we widen the window again.
INCOMING_WINDOW = 5000
OUTGOING_WINDOW = 0xFFFFFFFF // 2
HANDLE_MAX = 0xFFFF


class Session:
    def __init__(self, connection: "Connection", channel: int, remote_channel: int, begin: Any) -> None:
        self.connection = connection
        self.channel = channel
        self.remote_channel = remote_channel
        self.remote_handle_max = begin.handle_max if begin.handle_max is not None else 0xFFFFFFFF
        self.next_outgoing_id = 0
        self.next_incoming_id = begin.next_outgoing_id or 0
        self.incoming_window = INCOMING_WINDOW
        self.remote_incoming_window = begin.incoming_window or 0
        self.remote_outgoing_window = begin.outgoing_window or 0
        self.links_by_remote: Dict[int, Link] = {}
        self.links_by_handle: Dict[int, Link] = {}
        self.ended = False

    def begin_reply(self) -> Any:
        return Begin(
            remote_channel=self.remote_channel,
            next_outgoing_id=self.next_outgoing_id,
            incoming_window=self.incoming_window,
            outgoing_window=OUTGOING_WINDOW,
            handle_max=HANDLE_MAX,
        )

    def send(self, performative: Any, payload: bytes = b"") -> None:
        self.connection.send_frame(self.channel, performative, payload)

    # ------------------------------------------------------------------ flow
    def send_flow(self, link: Optional[Link] = None, drain: bool = False) -> None:
        fields: Dict[str, Any] = {
            "next_incoming_id": self.next_incoming_id,
            "incoming_window": self.incoming_window,
            "next_outgoing_id": self.next_outgoing_id,
            "outgoing_window": OUTGOING_WINDOW,
        }
        if link is not None:
            fields["handle"] = link.handle
            fields.update(link.flow_fields())
            fields["drain"] = drain or None
        self.send(Flow(**fields))

    def on_flow(self, flow: Any) -> None:
        # The peer's view of our next id may lag if it has not received all
        # our transfers yet; the window it grants starts from its view.
        their_next_incoming = flow.next_incoming_id if flow.next_incoming_id is not None else 0
        self.remote_incoming_window = their_next_incoming + (flow.incoming_window or 0) - self.next_outgoing_id
        self.remote_outgoing_window = flow.outgoing_window or 0
        if flow.handle is not None:
            link = self.links_by_remote.get(flow.handle)
            if link is not None and not link.closed:
                link.on_flow(flow)
            return
        if flow.echo:
            self.send_flow()
        for link in self.links_by_handle.values():
            if isinstance(link, OutgoingLink):
                link.wake()

    # -------------------------------------------------------------- attach
    def on_attach(self, attach: Any) -> None:
        if attach.handle in self.links_by_remote:
            self.connection.close_with_error("amqp:session:handle-in-use",
                                             f"handle {attach.handle} is already attached")
            return
        handle = self._allocate_handle()
        # The peer's role is the opposite of ours: a receiver attaches to our sender.
        cls = OutgoingLink if attach.role == ROLE_RECEIVER else IncomingLink
        link = cls(self, attach, handle)
        self.links_by_remote[attach.handle] = link
        self.links_by_handle[handle] = link
        error: Optional[Error] = None
        try:
            self.connection.container.on_link_attach(link)
        except LinkError as exc:
            error = exc.error
        except Exception:  # noqa: BLE001 - report as an AMQP error, keep serving
            log.exception("attach failed for %r", link)
            error = Error(condition="amqp:internal-error", description="The emulator failed to attach the link.")
        self.send(link.reply())
        if error is not None:
            log.info("refusing link %s (%s -> %s): %s", link.name, link.source_address, link.target_address,
                     error.description)
            link.detach(error)
            return
        link.attached = True
        if isinstance(link, IncomingLink):
            link.grant_credit()
        else:
            link.wake()

    def _allocate_handle(self) -> int:
        limit = min(self.remote_handle_max, HANDLE_MAX)
        for handle in range(limit + 1):
            if handle not in self.links_by_handle:
                return handle
        raise LinkError("amqp:resource-limit-exceeded", "no free link handles")

    def on_detach(self, detach: Any) -> None:
        link = self.links_by_remote.pop(detach.handle, None)
        if link is None:
            return
        self.links_by_handle.pop(link.handle, None)
        if not link.detaching:
            self.send(Detach(handle=link.handle, closed=detach.closed))
        link.on_detached()

    # ------------------------------------------------------------ transfers
    def on_transfer(self, transfer: Any, payload: memoryview) -> None:
        if transfer.delivery_id is not None:
            self.next_incoming_id = (transfer.delivery_id + 1) & 0xFFFFFFFF
        self.incoming_window -= 1
        if self.incoming_window < INCOMING_WINDOW // 2:
            self.incoming_window = INCOMING_WINDOW
            self.send_flow()
        link = self.links_by_remote.get(transfer.handle)
        if link is None:
            self.connection.close_with_error("amqp:session:unattached-handle",
                                             f"transfer on unattached handle {transfer.handle}")
            return
        if not isinstance(link, IncomingLink):
            self.connection.close_with_error("amqp:session:errant-link", "transfer sent to a sending link")
            return
        if link.closed:
            return  # we detached it; frames in flight are dropped
        try:
            settle = link.on_transfer(transfer, payload)
        except LinkError as exc:
            log.info("detaching %r: %s", link, exc)
            first = link._partial_first  # noqa: SLF001 - settle what we can before detaching
            if first is not None and not first.settled and first.delivery_id is not None:
                self._settle(first.delivery_id, Rejected(error=exc.error))
            link.detach(exc.error)
            return
        if settle is not None:
            self._settle(*settle)

    def _settle(self, delivery_id: int, outcome: Any) -> None:
        self.send(Disposition(role=ROLE_RECEIVER, first=delivery_id, last=delivery_id, settled=True,
                              state=outcome or Accepted()))

    def send_transfer(self, transfer: Any, payload: bytes) -> None:
        """Send one delivery, split into frames that fit the peer's max-frame-size."""
        transfer.delivery_id = self.next_outgoing_id
        self.next_outgoing_id = (self.next_outgoing_id + 1) & 0xFFFFFFFF
        self.remote_incoming_window -= 1
        max_frame = self.connection.remote_max_frame_size
        transfer.more = False
        # A transfer performative with an 8-byte tag encodes to well under 256 bytes.
        if len(payload) + 256 <= max_frame or len(payload) + performative_size(transfer) <= max_frame:
            self.send(transfer, payload)
            return
        transfer.more = True
        room = max_frame - performative_size(transfer)
        view = memoryview(payload)
        for start in range(0, len(view), room):
            chunk = view[start:start + room]
            transfer.more = start + room < len(view)
            self.send(transfer, bytes(chunk))

    def on_disposition(self, disposition: Any) -> None:
        # Event Hubs deliveries are not removed on settlement, so a consumer's
        # dispositions need no action.
        return

    # ----------------------------------------------------------------- end
    def on_end(self) -> None:
        self.release()
        self.send(End())

    def release(self) -> None:
        """Drop all links (peer ended the session or the connection went away)."""
        if self.ended:
            return
        self.ended = True
        for link in list(self.links_by_handle.values()):
            link.on_detached()
        self.links_by_handle.clear()
        self.links_by_remote.clear()

    def detach_all(self, error: Error) -> None:
        for link in list(self.links_by_handle.values()):
            link.detach(error)
