"""Redis client for precomputed affinities (redis-server locally, Azure Cache for Redis in Azure)."""
from __future__ import annotations

from functools import lru_cache

import redis

TIMEOUT_SECONDS = 2.0


@lru_cache(maxsize=None)
def redis_client(url: str) -> redis.Redis:
    """The app's one connection pool for this URL; short timeouts so a slow cache cannot stall offers."""
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS,
                                socket_connect_timeout=TIMEOUT_SECONDS, decode_responses=True)
