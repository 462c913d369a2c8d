"""Blob and Queue storage through the official SDKs against Azurite."""
from __future__ import annotations

import time
import uuid

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def blobs(stack) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])


@pytest.fixture
def container(blobs):
    client = blobs.create_container(f"t{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


@pytest.fixture
def queue(stack):
    client = QueueClient.from_connection_string(
        stack.settings["AzureWebJobsStorage"], f"t{uuid.uuid4().hex[:12]}",
        message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy())
    client.create_queue()
    yield client
    client.delete_queue()


def test_blob_upload_list_and_download_round_trip(container):
    payloads = {f"raw/2026/11/22/05/{p}-0.jsonl": f"event {p}\n".encode() * 100 for p in range(3)}
    for name, data in payloads.items():
        container.upload_blob(name, data, overwrite=True)
    listed = sorted(b.name for b in container.list_blobs(name_starts_with="raw/2026/11/22/"))
    assert listed == sorted(payloads)
    for name, data in payloads.items():
        assert container.download_blob(name).readall() == data


def test_blob_overwrite_with_an_old_etag_is_refused(container):
    blob = container.get_blob_client("pointer")
    first = blob.upload_blob(b"v1")
    blob.upload_blob(b"v2", overwrite=True)
    with pytest.raises(ResourceModifiedError):
        blob.upload_blob(b"v3", overwrite=True, etag=first["etag"],
                         match_condition=MatchConditions.IfNotModified)
    assert container.download_blob("pointer").readall() == b"v2"


def test_append_blob_keeps_every_block_in_order(container):
    blob = container.get_blob_client("deadletter/log.jsonl")
    blob.create_append_blob()
    lines = [f'{{"n": {i}}}\n'.encode() for i in range(50)]
    for line in lines:
        blob.append_block(line)
    assert blob.download_blob().readall() == b"".join(lines)
    assert blob.get_blob_properties().blob_type == "AppendBlob"


def test_queue_message_is_hidden_for_its_visibility_timeout_then_redelivered(queue):
    queue.send_message("hello")
    first = next(queue.receive_messages(visibility_timeout=2))
    assert first.content == "hello" and first.dequeue_count == 1
    assert list(queue.receive_messages(visibility_timeout=2)) == []  # hidden while leased
    time.sleep(2.5)
    second = next(queue.receive_messages(visibility_timeout=30))
    assert second.id == first.id and second.dequeue_count == 2
    queue.delete_message(second)
    assert queue.get_queue_properties().approximate_message_count == 0


def test_queue_message_sent_with_a_delay_stays_invisible_until_then(queue):
    queue.send_message("later", visibility_timeout=2)
    assert list(queue.receive_messages()) == []
    time.sleep(2.5)
    assert [m.content for m in queue.receive_messages()] == ["later"]


def test_queue_update_message_changes_content_and_visibility(queue):
    queue.send_message("v1")
    message = next(queue.receive_messages(visibility_timeout=30))
    updated = queue.update_message(message, pop_receipt=message.pop_receipt, content="v2",
                                   visibility_timeout=0)
    assert updated.pop_receipt
    again = next(queue.receive_messages())
    assert again.content == "v2" and again.dequeue_count == 2
