"""Event Hubs semantics on top of the AMQP layer: hubs, partitions, producers,
consumers (with event positions and owner-level/epoch exclusivity)."""
from __future__ import annotations

import json
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .amqp.codec import DecodeError
from .amqp.link import IncomingLink, Link, LinkError, OutgoingLink
from .amqp.message import Message, insert_delivery_annotations, iter_batch
from .amqp.performatives import Accepted, Error, Rejected
from .amqp.types import Long, Symbol, Timestamp
from .config import EmulatorConfig, HubConfig
from .filters import StartPosition, parse_selector, selector_from_source_filter
from .management import ManagementNode, ReplyQueue, is_node_address
from .partitioning import partition_for_key
from .storage import PartitionLog, StoredEvent

log = logging.getLogger(__name__)

SEQUENCE_NUMBER = Symbol("x-opt-sequence-number")
OFFSET = Symbol("x-opt-offset")
ENQUEUED_TIME = Symbol("x-opt-enqueued-time")
PARTITION_KEY = Symbol("x-opt-partition-key")
EPOCH = "com.microsoft:epoch"
RUNTIME_METRIC = "com.microsoft:enable-receiver-runtime-metric"
LINK_STOLEN = "amqp:link:stolen"
NOT_FOUND = "amqp:not-found"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def entity_path(address: Optional[str]) -> str:
    """'amqps://host:port/hub/Partitions/0' -> 'hub/Partitions/0'."""
    if not address:
        return ""
    if "://" in address:
        rest = address.split("://", 1)[1]
        address = rest.split("/", 1)[1] if "/" in rest else ""
    return address.strip("/")


class Partition:
    def __init__(self, hub: "EventHub", partition_id: str, partition_log: PartitionLog) -> None:
        self.hub = hub
        self.id = partition_id
        self.log = partition_log
        self.consumers: Dict["ConsumerHandler", None] = {}
        self.owners: Dict[str, List["ConsumerHandler"]] = {}  # by consumer group (lower case)

    def append(self, messages: List[Tuple[Message, Optional[str]]]) -> List[StoredEvent]:
        stored = self.log.append([partial(_encode_event, message, key) for message, key in messages])
        for consumer in list(self.consumers):
            consumer.wake()
        return stored

    # -- receiver exclusivity (owner level / epoch)
    def claim(self, consumer: "ConsumerHandler") -> None:
        group = self.owners.setdefault(consumer.group.lower(), [])
        epochs = [c.epoch for c in group if c.epoch is not None]
        current = max(epochs) if epochs else None
        if consumer.epoch is None:
            if current is not None:
                raise LinkError(LINK_STOLEN, (
                    f"Receiver '{consumer.link.name}' cannot be created because a receiver with epoch "
                    f"'{current}' already exists on partition '{self.id}' of consumer group '{consumer.group}'. "
                    "A receiver with a higher epoch owns this partition."))
        else:
            if current is not None and consumer.epoch < current:
                raise LinkError(LINK_STOLEN, (
                    f"Receiver '{consumer.link.name}' with epoch '{consumer.epoch}' cannot be created because a "
                    f"receiver with a higher epoch '{current}' already exists on partition '{self.id}' of "
                    f"consumer group '{consumer.group}'."))
            for old in list(group):
                old_epoch = "<none>" if old.epoch is None else old.epoch
                old.steal(Error(condition=LINK_STOLEN, description=(
                    f"New receiver '{consumer.link.name}' with higher epoch of '{consumer.epoch}' is created hence "
                    f"current receiver '{old.link.name}' with epoch '{old_epoch}' is getting disconnected. "
                    "If you are recreating the receiver, make sure a higher epoch is used.")))
        group.append(consumer)

    def release(self, consumer: "ConsumerHandler") -> None:
        self.consumers.pop(consumer, None)
        group = self.owners.get(consumer.group.lower(), [])
        if consumer in group:
            group.remove(consumer)


def _encode_event(message: Message, partition_key: Optional[str], seq: int, offset: int,
                  enqueued_ms: int) -> Tuple[bytes, int]:
    annotations = dict(message.annotations)
    if partition_key is not None and PARTITION_KEY not in annotations:
        annotations[PARTITION_KEY] = partition_key
    annotations[SEQUENCE_NUMBER] = Long(seq)
    # Offsets are strings of numbers, as the real service sends them.
    annotations[OFFSET] = str(offset)
    annotations[ENQUEUED_TIME] = Timestamp(enqueued_ms)
    return message.encode(annotations=annotations)


