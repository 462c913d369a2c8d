"""Blob and Queue storage clients (Azurite locally, a storage account in Azure)."""
from __future__ import annotations

from functools import lru_cache

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from .identity import credential
from .settings import Connection


@lru_cache(maxsize=None)
def blob_service(connection: Connection) -> BlobServiceClient:
    """The app's one BlobServiceClient for this connection, created on first use and reused."""
    if connection.connection_string:
        return BlobServiceClient.from_connection_string(connection.connection_string)
    return BlobServiceClient(connection.endpoint, credential=credential(connection.client_id))


def _queue_endpoint(connection: Connection) -> str:
    return connection.queue_endpoint or connection.endpoint.replace(".blob.", ".queue.")


@lru_cache(maxsize=None)
def queue_service(connection: Connection) -> QueueServiceClient:
    """The app's one QueueServiceClient (for listing and managing queues)."""
    if connection.connection_string:
        return QueueServiceClient.from_connection_string(connection.connection_string)
    return QueueServiceClient(_queue_endpoint(connection), credential=credential(connection.client_id))


@lru_cache(maxsize=None)
def queue_client(connection: Connection, name: str) -> QueueClient:
    """The app's one client of a queue; messages are base64 text, as the Functions host expects
    (a service client's get_queue_client would not pass the encoding on)."""
    policy = TextBase64EncodePolicy()
    if connection.connection_string:
        return QueueClient.from_connection_string(connection.connection_string, name,
                                                  message_encode_policy=policy)
    return QueueClient(_queue_endpoint(connection), name, credential=credential(connection.client_id),
                       message_encode_policy=policy)
