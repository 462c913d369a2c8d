"""The app's settings: connection strings locally, identity-based settings in Azure."""
import json
from pathlib import Path

import pytest

from shared import settings
from shared.settings import SettingsError

SAMPLE = Path(__file__).resolve().parents[2] / "local.settings.sample.json"


def test_the_sample_settings_load_and_name_every_setting_the_app_reads():
    values = json.loads(SAMPLE.read_text())["Values"]
    assert set(settings.NAMES) <= set(values)
    loaded = settings.load(values)
    assert loaded.eventhub_name == "activity" and loaded.cosmos_database == "offerloop"
    assert loaded.storage.connection_string == "UseDevelopmentStorage=true"


def test_identity_based_settings_are_read_from_the_binding_prefixes():
    loaded = settings.load({
        "AzureWebJobsStorage__blobServiceUri": "https://st.blob.core.windows.net",
        "AzureWebJobsStorage__queueServiceUri": "https://st.queue.core.windows.net",
        "AzureWebJobsStorage__clientId": "cid",
        "EventHubConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
        "CosmosDBConnection__accountEndpoint": "https://acct.documents.azure.com:443/",
    })
    assert loaded.storage.connection_string is None
    assert loaded.storage.endpoint == "https://st.blob.core.windows.net"
    assert loaded.storage.queue_endpoint == "https://st.queue.core.windows.net"
    assert loaded.storage.client_id == "cid"
    assert loaded.eventhub.endpoint == "ns.servicebus.windows.net"
    assert loaded.cosmos.endpoint == "https://acct.documents.azure.com:443/"


def test_a_missing_connection_names_both_ways_to_set_it():
    with pytest.raises(SettingsError, match="EventHubConnection__fullyQualifiedNamespace"):
        settings.load({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                       "CosmosDBConnection": "AccountEndpoint=http://x/;AccountKey=a;"})


def test_redis_and_application_insights_identities_are_read_and_empty_means_none():
    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "EventHubConnection__fullyQualifiedNamespace": "ns.servicebus.windows.net",
            "CosmosDBConnection__accountEndpoint": "https://acct.documents.azure.com:443/"}
    loaded = settings.load({**base, "REDIS_CLIENT_ID": "cid",
                            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=cid;Authorization=AAD"})
    assert loaded.redis_client_id == "cid"
    assert loaded.appinsights_authentication == "ClientId=cid;Authorization=AAD"
    empty = settings.load({**base, "REDIS_CLIENT_ID": "", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": ""})
    assert empty.redis_client_id is None and empty.appinsights_authentication is None


def test_the_learning_settings_default_like_personalizer_and_are_read_from_the_environment():
    env = {settings.STORAGE: "UseDevelopmentStorage=true", settings.EVENTHUB: "Endpoint=sb://x",
           settings.COSMOS: "AccountEndpoint=http://x/;AccountKey=k;"}
    assert settings.load(env).learning == settings.Learning()
    learning = settings.load({**env, "EXPLORATION_POLICY": "Softmax", "EXPLORATION_PERCENTAGE": "5",
                              "REWARD_AGGREGATION": "sum", "APPRENTICE_MODE": "true",
                              "RETRAIN_EVERY_IMPRESSIONS": "250"}).learning
    assert (learning.exploration_policy, learning.exploration_percentage, learning.reward_aggregation,
            learning.apprentice_mode, learning.retrain_every) == ("softmax", 5.0, "sum", True, 250)


@pytest.mark.parametrize("name, value", [("EXPLORATION_PERCENTAGE", "120"), ("EXPLORATION_POLICY", "thompson"),
                                         ("REWARD_WAIT_SECONDS", "soon"), ("DEFAULT_REWARD", "2"),
                                         ("APPRENTICE_MODE", "maybe")])
def test_a_bad_learning_setting_is_named(name, value):
    env = {settings.STORAGE: "UseDevelopmentStorage=true", settings.EVENTHUB: "Endpoint=sb://x",
           settings.COSMOS: "AccountEndpoint=http://x/;AccountKey=k;", name: value}
    with pytest.raises(SettingsError, match=name):
        settings.load(env)
