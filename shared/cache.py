"""Redis client for precomputed affinities (redis-server locally, Azure Managed Redis in Azure).

One code path for both: the URL decides. A `rediss://` URL without a password is Azure's
Redis with Microsoft Entra ID authentication (access keys are disabled there): the client
signs in with a token from DefaultAzureCredential (the managed identity `client_id` in
Azure, the developer's `az login` locally) and redis-entraid renews it before it expires,
re-authenticating open connections. Any other URL (`redis://localhost:6379/0`, or one
that carries a password) is used as it is.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional
from urllib.parse import unquote, urlsplit

import redis

from .settings import Settings

TIMEOUT_SECONDS = 2.0
OPTIONS = {"socket_timeout": TIMEOUT_SECONDS, "socket_connect_timeout": TIMEOUT_SECONDS,
           "decode_responses": True}
ENTRA_SCOPE = "https://redis.azure.com/.default"
AZURE_MANAGED_REDIS_PORT = 10000  # Azure Cache for Redis (the older service) listens on 6380


def uses_entra(url: str) -> bool:
    """True when the URL is a TLS Redis without a password: sign in with a Microsoft Entra token."""
    parts = urlsplit(url)
    return parts.scheme == "rediss" and not parts.password


@lru_cache(maxsize=None)
def redis_client(url: str, client_id: Optional[str] = None) -> redis.Redis:
    """The app's one connection pool for this URL; short timeouts so a slow cache cannot stall offers."""
    if not uses_entra(url):
        return redis.Redis.from_url(url, **OPTIONS)
    parts = urlsplit(url)
    # The constructor, not from_url: only a client built with the credential provider
    # subscribes to its token renewals and re-authenticates pooled connections.
    return redis.Redis(host=parts.hostname, port=parts.port or AZURE_MANAGED_REDIS_PORT,
                       db=int(unquote(parts.path).strip("/") or 0), ssl=True,
                       credential_provider=entra_credentials(client_id), **OPTIONS)


def from_settings(config: Settings) -> redis.Redis:
    """The client for the app's REDIS_URL and REDIS_CLIENT_ID."""
    return redis_client(config.redis_url, config.redis_client_id)


def entra_credentials(client_id: Optional[str] = None):
    """A redis-py credential provider: (object id, token) for the identity, renewed in the background."""
    from redis_entraid.cred_provider import create_from_default_azure_credential

    app_kwargs = {"managed_identity_client_id": client_id} if client_id else {}
    return create_from_default_azure_credential((ENTRA_SCOPE,), app_kwargs=app_kwargs)