class EventHub:
    def __init__(self, config: HubConfig, directory: Path, clock_ms: Callable[[], int]) -> None:
        self.config = config
        self.name = config.name
        self.directory = directory
        self.consumer_groups = {name.lower(): name for name in config.consumer_groups}
        self.created_at = self._load_created_at(clock_ms)
        self.partitions = [
            Partition(self, str(n), PartitionLog(directory / str(n), config.retention_ms, clock_ms))
            for n in range(config.partition_count)
        ]
        self._next_partition = 0

    def _load_created_at(self, clock_ms: Callable[[], int]) -> int:
        meta = self.directory / "hub.json"
        try:
            return int(json.loads(meta.read_text())["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            created = clock_ms()
            self.directory.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"name": self.name, "created_at": created}))
            return created

    def open(self) -> None:
        for partition in self.partitions:
            partition.log.open()
        extra = sorted(p.name for p in self.directory.iterdir()
                       if p.is_dir() and p.name.isdigit() and int(p.name) >= len(self.partitions))
        if extra:
            log.warning("event hub %s: ignoring data of partitions %s (not in config)", self.name, ", ".join(extra))

    def partition(self, partition_id: Any) -> Optional[Partition]:
        text = str(partition_id).strip()
        if text.isdigit() and int(text) < len(self.partitions):
            return self.partitions[int(text)]
        return None

    def route(self, partition_key: Optional[str]) -> Partition:
        if partition_key is not None:
            return self.partitions[partition_for_key(partition_key, len(self.partitions))]
        partition = self.partitions[self._next_partition % len(self.partitions)]
        self._next_partition += 1
        return partition

    def partition_ids_text(self) -> str:
        return f"0-{len(self.partitions) - 1}" if len(self.partitions) > 1 else "0"


class PublisherHandler:
    """Receives events sent to ``<hub>`` or ``<hub>/Partitions/<n>``."""

    def __init__(self, hub: EventHub, partition: Optional[Partition]) -> None:
        self.hub = hub
        self.partition = partition

    def on_message(self, link: Link, message_format: int, payload: bytes) -> Any:
        try:
            envelope = Message.parse(payload)
            events = list(iter_batch(envelope, message_format))
            batch_key = _partition_key(envelope)
            keyed = [(event, _partition_key(event) or batch_key) for event in events]
        except (DecodeError, ValueError) as exc:
            return Rejected(error=Error(condition="amqp:decode-error", description=f"Malformed message: {exc}"))
        if not keyed:
            return Accepted()
        # A batch lands in one partition, chosen by its (first) partition key.
        partition = self.partition or self.hub.route(batch_key or keyed[0][1])
        try:
            partition.append(keyed)
        except OSError as exc:
            log.error("append to %s/%s failed: %s", self.hub.name, partition.id, exc)
            return Rejected(error=Error(condition="amqp:internal-error", description=f"Could not store events: {exc}"))
        return Accepted()


def _partition_key(message: Message) -> Optional[str]:
    key = message.annotations.get(PARTITION_KEY)
    if isinstance(key, bytes):
        return key.decode("utf-8", errors="replace")
    return None if key is None else str(key)


class ConsumerHandler:
    """Streams one partition to a receiver link from its start position."""

    def __init__(self, link: OutgoingLink, partition: Partition, group: str, position: StartPosition,
                 epoch: Optional[int], runtime_metric: bool, clock_ms: Callable[[], int]) -> None:
        self.link = link
        self.partition = partition
        self.group = group
        self.epoch = epoch
        self.runtime_metric = runtime_metric
        self.clock_ms = clock_ms
        partition.log.expire()
        self.cursor = self._resolve(position)

    def _resolve(self, position: StartPosition) -> int:
        plog = self.partition.log
        if position.kind == "beginning":
            return plog.begin_sequence
        if position.kind == "latest":
            return plog.next_sequence
        if position.kind == "offset":
            return plog.seek_offset(position.value, position.inclusive)
        if position.kind == "time":
            return plog.seek_time(position.value, position.inclusive)
        return plog.clamp(position.value if position.inclusive else position.value + 1)

    def take(self, link: OutgoingLink, limit: int) -> List[Tuple[bytes, int]]:
        events = self.partition.log.read(self.cursor, limit)
        if not events:
            return []
        self.cursor = events[-1].sequence_number + 1
        if not self.runtime_metric:
            return [(event.payload, 0) for event in events]
        plog = self.partition.log
        metrics = {
            Symbol("last_enqueued_sequence_number"): Long(plog.last_sequence),
            Symbol("last_enqueued_offset"): str(plog.last_offset),
            Symbol("last_enqueued_time_utc"): Timestamp(plog.last_time),
            Symbol("runtime_info_retrieval_time_utc"): Timestamp(self.clock_ms()),
        }
        return [(insert_delivery_annotations(e.payload, e.header_len, metrics), 0) for e in events]

    def available(self, link: OutgoingLink) -> int:
        return max(0, self.partition.log.next_sequence - max(self.cursor, self.partition.log.begin_sequence))

    def wake(self) -> None:
        self.link.wake()

    def steal(self, error: Error) -> None:
        log.info("receiver %s on %s/%s/%s lost ownership", self.link.name, self.partition.hub.name,
                 self.group, self.partition.id)
        self.partition.release(self)
        self.link.detach(error)

    def on_link_closed(self, link: Link) -> None:
        self.partition.release(self)


