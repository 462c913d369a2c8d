"""In-memory stand-ins for the Cosmos DB container and Blob containers the ingest adapters use.

They behave like the services where the ingest code depends on it: etags that change on
every write, 409 on creating an existing document, 412 on a stale etag, overwrite of blobs.
`fail_next` makes the next N writes fail (an outage), `on_write` runs before each write
(to simulate another writer getting there first).
"""
from __future__ import annotations

import copy
import itertools
from typing import Callable, Optional

from azure.cosmos.exceptions import (
    CosmosAccessConditionFailedError,
    CosmosResourceExistsError,
    CosmosResourceNotFoundError,
)

from shared import archive, ingest, projection_store

_etags = itertools.count(1)


class Outage(Exception):
    """A simulated infrastructure failure."""


class Written(dict):
    """What the SDK returns for a write: the response headers carry the new etag."""

    def __init__(self, etag: str):
        super().__init__()
        self.etag = etag

    def get_response_headers(self) -> dict:
        return {"etag": self.etag}


class FakeContainer:
    def __init__(self, name: str, partition_key: str):
        self.name, self.key = name, partition_key
        self.items: dict[tuple[str, str], dict] = {}
        self.calls: list[str] = []
        self.fail_next = 0
        self.on_write: Optional[Callable[[dict], None]] = None

    def _stored(self, item: dict) -> dict:
        return {**copy.deepcopy(item), "_etag": f'"{next(_etags)}"', "_rid": "r", "_ts": 1, "_self": "s",
                "_attachments": "a"}

    def _before_write(self, item: dict) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise Outage(f"{self.name} is down")
        if self.on_write is not None:
            hook, self.on_write = self.on_write, None
            hook(item)

    def query_items(self, query: str, parameters=(), enable_cross_partition_query=False):
        self.calls.append("query")
        if query == "SELECT * FROM c":
            return [copy.deepcopy(v) for v in self.items.values()]
        assert "ARRAY_CONTAINS(@ids, c.id)" in query and enable_cross_partition_query
        ids = set(parameters[0]["value"])
        return [copy.deepcopy(v) for v in self.items.values() if v["id"] in ids]

    def read_item(self, item, partition_key):
        self.calls.append("read")
        found = self.items.get((item, partition_key))
        if found is None:
            raise CosmosResourceNotFoundError(status_code=404, message="not found")
        return copy.deepcopy(found)

    def create_item(self, body, no_response=None):
        self.calls.append("create")
        self._before_write(body)
        key = (body["id"], body[self.key])
        if key in self.items:
            raise CosmosResourceExistsError(status_code=409, message="conflict")
        self.items[key] = self._stored(body)
        return Written(self.items[key]["_etag"])

    def replace_item(self, item, body, etag=None, match_condition=None, no_response=None):
        self.calls.append("replace")
        self._before_write(body)
        key = (item, body[self.key])
        if key not in self.items:
            raise CosmosResourceNotFoundError(status_code=404, message="not found")
        if etag is not None and self.items[key]["_etag"] != etag:
            raise CosmosAccessConditionFailedError(status_code=412, message="precondition failed")
        self.items[key] = self._stored(body)
        return Written(self.items[key]["_etag"])

    def upsert_item(self, body, no_response=None):
        self.calls.append("upsert")
        self._before_write(body)
        self.items[(body["id"], body[self.key])] = self._stored(body)

    def delete_item(self, item, partition_key):
        self.calls.append("delete")
        if self.items.pop((item, partition_key), None) is None:
            raise CosmosResourceNotFoundError(status_code=404, message="not found")

    def documents(self) -> dict[str, dict]:
        """The stored documents by id, without the system fields."""
        return {k[0]: {f: v for f, v in d.items() if not f.startswith("_")} for k, d in self.items.items()}


class _Download:
    def __init__(self, data: bytes):
        self.data = data

    def readall(self) -> bytes:
        return self.data


class FakeBlobContainer:
    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.uploads: list[str] = []
        self.fail_next = 0

    def upload_blob(self, name, data, overwrite=False, content_settings=None):
        if self.fail_next:
            self.fail_next -= 1
            raise Outage("blob storage is down")
        assert overwrite, "archive writes must overwrite (a redelivered batch rewrites its blob)"
        self.uploads.append(name)
        self.blobs[name] = bytes(data)

    def list_blob_names(self, name_starts_with=None):
        return [n for n in sorted(self.blobs) if not name_starts_with or n.startswith(name_starts_with)]

    def download_blob(self, name):
        return _Download(self.blobs[name])


class FakeBlobService:
    def __init__(self):
        self.containers: dict[str, FakeBlobContainer] = {}

    def get_container_client(self, name):
        return self.containers.setdefault(name, FakeBlobContainer())


class World:
    """The ingest ports over fakes, plus handles on the fakes."""

    def __init__(self, half_life_hours: float = 72.0):
        self.blob_service = FakeBlobService()
        self.archive = archive.BlobArchive(self.blob_service)
        self.profiles_container = FakeContainer("profiles", "userId")
        self.stats_container = FakeContainer("offerstats", "offerId")
        self.traffic_container = FakeContainer("trafficstats", "hour")
        self.ports = ingest.Ports(
            archive=self.archive,
            profiles=projection_store.DocumentStore(self.profiles_container),
            offer_stats=projection_store.DocumentStore(self.stats_container, remember=100),
            traffic_stats=projection_store.DocumentStore(self.traffic_container),
            half_life_hours=half_life_hours)

    @property
    def raw(self) -> FakeBlobContainer:
        return self.blob_service.get_container_client("raw")

    @property
    def dead(self) -> FakeBlobContainer:
        return self.blob_service.get_container_client("deadletter")

    def archived_records(self) -> list[dict]:
        return [r for name in sorted(self.raw.blobs) for r in self.archive.read(name)]

    def profiles(self) -> dict[str, dict]:
        return self.profiles_container.documents()

    def stats(self) -> dict[str, dict]:
        return self.stats_container.documents()

    def traffic(self) -> dict[str, dict]:
        return self.traffic_container.documents()
