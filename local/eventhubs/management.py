"""The ``$cbs`` and ``$management`` request/response nodes.

Clients attach a sending link to the node for requests and a receiving link
from it for responses, then correlate responses by ``correlation-id`` =
request ``message-id``.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple

from .amqp.codec import DecodeError
from .amqp.link import Link, OutgoingLink
from .amqp.message import Message, build_message
from .amqp.performatives import Accepted, Error, Rejected
from .amqp.types import Array, Int, Long, Timestamp

if TYPE_CHECKING:  # pragma: no cover
    from .broker import Broker

log = logging.getLogger(__name__)

CBS = "$cbs"
MANAGEMENT = "$management"
EVENTHUB_TYPE = "com.microsoft:eventhub"
PARTITION_TYPE = "com.microsoft:partition"


def is_node_address(path: str) -> bool:
    return path.lower() in (CBS, MANAGEMENT)


class ReplyQueue:
    """Handler of a response link: replies wait here until the client grants credit."""

    def __init__(self, node: str) -> None:
        self.node = node.lower()
        self.pending: Deque[bytes] = deque()

    def put(self, link: OutgoingLink, message: bytes) -> None:
        self.pending.append(message)
        link.wake()

    def take(self, link: OutgoingLink, limit: int) -> List[Tuple[bytes, int]]:
        batch = []
        while self.pending and len(batch) < limit:
            batch.append((self.pending.popleft(), 0))
        return batch

    def available(self, link: OutgoingLink) -> int:
        return len(self.pending)


class _RequestHandler:
    def __init__(self, node: "ManagementNode", address: str) -> None:
        self.node = node
        self.address = address.lower()

    def on_message(self, link: Link, message_format: int, payload: bytes) -> Any:
        try:
            request = Message.parse(payload)
            properties = request.properties
            app = {str(k): v for k, v in request.application_properties.items()}
        except (DecodeError, ValueError) as exc:
            return Rejected(error=Error(condition="amqp:decode-error", description=f"Malformed request: {exc}"))
        if self.address == CBS:
            status, description, body = 202, "Accepted", None  # any token is fine locally
        else:
            status, description, body = self.node.management_request(app)
        application_properties: Dict[str, Any] = {"status-code": Int(status), "status-description": description}
        if self.address == MANAGEMENT:
            # azure-eventhub 5.x reads the description under this name (it passes the
            # documented field name to a keyword the management link ignores).
            application_properties["statusDescription"] = description
        response = build_message(
            properties={"correlation_id": properties.get("message_id"), "to": properties.get("reply_to")},
            application_properties=application_properties,
            value=body,
        )
        reply_link = self._reply_link(link, properties.get("reply_to"))
        if reply_link is None:
            log.warning("%s request on %r has no response link to answer on", self.address, link)
        else:
            reply_link.handler.put(reply_link, response)
        return Accepted()

    def _reply_link(self, link: Link, reply_to: Optional[str]) -> Optional[OutgoingLink]:
        candidates = [l for l in link.session.links_by_handle.values()
                      if isinstance(l, OutgoingLink) and isinstance(l.handler, ReplyQueue) and not l.closed]
        if reply_to:
            for candidate in candidates:
                if candidate.target_address == reply_to:
                    return candidate
        for candidate in candidates:
            if candidate.handler.node == self.address:
                return candidate
        return None


class ManagementNode:
    def __init__(self, broker: "Broker") -> None:
        self.broker = broker

    def request_handler(self, address: str) -> _RequestHandler:
        return _RequestHandler(self, address)

    def management_request(self, app: Dict[str, Any]) -> Tuple[int, str, Any]:
        operation, kind = str(app.get("operation", "")), str(app.get("type", ""))
        if operation != "READ":
            return 400, f"Unsupported management operation {operation!r}; only READ is supported.", None
        hub = self.broker.hub(app.get("name"))
        if hub is None:
            return 404, f"The messaging entity '{app.get('name')}' could not be found.", None
        if kind == EVENTHUB_TYPE:
            return 200, "OK", {
                "name": hub.name,
                "type": EVENTHUB_TYPE,
                "created_at": Timestamp(hub.created_at),
                "partition_count": Int(len(hub.partitions)),
                "partition_ids": Array([p.id for p in hub.partitions], str),
            }
        if kind == PARTITION_TYPE:
            partition = hub.partition(app.get("partition"))
            if partition is None:
                return 404, (f"Partition '{app.get('partition')}' does not exist in event hub '{hub.name}' "
                             f"(valid partition ids: {hub.partition_ids_text()})."), None
            plog = partition.log
            plog.expire()
            return 200, "OK", {
                "name": hub.name,
                "type": PARTITION_TYPE,
                "partition": partition.id,
                "begin_sequence_number": Long(plog.begin_sequence),
                "last_enqueued_sequence_number": Long(plog.last_sequence),
                "last_enqueued_offset": str(plog.last_offset),
                "last_enqueued_time_utc": Timestamp(plog.last_time),
                "is_partition_empty": plog.is_empty,
            }
        return 400, f"Unsupported management type {kind!r}.", None
