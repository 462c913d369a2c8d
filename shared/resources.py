"""Names of the storage containers, queues and Cosmos containers the app owns.

The local stack creates them on `make up`; the Bicep template creates the same in Azure.
"""
from __future__ import annotations

# Blob containers: the raw event archive, rejected events with their reasons, and trained models.
RAW_ARCHIVE = "raw"
DEAD_LETTER = "deadletter"
MODELS = "models"
BLOB_CONTAINERS = (RAW_ARCHIVE, DEAD_LETTER, MODELS)

# Storage queues the app listens on (added by the areas that own them).
QUEUES: tuple[str, ...] = ()

# Cosmos DB containers: name -> partition key path (added by the areas that own them).
COSMOS_CONTAINERS: dict[str, str] = {}
