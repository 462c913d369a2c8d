"""Cosmos DB for NoSQL client (the Cosmos DB server locally, an account in Azure)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from azure.core.pipeline.transport import RequestsTransport
from azure.cosmos import CosmosClient, DatabaseProxy

from .identity import credential
from .settings import Connection


def _parse(connection_string: str) -> tuple[str, str]:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    try:
        return parts["AccountEndpoint"], parts["AccountKey"]
    except KeyError as missing:
        raise ValueError(f"Cosmos DB connection string has no {missing.args[0]}") from None


def client_from_connection_string(connection_string: str, **options: Any) -> CosmosClient:
    """A client for an account key connection string.

    Endpoint discovery is off: the local server (and a single-region account) has no
    regional endpoints to discover, and discovery would redirect to unreachable hosts.
    """
    endpoint, key = _parse(connection_string)
    return CosmosClient(endpoint, credential=key, enable_endpoint_discovery=False,
                        connection_verify=not endpoint.startswith("http://"),
                        transport=_transport(), **options)


def _transport() -> RequestsTransport:
    # Without this, `requests` scans the environment for proxies and reads ~/.netrc on
    # every call: about half the client CPU of a point read in the Functions host.
    return RequestsTransport(use_env_settings=False)


@lru_cache(maxsize=None)
def cosmos_client(connection: Connection) -> CosmosClient:
    """The app's one CosmosClient for this connection, created on first use and reused."""
    if connection.connection_string:
        return client_from_connection_string(connection.connection_string)
    return CosmosClient(connection.endpoint, credential=credential(connection.client_id),
                        transport=_transport())


def database(connection: Connection, name: str) -> DatabaseProxy:
    return cosmos_client(connection).get_database_client(name)
