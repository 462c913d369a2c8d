"""Composition: wires the real adapters to the domain's ports for the function app."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from . import cache, cosmos, eventhubs, resources, settings, storage


@lru_cache(maxsize=1)
def app_settings() -> settings.Settings:
    return settings.load()


def health_probes(config: settings.Settings) -> dict[str, Callable[[], object]]:
    """One real call per dependency, each within what the app's identity may do."""
    return {
        "blob": lambda: storage.blob_service(config.storage)
        .get_container_client(resources.RAW_ARCHIVE).get_container_properties(),
        "queue": lambda: next(iter(storage.queue_service(config.storage)
                                   .list_queues(results_per_page=1).by_page()), None),
        "cosmos": lambda: cosmos.database(config.cosmos, config.cosmos_database).read(),
        "eventhubs": lambda: eventhubs.producer(config.eventhub, config.eventhub_name)
        .get_eventhub_properties(),
        "redis": lambda: cache.redis_client(config.redis_url).ping(),
    }
