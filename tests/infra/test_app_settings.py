"""The template's app settings are exactly what the code reads, every connection identity-based."""
import json

import pytest

from shared import settings
from tests.infra.bicep import app_settings, indexed_functions

CONNECTIONS = (settings.STORAGE, settings.EVENTHUB, settings.COSMOS)
# What an identity-based connection needs, by the binding type that uses it (Functions docs:
# "Configure an identity-based connection"); the host's own storage needs blob, queue and table.
ENDPOINT_BY_BINDING = {
    "queueTrigger": "queueServiceUri", "queue": "queueServiceUri",
    "blobTrigger": "blobServiceUri", "blob": "blobServiceUri",
    "eventHubTrigger": "fullyQualifiedNamespace", "eventHub": "fullyQualifiedNamespace",
    "cosmosDBTrigger": "accountEndpoint", "cosmosDB": "accountEndpoint",
}
HOST_STORAGE = ("blobServiceUri", "queueServiceUri", "tableServiceUri")


def binding_connections() -> dict[str, set[str]]:
    """connection prefix -> the endpoint settings its bindings need, from the indexed function app."""
    needed: dict[str, set[str]] = {settings.STORAGE: set(HOST_STORAGE)}  # the host: timers, leases, checkpoints
    for fn in indexed_functions():
        for binding in json.loads(fn.get_function_json())["bindings"]:
            if "connection" in binding:
                assert binding["type"] in ENDPOINT_BY_BINDING, f"{fn.get_function_name()}: {binding['type']}?"
                needed.setdefault(binding["connection"], set()).add(ENDPOINT_BY_BINDING[binding["type"]])
    return needed


def test_the_function_app_binds_storage_queues_and_the_activity_hub():
    needed = binding_connections()
    assert needed[settings.STORAGE] >= {"queueServiceUri", "blobServiceUri"}
    assert needed[settings.EVENTHUB] == {"fullyQualifiedNamespace"}


def test_every_plain_setting_the_code_reads_is_set_by_the_template():
    template = app_settings()
    plain = [name for name in settings.NAMES if name not in CONNECTIONS]
    assert [name for name in plain if name not in template] == []


def test_the_template_sets_nothing_the_code_does_not_read():
    allowed = set(settings.NAMES) - set(CONNECTIONS)
    extra = [name for name in app_settings()
             if name not in allowed and not name.startswith(tuple(f"{c}__" for c in CONNECTIONS))]
    assert extra == []


@pytest.mark.parametrize("prefix", CONNECTIONS)
def test_a_connection_is_identity_based_with_the_apps_identity_and_no_connection_string(prefix):
    template = app_settings()
    assert prefix not in template, f"{prefix} would be a connection string (a key)"
    assert template[f"{prefix}__credential"] == "managedidentity"
    assert template[f"{prefix}__clientId"] == "identityClientId"  # the one user-assigned identity


def test_every_binding_connection_has_its_identity_based_settings():
    template = app_settings()
    missing = [f"{prefix}__{endpoint}" for prefix, endpoints in binding_connections().items()
               for endpoint in sorted(endpoints) if f"{prefix}__{endpoint}" not in template]
    assert missing == []


def test_the_apps_own_clients_find_their_endpoints_in_the_same_settings():
    # shared/settings.py reads these for the app's Blob, Queue, Cosmos DB and Event Hubs clients.
    template = app_settings()
    for name in ("AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri",
                 "EventHubConnection__fullyQualifiedNamespace", "CosmosDBConnection__accountEndpoint"):
        assert name in template


def test_redis_and_application_insights_sign_in_with_the_same_identity():
    template = app_settings()
    assert template["REDIS_URL"].startswith("rediss://") and "@" not in template["REDIS_URL"]  # no password: Entra
    assert template["REDIS_CLIENT_ID"] == "identityClientId"
    auth = template["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert "Authorization=AAD" in auth and "ClientId=${identityClientId}" in auth
