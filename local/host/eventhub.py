"""Event Hubs trigger on the async EventHubConsumerClient with a blob checkpoint store.

Partitions are balanced across host instances by the SDK through ownership blobs in
container `azure-webjobs-eventhub` of AzureWebJobsStorage, which also holds the
checkpoints (the same layout as the Functions extension). Batches of up to
`maxEventBatchSize` are passed as the extension passes them to the Python worker
(`dataType` binary: bytes; string: text; unset: JSON, as the host does).

A checkpoint is written only after the function succeeded (every
`batchCheckpointFrequency` batches). A failed batch is retried in-process with
backoff and the partition does not move past it; after a restart it comes again from
the last checkpoint. With a retry policy (`@app.retry`) the policy decides, and once
it is exhausted the batch is checkpointed and skipped, as in Azure.
"""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Optional

from azure.eventhub import TransportType
from azure.eventhub.aio import EventHubConsumerClient
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
from azure.functions.meta import Datum

from . import storage
from .invoker import Invoker, invoke_with_retries
from .loader import FunctionSpec
from .settings import HostError, parse_int, parse_timespan, resolve_connection, section

log = logging.getLogger("Host.EventHubs")
CONTAINER = "azure-webjobs-eventhub"
BACKOFF = (1.0, 30.0)  # first and longest wait between in-process retries of a failed batch


class EventHubOptions(SimpleNamespace):
    @classmethod
    def from_host_json(cls, host_json: dict) -> "EventHubOptions":
        eh = section(host_json, "extensions", "eventHubs") or {}
        get = lambda *key: section(eh, *key)  # noqa: E731
        offset_type = str(get("initialOffsetOptions", "type") or "fromStart").lower()
        start: Any = {"fromstart": "-1", "fromend": "@latest"}.get(offset_type)
        if offset_type == "fromenqueuedtime":
            text = str(get("initialOffsetOptions", "enqueuedTimeUtc") or "")
            try:
                start = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise HostError("eventHubs.initialOffsetOptions.enqueuedTimeUtc must be an ISO time when "
                                "type is fromEnqueuedTime") from None
            if start.tzinfo is None:
                start = start.replace(tzinfo=timezone.utc)
        elif start is None:
            raise HostError("eventHubs.initialOffsetOptions.type must be fromStart, fromEnd or fromEnqueuedTime")
        retry = get("clientRetryOptions") or {}
        if parse_int(get("minEventBatchSize") or 1, "eventHubs.minEventBatchSize", 1) > 1:
            log.warning("eventHubs.minEventBatchSize/maxWaitTime are not emulated: batches are dispatched "
                        "as soon as events arrive")
        return cls(
            max_batch=parse_int(get("maxEventBatchSize") or 100, "eventHubs.maxEventBatchSize", 1),
            checkpoint_every=parse_int(get("batchCheckpointFrequency") or 1,
                                       "eventHubs.batchCheckpointFrequency", 1),
            prefetch=parse_int(get("prefetchCount") or 300, "eventHubs.prefetchCount", 0),
            start=start,
            websockets=str(get("transportType") or "amqpTcp").lower() == "amqpwebsockets",
            custom_endpoint=get("customEndpointAddress"),
            retry_mode=str(section(retry, "mode") or "exponential").lower(),
            retry_total=parse_int(section(retry, "maximumRetries") or 3, "clientRetryOptions.maximumRetries", 0),
            retry_delay=parse_timespan(section(retry, "delay") or "00:00:00.8", "clientRetryOptions.delay"),
            retry_max=parse_timespan(section(retry, "maximumDelay") or "00:01:00", "clientRetryOptions.maximumDelay"),
        )


def _body(event) -> bytes:
    body = event.body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    try:
        return b"".join(bytes(part) for part in body)
    except TypeError:
        return json.dumps(body, default=str).encode("utf-8")


def _text(value) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value


def _time(value: Optional[datetime]) -> Optional[str]:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _system_properties(event) -> dict:
    offset = event.offset
    return {
        "x-opt-sequence-number": event.sequence_number, "x-opt-offset": offset,
        "x-opt-enqueued-time": _time(event.enqueued_time), "x-opt-partition-key": _text(event.partition_key),
        "SequenceNumber": event.sequence_number,
        # The worker reads Offset as an int (cardinality many); a non-numeric offset is left out.
        "Offset": int(offset) if isinstance(offset, str) and offset.lstrip("-").isdigit() else None,
        "PartitionKey": _text(event.partition_key), "EnqueuedTimeUtc": _time(event.enqueued_time),
    }


