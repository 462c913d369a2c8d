"""The Event Hub trigger, called as the host calls it, with the ingest ports replaced by fakes."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import azure.functions as func
import pytest
from azure.functions.meta import Datum

from functions import ingest as ingest_function
from shared import bootstrap
from tests import eventfactory as ef
from tests.unit.ingest_fakes import World

ENQUEUED = datetime(2026, 11, 22, 9, 15, tzinfo=timezone.utc)


def hub_events(bodies: list[bytes], partition="1", first=70, metadata=True) -> list[func.EventHubEvent]:
    # Cardinality many: every event carries the batch's metadata, PartitionContext included.
    trigger_metadata = {"PartitionContext": Datum(json.dumps({
        "FullyQualifiedNamespace": "localhost", "EventHubName": "activity", "ConsumerGroup": "ingest",
        "PartitionId": partition}), "json")} if metadata else {}
    return [func.EventHubEvent(body=b, trigger_metadata=trigger_metadata, enqueued_time=ENQUEUED,
                               sequence_number=first + i, partition_key="u") for i, b in enumerate(bodies)]


@pytest.fixture
def world(monkeypatch) -> World:
    world = World()
    monkeypatch.setattr(bootstrap, "ingest_ports", lambda: world.ports)
    return world


def user_function():
    return ingest_function.ingest_activity.build()


def test_the_trigger_reads_the_ingest_consumer_group_in_batches_of_raw_bytes_and_retries_forever():
    fn = user_function()
    binding = json.loads(fn.get_function_json())["bindings"][0]
    assert binding == {"direction": "IN", "dataType": "BINARY", "type": "eventHubTrigger", "name": "events",
                       "connection": "EventHubConnection", "eventHubName": "%EVENTHUB_NAME%",
                       "cardinality": "MANY", "consumerGroup": "ingest"}
    retry = fn.get_settings_dict("retry_policy")
    assert retry["strategy"] == "exponential_backoff" and retry["max_retry_count"] == "-1"


def test_a_batch_is_ingested_with_the_partition_from_the_trigger_metadata(world):
    raws = [ef.view("u"), ef.purchase("u")]
    user_function().get_user_function()(hub_events([json.dumps(r).encode() for r in raws]))
    assert list(world.raw.blobs) == ["2026/11/22/09/1-70.jsonl"]
    assert world.profiles()["u"]["watermark"] == {"partition": "1", "sequence": 71}


def test_a_batch_without_a_partition_id_fails_rather_than_guessing(world):
    with pytest.raises(RuntimeError, match="PartitionId"):
        user_function().get_user_function()(hub_events([b"{}"], metadata=False))
    assert world.raw.blobs == {} and world.dead.blobs == {}
