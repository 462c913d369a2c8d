"""Shared Azure Storage clients (async SDK), one per connection, closed at shutdown.

Also the in-process "queue watcher": when a function of this host writes to a queue,
the listeners of that queue poll at once instead of waiting out their backoff, as the
WebJobs SDK's SharedQueueWatcher does.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict

from azure.core.exceptions import ResourceExistsError
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from .settings import Connection, resolve_connection

_queue_services: dict[str, QueueServiceClient] = {}
_blob_services: dict[str, BlobServiceClient] = {}
_credentials: list = []
_watchers: dict[str, set[asyncio.Event]] = defaultdict(set)


def _make(kind, connection: Connection):
    if connection.connection_string:
        return kind.from_connection_string(connection.connection_string)
    credential = connection.credential()
    _credentials.append(credential)
    return kind(connection.endpoint, credential=credential)


def queue_service(connection_name: str | None) -> QueueServiceClient:
    connection = resolve_connection(connection_name, "queue")
    if connection.name not in _queue_services:
        _queue_services[connection.name] = _make(QueueServiceClient, connection)
    return _queue_services[connection.name]


def blob_service(connection_name: str | None = None) -> BlobServiceClient:
    connection = resolve_connection(connection_name, "blob")
    if connection.name not in _blob_services:
        _blob_services[connection.name] = _make(BlobServiceClient, connection)
    return _blob_services[connection.name]


async def ensure_queue(client) -> None:
    try:
        await client.create_queue()
    except ResourceExistsError:
        pass


async def ensure_container(client) -> None:
    try:
        await client.create_container()
    except ResourceExistsError:
        pass


def _key(queue_client) -> str:
    return queue_client.url.split("?")[0].rstrip("/").lower()


def watch(queue_client, event: asyncio.Event) -> None:
    _watchers[_key(queue_client)].add(event)


def notify(queue_client) -> None:
    for event in _watchers.get(_key(queue_client), ()):
        event.set()


async def close_all() -> None:
    clients = list(_queue_services.values()) + list(_blob_services.values()) + _credentials
    _queue_services.clear()
    _blob_services.clear()
    _credentials.clear()
    for client in clients:
        try:
            await client.close()
        except Exception:
            pass