def _properties(event) -> dict:
    return {str(_text(k)): _text(v) for k, v in (event.properties or {}).items()}


class BindingError(Exception):
    pass


def event_input(spec: FunctionSpec, events: list, partition: dict) -> tuple[Datum, dict]:
    """The trigger datum and metadata the host sends the worker for these events."""
    many = str(spec.trigger.get("cardinality") or "one").lower() == "many"
    data_type = str(spec.trigger.get("dataType") or "").lower()
    bodies = [_body(e) for e in events]
    context = Datum(json.dumps(partition), "json")
    if not many:
        event, body = events[0], bodies[0]
        datum = Datum(body, "bytes") if data_type == "binary" else Datum(body.decode("utf-8", "replace"), "string")
        system = _system_properties(event)
        metadata = {
            "PartitionContext": context, "SystemProperties": Datum(json.dumps(system, default=str), "json"),
            "Properties": Datum(json.dumps(_properties(event), default=str), "json"),
            "EnqueuedTimeUtc": Datum(system["EnqueuedTimeUtc"], "string"),
            "SequenceNumber": Datum(event.sequence_number, "int"),
            "Offset": Datum(str(event.offset), "string"),
        }
        if event.partition_key is not None:
            metadata["PartitionKey"] = Datum(_text(event.partition_key), "string")
        return datum, metadata
    if data_type == "binary":
        datum = Datum(SimpleNamespace(bytes=bodies), "collection_bytes")
    elif data_type == "string":
        datum = Datum(SimpleNamespace(string=[b.decode("utf-8", "replace") for b in bodies]), "collection_string")
    else:
        try:
            datum = Datum(json.dumps([json.loads(b) for b in bodies]), "json")
        except ValueError as error:
            raise BindingError(
                f"an event is not valid JSON ({error}); the host JSON-deserializes events when the trigger "
                "has no dataType: set data_type='binary' or 'string' on the trigger") from None
    systems = [_system_properties(e) for e in events]
    metadata = {
        "PartitionContext": context,
        "SystemPropertiesArray": Datum(json.dumps(systems, default=str), "json"),
        "PropertiesArray": Datum(json.dumps([_properties(e) for e in events], default=str), "json"),
        "EnqueuedTimeUtcArray": Datum(json.dumps([s["EnqueuedTimeUtc"] for s in systems]), "json"),
        "SequenceNumberArray": Datum(json.dumps([e.sequence_number for e in events]), "json"),
        "OffsetArray": Datum(json.dumps([str(e.offset) for e in events]), "json"),
        "PartitionKeyArray": Datum(json.dumps([_text(e.partition_key) for e in events]), "json"),
    }
    return datum, metadata


def admin_input(spec: FunctionSpec, text: str) -> tuple[Datum, dict]:
    raise HostError("the dev host cannot run Event Hubs functions through the admin API")


