"""Fixtures the integration tests share."""
import uuid

import pytest
from azure.storage.blob import BlobServiceClient


@pytest.fixture
def container(stack):
    """A fresh blob container on the session's Azurite, deleted afterwards."""
    blobs = BlobServiceClient.from_connection_string(stack.settings["AzureWebJobsStorage"])
    created = blobs.create_container(f"models-{uuid.uuid4().hex[:10]}")
    yield created
    created.delete_container()
