"""Cosmos DB for NoSQL through the official SDK against the local Cosmos DB server."""
from __future__ import annotations

import uuid

import pytest
from azure.core import MatchConditions
from azure.cosmos import PartitionKey
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceNotFoundError

from shared.cosmos import client_from_connection_string

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def container(stack):
    client = client_from_connection_string(stack.settings["CosmosDBConnection"])
    database = client.create_database_if_not_exists(f"t{uuid.uuid4().hex[:8]}")
    yield database.create_container_if_not_exists("profiles", PartitionKey(path="/userId"))
    client.delete_database(database.id)


def test_create_then_read_returns_the_document_with_an_etag(container):
    container.create_item({"id": "u1", "userId": "u1", "views": ["p1"]})
    read = container.read_item("u1", partition_key="u1")
    assert read["views"] == ["p1"] and read["_etag"]
    with pytest.raises(CosmosResourceNotFoundError):
        container.read_item("nobody", partition_key="nobody")


def test_upsert_replaces_the_whole_document(container):
    container.upsert_item({"id": "u2", "userId": "u2", "a": 1})
    container.upsert_item({"id": "u2", "userId": "u2", "b": 2})
    read = container.read_item("u2", partition_key="u2")
    assert "a" not in read and read["b"] == 2


def test_query_in_one_partition_and_across_partitions(container):
    for i in range(10):
        container.upsert_item({"id": f"d{i}", "userId": f"u{i % 3}", "n": i})
    in_partition = list(container.query_items(
        "SELECT * FROM c WHERE c.userId = @u ORDER BY c.n", parameters=[{"name": "@u", "value": "u1"}],
        partition_key="u1"))
    assert [d["n"] for d in in_partition] == [1, 4, 7]
    across = list(container.query_items("SELECT * FROM c WHERE c.n >= 5",
                                        enable_cross_partition_query=True))
    assert sorted(d["n"] for d in across) == [5, 6, 7, 8, 9]


def test_patch_increments_counters_atomically(container):
    container.create_item({"id": "offer-1:2026112205", "userId": "offer-1", "impressions": 0})
    for _ in range(5):
        container.patch_item("offer-1:2026112205", partition_key="offer-1",
                             patch_operations=[{"op": "incr", "path": "/impressions", "value": 1}])
    assert container.read_item("offer-1:2026112205", partition_key="offer-1")["impressions"] == 5


def test_replace_with_a_stale_etag_is_refused(container):
    created = container.create_item({"id": "u3", "userId": "u3", "seq": 1})
    current = container.replace_item("u3", {**created, "seq": 2}, etag=created["_etag"],
                                     match_condition=MatchConditions.IfNotModified)
    with pytest.raises(CosmosAccessConditionFailedError):
        container.replace_item("u3", {**created, "seq": 3}, etag=created["_etag"],
                               match_condition=MatchConditions.IfNotModified)
    assert container.read_item("u3", partition_key="u3")["seq"] == 2
    assert current["_etag"] != created["_etag"]


def test_patch_with_a_stale_etag_is_refused(container):
    created = container.create_item({"id": "u4", "userId": "u4", "n": 0})
    container.patch_item("u4", partition_key="u4", patch_operations=[{"op": "set", "path": "/n", "value": 1}])
    with pytest.raises(CosmosAccessConditionFailedError):
        container.patch_item("u4", partition_key="u4", etag=created["_etag"],
                             match_condition=MatchConditions.IfNotModified,
                             patch_operations=[{"op": "set", "path": "/n", "value": 2}])
    assert container.read_item("u4", partition_key="u4")["n"] == 1
