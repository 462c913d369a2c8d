"""Event Hubs producer (the project's emulator locally, a namespace in Azure)."""
from __future__ import annotations

from functools import lru_cache

from azure.eventhub import EventHubProducerClient

from .identity import credential
from .settings import Connection


# Bounded retries: a request waiting on an unreachable hub answers 503 within seconds
# instead of the SDK's default ~12 s, and the client retries with Retry-After.
RETRIES = {"retry_total": 2, "retry_backoff_factor": 0.5, "retry_backoff_max": 4}


@lru_cache(maxsize=None)
def producer(connection: Connection, eventhub_name: str) -> EventHubProducerClient:
    """The app's one producer per hub; it keeps its AMQP connection open between sends."""
    if connection.connection_string:
        return EventHubProducerClient.from_connection_string(
            connection.connection_string, eventhub_name=eventhub_name, **RETRIES)
    return EventHubProducerClient(connection.endpoint, eventhub_name,
                                  credential=credential(connection.client_id), **RETRIES)
