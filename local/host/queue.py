"""Azure Storage queue trigger and queue output binding.

Follows the Storage extension (v5): messages are fetched in batches of `batchSize`
while fewer than `newBatchThreshold` are in flight; empty polls back off
exponentially (randomised) from 100 ms up to `maxPollingInterval`. A fetched message
stays invisible for 10 minutes and that lease is renewed every 5 while the function
runs. Success deletes it; failure makes it visible again after `visibilityTimeout`;
a failure at `maxDequeueCount` dequeues, or a body that is not base64 when
`messageEncoding` is base64, moves it to `<queue>-poison`.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from azure.core.exceptions import ResourceNotFoundError
from azure.functions.meta import Datum

from . import storage
from .invoker import Invoker
from .loader import FunctionSpec
from .settings import HostError, parse_int, parse_timespan, section

log = logging.getLogger("Host.Queues")
LEASE_SECONDS = 600  # the SDK's fetch visibility; renewed at half-time
MIN_POLL = 0.1
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    base64: bool = True

    @classmethod
    def from_host_json(cls, host_json: dict) -> "QueueOptions":
        q = section(host_json, "extensions", "queues") or {}
        get = lambda key: section(q, key)  # noqa: E731
        batch = parse_int(get("batchSize") or 16, "queues.batchSize", 1, 32)
        threshold = get("newBatchThreshold")
        poll = parse_timespan(get("maxPollingInterval"), "queues.maxPollingInterval") \
            if get("maxPollingInterval") is not None else 60.0
        if poll < MIN_POLL:
            raise HostError("queues.maxPollingInterval must be at least 00:00:00.1")
        encoding = str(get("messageEncoding") or "base64").lower()
        if encoding not in ("base64", "none"):
            raise HostError(f"queues.messageEncoding must be base64 or none, got {encoding!r}")
        return cls(
            batch_size=batch,
            new_batch_threshold=(parse_int(threshold, "queues.newBatchThreshold", 0)
                                 if threshold is not None else batch // 2),
            max_polling_interval=poll,
            visibility_timeout=(parse_timespan(get("visibilityTimeout"), "queues.visibilityTimeout")
                                if get("visibilityTimeout") is not None else 0.0),
            max_dequeue_count=parse_int(get("maxDequeueCount") or 5, "queues.maxDequeueCount", 1),
            base64=encoding == "base64",
        )


def queue_name(spec: FunctionSpec, binding: dict) -> str:
    name = str(binding.get("queueName") or "")
    if not _QUEUE_NAME.match(name):
        raise HostError(f"function '{spec.name}': '{name}' is not a valid queue name (3-63 lowercase "
                        "letters, digits and single dashes)")
    return name


def _iso(value: Optional[datetime]) -> Optional[Datum]:
    if value is None:
        return None
    return Datum(value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00"), "string")


def message_input(text_or_bytes, message_id: str, dequeue_count: int, inserted=None, expires=None,
                  next_visible=None, pop_receipt: str = "") -> tuple[Datum, dict]:
    """The trigger datum and metadata the host sends the worker for one queue message."""
    if isinstance(text_or_bytes, bytes):
        try:
            datum = Datum(text_or_bytes.decode("utf-8"), "string")
        except UnicodeDecodeError:
            datum = Datum(text_or_bytes, "bytes")
    else:
        datum = Datum(text_or_bytes, "string")
    metadata = {
        "Id": Datum(message_id, "string"),
        "DequeueCount": Datum(dequeue_count, "int"),
        "ExpirationTime": _iso(expires),
        "InsertionTime": _iso(inserted),
        "NextVisibleTime": _iso(next_visible),
        "PopReceipt": Datum(pop_receipt, "string"),
        "QueueTrigger": Datum(datum.value if datum.type == "string" else "", "string"),
    }
    return datum, {k: v for k, v in metadata.items() if v is not None}


def admin_input(spec: FunctionSpec, text: str) -> tuple[Datum, dict]:
    now = datetime.now(timezone.utc)
    return message_input(text, str(uuid.uuid4()), 1, now, now + timedelta(days=7), now)


class QueueListener:
    def __init__(self, spec: FunctionSpec, invoker: Invoker, options: QueueOptions):
        self.spec, self.invoker, self.options = spec, invoker, options
        self.name = queue_name(spec, spec.trigger)
        service = storage.queue_service(spec.trigger.get("connection"))
        self.queue = service.get_queue_client(self.name)
        self.poison = service.get_queue_client(f"{self.name}-poison")
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self.poller: Optional[asyncio.Task] = None

    def describe(self) -> str:
        return f"queueTrigger ({self.name})"

    async def start(self) -> None:
        await storage.ensure_queue(self.queue)
        storage.watch(self.queue, self.wake)
        self.poller = asyncio.create_task(self._poll(), name=f"queue:{self.spec.name}")

    def stop_accepting(self) -> None:
        self.stopping.set()
        self.wake.set()

    def pending(self) -> set[asyncio.Task]:
        return set(self.tasks) | ({self.poller} if self.poller else set())

    async def _poll(self) -> None:
        delay = MIN_POLL
        while not self.stopping.is_set():
            if len(self.tasks) > self.options.new_batch_threshold:
                await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = [m async for m in self.queue.receive_messages(
                    messages_per_page=self.options.batch_size, max_messages=self.options.batch_size,
                    visibility_timeout=LEASE_SECONDS)]
            except Exception as error:
                log.warning("polling queue '%s' failed: %s", self.name, error)
                messages = []
            for message in messages:
                # Fetched while stopping: hand it back at once rather than at the end of its lease.
                work = self._release(message, message.pop_receipt) if self.stopping.is_set() \
                    else self._process(message)
                task = asyncio.create_task(work)
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            if messages:
                delay = MIN_POLL
                continue
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), delay * random.uniform(0.8, 1.2))
                delay = MIN_POLL
            except asyncio.TimeoutError:
                delay = min(self.options.max_polling_interval, delay * 2)

    async def _process(self, message) -> None:
        receipt = {"pop": message.pop_receipt}
        try:
            if message.dequeue_count > self.options.max_dequeue_count:
                await self._to_poison(message, receipt)
                return
            body = message.content if isinstance(message.content, (str, bytes)) else ""
            if self.options.base64:
                try:
                    body = base64.b64decode(body, validate=True)
                except (binascii.Error, ValueError):
                    log.error("Message %s on queue '%s' is not valid base64 (messageEncoding is base64); "
                              "moving it to '%s-poison'", message.id, self.name, self.name)
                    await self._to_poison(message, receipt, decoding_failed=True)
                    return
            datum, metadata = message_input(
                body, message.id, message.dequeue_count, message.inserted_on, message.expires_on,
                message.next_visible_on, message.pop_receipt)
            renewer = asyncio.create_task(self._renew(message, receipt))
            try:
                result = await self.invoker.invoke(self.spec, datum, metadata)
            except asyncio.CancelledError:  # shutdown gave up waiting: make it visible again now
                await asyncio.shield(self._release(message, receipt["pop"]))
                raise
            finally:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
            if result.succeeded:
                await self.queue.delete_message(message.id, receipt["pop"])
            elif message.dequeue_count >= self.options.max_dequeue_count:
                await self._to_poison(message, receipt)
            else:
                await self.queue.update_message(message.id, receipt["pop"],
                                                visibility_timeout=int(self.options.visibility_timeout))
        except Exception:
            log.exception("completing message %s on queue '%s' failed", message.id, self.name)

    async def _release(self, message, pop_receipt: str) -> None:
        try:
            await self.queue.update_message(message.id, pop_receipt, visibility_timeout=0)
        except Exception as error:
            log.warning("could not release message %s on queue '%s': %s", message.id, self.name, error)

    async def _renew(self, message, receipt: dict) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 2)
            updated = await self.queue.update_message(message.id, receipt["pop"],
                                                      visibility_timeout=LEASE_SECONDS)
            receipt["pop"] = updated.pop_receipt

    async def _to_poison(self, message, receipt: dict, decoding_failed: bool = False) -> None:
        if not decoding_failed:
            log.warning("Message has reached MaxDequeueCount of %d. Moving message to queue '%s-poison'.",
                        self.options.max_dequeue_count, self.name)
        await _send(self.poison, message.content)
        await self.queue.delete_message(message.id, receipt["pop"])


async def _send(queue_client, content: str) -> None:
    try:
        await queue_client.send_message(content)
    except ResourceNotFoundError:
        await storage.ensure_queue(queue_client)
        await queue_client.send_message(content)
    storage.notify(queue_client)


class QueueOutput:
    """Writes a function's queue output after it succeeded (the `queue` binding)."""

    def __init__(self, options: QueueOptions):
        self.options = options

    def check(self, spec: FunctionSpec, binding: dict) -> None:
        queue_name(spec, binding)
        storage.queue_service(binding.get("connection"))

    async def __call__(self, spec: FunctionSpec, binding: dict, datum: Datum) -> None:
        client = storage.queue_service(binding.get("connection")).get_queue_client(queue_name(spec, binding))
        for payload in _messages(datum):
            raw = payload.encode("utf-8") if isinstance(payload, str) else payload
            if self.options.base64:
                content = base64.b64encode(raw).decode("ascii")
            else:
                content = raw.decode("utf-8")
            await _send(client, content)


def _messages(datum: Datum) -> list:
    if datum.type in ("string", "bytes"):
        return [datum.value]
    if datum.type == "json":
        value = json.loads(datum.value)
        if isinstance(value, list):
            return [v if isinstance(v, str) else json.dumps(v) for v in value]
        return [datum.value]
    if datum.type in ("int", "double"):
        return [str(datum.value)]
    raise TypeError(f"a queue output cannot take a value of type {datum.type}")
