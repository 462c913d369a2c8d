"""Names of the storage containers, queues and Cosmos containers the app owns.

The local stack creates them on `make up`; the Bicep template creates the same in Azure.
"""
from __future__ import annotations

# Blob containers: the raw event archive, rejected events with their reasons, trained models,
# the Parquet archive the retrain job reads, and the BI export (`python -m ops export --to-blob`,
# docs/export.md). (Event Hubs checkpoints live in the host's own azure-webjobs-eventhub
# container, which the host creates.)
RAW_ARCHIVE = "raw"
DEAD_LETTER = "deadletter"
MODELS = "models"
PARQUET_ARCHIVE = "parquet"
EXPORTS = "exports"
BLOB_CONTAINERS = (RAW_ARCHIVE, DEAD_LETTER, MODELS, PARQUET_ARCHIVE, EXPORTS)

# Storage queues the app listens on: the simulation's shoppers (their next steps, their responses).
SIMULATION_ACTIONS = "simulation-actions"
SIMULATION_RESPONSES = "simulation-responses"
QUEUES: tuple[str, ...] = (SIMULATION_ACTIONS, SIMULATION_RESPONSES)

# Cosmos DB containers: name -> partition key path, chosen for the access paths:
# catalog documents are read whole into the offers function's cache; a profile is one
# point read per offer request; offer statistics are one document per offer and hour;
# traffic is one document per hour and hub partition, read by hour (the dashboard's window).
PRODUCTS = "products"
OFFERS = "offers"
USERS = "users"
PROFILES = "profiles"
OFFER_STATS = "offerstats"
TRAFFIC_STATS = "trafficstats"
COSMOS_CONTAINERS: dict[str, str] = {
    PRODUCTS: "/id",
    OFFERS: "/id",
    USERS: "/id",
    PROFILES: "/userId",
    OFFER_STATS: "/offerId",
    TRAFFIC_STATS: "/hour",
}
