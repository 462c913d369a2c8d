"""Create what the app expects to exist on the local emulators (idempotent).

Event Hubs hubs come from the emulator's config file; this creates the storage
containers, queues and the Cosmos DB database and containers named in shared.resources.
"""
from __future__ import annotations

from typing import Mapping

from azure.core.exceptions import ResourceExistsError
from azure.cosmos import PartitionKey

from shared import resources
from shared.cosmos import client_from_connection_string


def provision(settings: Mapping[str, str], database: str = "offerloop") -> None:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    blobs = BlobServiceClient.from_connection_string(settings["AzureWebJobsStorage"])
    for name in resources.BLOB_CONTAINERS:
        try:
            blobs.create_container(name)
        except ResourceExistsError:
            pass
    queues = QueueServiceClient.from_connection_string(settings["AzureWebJobsStorage"])
    for name in resources.QUEUES + tuple(f"{q}-poison" for q in resources.QUEUES):
        try:
            queues.create_queue(name)
        except ResourceExistsError:
            pass
    cosmos = client_from_connection_string(settings["CosmosDBConnection"])
    db = cosmos.create_database_if_not_exists(settings.get("COSMOS_DATABASE", database))
    for name, key in resources.COSMOS_CONTAINERS.items():
        db.create_container_if_not_exists(name, PartitionKey(path=key))
