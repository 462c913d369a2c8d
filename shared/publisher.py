"""Publishes events to the activity hub, each user's events in order in one partition."""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Optional, Sequence

from azure.eventhub import EventData, EventHubProducerClient
from azure.eventhub.exceptions import EventHubError

from . import eventhubs
from .events import Event
from .settings import Settings

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json"
# A request's sends share this deadline; the SDK stops retrying a send at it. Opening the
# link and the SDK's reconnect path retry on the producer's own settings (default 3 retries,
# 0.8 s doubling: ~12 s to give up on a refused connection, measured), so failures take longer.
SEND_TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 5


class Unavailable(Exception):
    """Event Hubs did not take the events (after retries); some users' events may be on the hub."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS):
        super().__init__(message)
        self.retry_after = retry_after


def by_user(events: Iterable[Event]) -> dict[str, list[Event]]:
    """Events grouped by user (= partition key), users in order of first appearance, order kept."""
    groups: dict[str, list[Event]] = {}
    for event in events:
        groups.setdefault(event.user_id, []).append(event)
    return groups


def send(producer: EventHubProducerClient, events: Sequence[Event],
         timeout: float = SEND_TIMEOUT_SECONDS, keyed: bool = True) -> None:
    """Send events with partition key = userId: one batch per user, split only when it fills.

    Each user's batches go out one after the other, so that user's events keep their order
    in the partition. Unkeyed (`keyed=False`: events whose order does not matter, such as the
    Personalizer-compatible API's), they go out in as few batches as fit, spread over the
    partitions by the service. Raises Unavailable when Event Hubs does not accept a batch within
    the deadline; batches sent before that stay sent (a client's retry resends the same event ids).
    """
    deadline = time.monotonic() + timeout
    sent = 0
    groups = by_user(events).items() if keyed else [(None, list(events))]
    try:
        for user_id, user_events in groups:
            for batch in _batches(producer, user_id, user_events):
                producer.send_batch(batch, timeout=max(deadline - time.monotonic(), 0.1))
                sent += len(batch)
    except EventHubError as error:
        log.warning("event hubs refused events after %s of %s were sent: %s", sent, len(events), error)
        raise Unavailable(f"{type(error).__name__}: {error}") from error


def _batches(producer: EventHubProducerClient, user_id: Optional[str], user_events: Sequence[Event]):
    batch = producer.create_batch(partition_key=user_id)
    for event in user_events:
        data = EventData(event.to_json())
        data.content_type = CONTENT_TYPE
        try:
            batch.add(data)
        except ValueError:  # full: ship it and start the next one (an event alone always fits)
            yield batch
            batch = producer.create_batch(partition_key=user_id)
            batch.add(data)
    yield batch


def for_settings(config: Settings, keyed: bool = True) -> Callable[[Sequence[Event]], None]:
    """The publish port for the app's activity hub (the shared producer, created lazily)."""
    return lambda events: send(eventhubs.producer(config.eventhub, config.eventhub_name), events, keyed=keyed)