class EventHubListener:
    def __init__(self, spec: FunctionSpec, invoker: Invoker, options: EventHubOptions):
        self.spec, self.invoker, self.options = spec, invoker, options
        trigger = spec.trigger
        self.connection = resolve_connection(trigger.get("connection"), "eventhubs", default="EventHub")
        self.hub = trigger.get("eventHubName") or self._entity_path()
        if not self.hub:
            raise HostError(f"function '{spec.name}': no event hub name (event_hub_name, or EntityPath "
                            "in the connection string)")
        self.group = trigger.get("consumerGroup") or "$Default"
        self.many = str(trigger.get("cardinality") or "one").lower() == "many"
        self.stopping = asyncio.Event()
        self.closed = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self.batches: dict[str, int] = {}
        self.client: Optional[EventHubConsumerClient] = None
        self.receiver: Optional[asyncio.Task] = None
        self.store: Optional[BlobCheckpointStore] = None
        if spec.retry is None:
            log.warning("Function '%s': without a retry policy the Azure host checkpoints a failed batch and "
                        "moves on; this host retries it until it succeeds. Declare @app.retry(strategy="
                        "\"exponential_backoff\", max_retry_count=\"-1\", ...) to get that in Azure too.",
                        spec.name)

    def _entity_path(self) -> Optional[str]:
        parts = dict(p.split("=", 1) for p in (self.connection.connection_string or "").split(";") if "=" in p)
        return {k.lower(): v for k, v in parts.items()}.get("entitypath")

    def describe(self) -> str:
        return f"eventHubTrigger ({self.hub}, consumer group {self.group}, cardinality {'many' if self.many else 'one'})"

    async def start(self) -> None:
        storage_connection = resolve_connection(None, "blob")
        await storage.ensure_container(storage.blob_service().get_container_client(CONTAINER))
        if storage_connection.connection_string:
            store = BlobCheckpointStore.from_connection_string(storage_connection.connection_string, CONTAINER)
        else:
            store = BlobCheckpointStore(storage_connection.endpoint, CONTAINER,
                                        credential=storage_connection.credential())
        self.store = store
        o = self.options
        common = dict(
            consumer_group=self.group, eventhub_name=self.hub, checkpoint_store=store,
            # The .NET processor's intervals (the SDK's are 30 s / 180 s). Greedy: a host that
            # restarts after a crash takes every expired partition back in one cycle instead of
            # one per cycle, so a local restart recovers in ~30 s, not minutes.
            load_balancing_interval=10, partition_ownership_expiration_interval=30,
            load_balancing_strategy="greedy",
            retry_total=o.retry_total, retry_backoff_factor=o.retry_delay, retry_backoff_max=o.retry_max,
            retry_mode=o.retry_mode,
            transport_type=TransportType.AmqpOverWebsocket if o.websockets else TransportType.Amqp,
        )
        if o.custom_endpoint:
            common["custom_endpoint_address"] = o.custom_endpoint
        if self.connection.connection_string:
            self.client = EventHubConsumerClient.from_connection_string(self.connection.connection_string, **common)
        else:
            self.client = EventHubConsumerClient(self.connection.endpoint, credential=self.connection.credential(),
                                                 **common)
        self.receiver = asyncio.create_task(self.client.receive_batch(
            self._on_batch, max_batch_size=o.max_batch, prefetch=o.prefetch, starting_position=o.start,
            on_error=self._on_error), name=f"eventhub:{self.spec.name}")

    async def _on_error(self, context, error: Exception) -> None:
        where = f"partition {context.partition_id}" if context is not None else "load balancing"
        log.warning("Event hub '%s' (%s) for function '%s': %s", self.hub, where, self.spec.name, error)

    def stop_accepting(self) -> None:
        self.stopping.set()

    def pending(self) -> set[asyncio.Task]:
        return set(self.tasks)

    async def close(self) -> None:
        self.closed.set()
        if self.client is not None:
            await self.client.close()  # stops the partitions and releases their ownership
        if self.receiver is not None:
            self.receiver.cancel()  # else it sleeps out its load-balancing interval first
            await asyncio.gather(self.receiver, return_exceptions=True)
        if self.store is not None:
            await self.store.close()

    async def _on_batch(self, context, events: list) -> None:
        if not events:
            return
        if self.stopping.is_set():
            await self.closed.wait()  # hold the partition: nothing more is processed or checkpointed
            return
        work = asyncio.create_task(self._handle(context, events))
        self.tasks.add(work)
        work.add_done_callback(self.tasks.discard)
        # Shielded: losing the partition (or shutdown) must not cancel a running invocation.
        done = await asyncio.shield(work)
        if not done:
            await self.closed.wait()

    async def _handle(self, context, events: list) -> bool:
        """Invoke for the batch (or each event); checkpoint if done. False: stopped while failing."""
        partition = {"FullyQualifiedNamespace": context.fully_qualified_namespace,
                     "EventHubName": context.eventhub_name, "ConsumerGroup": context.consumer_group,
                     "PartitionId": context.partition_id}
        groups = [events] if self.many else [[e] for e in events]
        for group in groups:
            def make_input(group=group):
                try:
                    return event_input(self.spec, group, partition)
                except BindingError as error:
                    return error, {}

            result = await invoke_with_retries(
                self.invoker, self.spec, make_input,
                forever_backoff=None if self.spec.retry else BACKOFF, stopping=self.stopping)
            if not result.succeeded and self.spec.retry is None:
                return False  # only when stopping: leave it for the next start
            if not result.succeeded and self.stopping.is_set():
                return False
        count = self.batches.get(context.partition_id, 0) + 1
        if count >= self.options.checkpoint_every:
            await context.update_checkpoint(events[-1])
            count = 0
        self.batches[context.partition_id] = count
        return True
