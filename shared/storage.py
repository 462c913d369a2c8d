"""Blob and Queue storage clients (Azurite locally, a storage account in Azure)."""
from __future__ import annotations

from functools import lru_cache

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient, TextBase64EncodePolicy

from .identity import credential
from .settings import Connection


@lru_cache(maxsize=None)
def blob_service(connection: Connection) -> BlobServiceClient:
    """The app's one BlobServiceClient for this connection, created on first use and reused."""
    if connection.connection_string:
        return BlobServiceClient.from_connection_string(connection.connection_string)
    return BlobServiceClient(connection.endpoint, credential=credential(connection.client_id))


@lru_cache(maxsize=None)
def queue_service(connection: Connection) -> QueueServiceClient:
    """The app's one QueueServiceClient; messages are base64 text, as the Functions host expects."""
    policy = TextBase64EncodePolicy()
    if connection.connection_string:
        return QueueServiceClient.from_connection_string(connection.connection_string,
                                                         message_encode_policy=policy)
    endpoint = connection.queue_endpoint or connection.endpoint.replace(".blob.", ".queue.")
    return QueueServiceClient(endpoint, credential=credential(connection.client_id),
                              message_encode_policy=policy)