class Broker:
    """The AMQP container: decides what each attaching link talks to."""

    container_id = "eventhubs-emulator"

    def __init__(self, config: EmulatorConfig, data_dir: Path, clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.clock_ms = clock_ms
        self.hubs: Dict[str, EventHub] = {
            hub.name.lower(): EventHub(hub, Path(data_dir) / hub.name, clock_ms) for hub in config.hubs
        }
        self.management = ManagementNode(self)

    def open(self) -> None:
        for hub in self.hubs.values():
            hub.open()

    def close(self) -> None:
        for hub in self.hubs.values():
            for partition in hub.partitions:
                partition.log.close()

    def expire(self) -> None:
        for hub in self.hubs.values():
            for partition in hub.partitions:
                partition.log.expire()

    def hub(self, name: Any) -> Optional[EventHub]:
        return self.hubs.get(str(name).lower()) if name is not None else None

    # ------------------------------------------------------------ attaching
    def on_link_attach(self, link: Link) -> None:
        if isinstance(link, IncomingLink):
            self._attach_sender(link)
        else:
            self._attach_receiver(link)  # type: ignore[arg-type]

    def _attach_sender(self, link: IncomingLink) -> None:
        path = entity_path(link.target_address)
        if is_node_address(path):
            link.handler = self.management.request_handler(path)
            return
        parts = path.split("/")
        hub = self._require_hub(parts[0], link.target_address)
        partition = None
        if len(parts) == 3 and parts[1].lower() == "partitions":
            partition = self._require_partition(hub, parts[2])
        elif len(parts) != 1:
            raise LinkError(NOT_FOUND, f"Unsupported send address '{link.target_address}'. "
                                       "Use '<hub>' or '<hub>/Partitions/<id>'.")
        link.handler = PublisherHandler(hub, partition)

    def _attach_receiver(self, link: OutgoingLink) -> None:
        path = entity_path(link.source_address)
        if is_node_address(path):
            link.handler = ReplyQueue(path)
            return
        parts = path.split("/")
        if len(parts) != 5 or parts[1].lower() != "consumergroups" or parts[3].lower() != "partitions":
            raise LinkError(NOT_FOUND, f"Unsupported receive address '{link.source_address}'. "
                                       "Use '<hub>/ConsumerGroups/<group>/Partitions/<id>'.")
        hub = self._require_hub(parts[0], link.source_address)
        group = hub.consumer_groups.get(parts[2].lower())
        if group is None:
            raise LinkError(NOT_FOUND, (
                f"The messaging entity '{self.config.namespace}:eventhub:{hub.name}/consumergroups/{parts[2]}' "
                f"could not be found: consumer group '{parts[2]}' does not exist in event hub '{hub.name}' "
                f"(configured: {', '.join(hub.config.consumer_groups)})."))
        partition = self._require_partition(hub, parts[4])
        position = parse_selector(selector_from_source_filter(link.source.filter if link.source else None))
        epoch = _epoch(link.properties)
        runtime_metric = RUNTIME_METRIC in link.desired_capabilities
        consumer = ConsumerHandler(link, partition, group, position, epoch, runtime_metric, self.clock_ms)
        partition.claim(consumer)
        partition.consumers[consumer] = None
        if runtime_metric:
            link.offered_capabilities = [RUNTIME_METRIC]
        link.handler = consumer
        log.info("receiver %s attached to %s/%s/%s at sequence %d (epoch %s)", link.name, hub.name, group,
                 partition.id, consumer.cursor, epoch)

    def _require_hub(self, name: str, address: Optional[str]) -> EventHub:
        hub = self.hub(name)
        if hub is None:
            raise LinkError(NOT_FOUND, (
                f"The messaging entity '{self.config.namespace}:eventhub:{name}' could not be found "
                f"(address '{address}'). Configured event hubs: {', '.join(h.name for h in self.hubs.values())}."))
        return hub

    @staticmethod
    def _require_partition(hub: EventHub, partition_id: str) -> Partition:
        partition = hub.partition(partition_id)
        if partition is None:
            raise LinkError(NOT_FOUND, (
                f"Partition '{partition_id}' does not exist in event hub '{hub.name}' "
                f"(valid partition ids: {hub.partition_ids_text()})."))
        return partition


def _epoch(properties: Dict[Any, Any]) -> Optional[int]:
    for key, value in properties.items():
        if str(key) == EPOCH and value is not None:
            return int(value)
    return None
