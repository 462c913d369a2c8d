"""`python -m ops azure-settings`: a local.settings.json for the deployed resources, from azd's values."""
import json

import click
import pytest
from click.testing import CliRunner

from ops.azure_settings import azure_settings, local_values, parse_env_values
from shared import cache, settings

AZD_VALUES = '''AZURE_ENV_NAME="dev"
AZURE_RESOURCE_GROUP="rg-dev"
AZURE_STORAGE_BLOB_ENDPOINT="https://stabc.blob.core.windows.net/"
AZURE_STORAGE_QUEUE_ENDPOINT="https://stabc.queue.core.windows.net/"
AZURE_STORAGE_TABLE_ENDPOINT="https://stabc.table.core.windows.net/"
AZURE_EVENTHUBS_NAMESPACE="evhns-abc.servicebus.windows.net"
AZURE_EVENTHUB_NAME="activity"
AZURE_COSMOS_ENDPOINT="https://cosmos-abc.documents.azure.com:443/"
AZURE_COSMOS_DATABASE="offerloop"
AZURE_REDIS_HOST="amr-abc.westeurope.redis.azure.net"
AZURE_REDIS_PORT="10000"
AZURE_PRIVATE_NETWORKING="false"
'''
SAMPLE = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
          "EventHubConnection": "Endpoint=sb://localhost:5672;SharedAccessKey=x", "EVENTHUB_NAME": "activity",
          "CosmosDBConnection": "AccountEndpoint=http://localhost:8081/;AccountKey=k;", "COSMOS_DATABASE": "offerloop",
          "REDIS_URL": "redis://localhost:6379/0", "REDIS_CLIENT_ID": "", "CATALOG_REFRESH_SECONDS": "60",
          "APPLICATIONINSIGHTS_CONNECTION_STRING": "", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": ""}


def test_azd_values_are_parsed_with_dotenv_quoting():
    parsed = parse_env_values('# comment\nA="x y"\nB=plain\nC=""\nD="with \\"quotes\\""\n\n')
    assert parsed == {"A": "x y", "B": "plain", "C": "", "D": 'with "quotes"'}


def test_the_deployed_resources_replace_the_emulators_and_load_as_identity_based_settings():
    values = local_values(parse_env_values(AZD_VALUES), SAMPLE)
    assert not {"AzureWebJobsStorage", "EventHubConnection", "CosmosDBConnection"} & set(values)
    loaded = settings.load(values)
    assert loaded.storage.connection_string is None
    assert loaded.storage.endpoint == "https://stabc.blob.core.windows.net/"
    assert loaded.storage.queue_endpoint == "https://stabc.queue.core.windows.net/"
    assert loaded.eventhub.endpoint == "evhns-abc.servicebus.windows.net"
    assert loaded.cosmos.endpoint == "https://cosmos-abc.documents.azure.com:443/"
    # No client ids: locally DefaultAzureCredential signs in as the developer (az login).
    assert (loaded.storage.client_id, loaded.eventhub.client_id, loaded.cosmos.client_id,
            loaded.redis_client_id) == (None, None, None, None)
    assert loaded.redis_url == "rediss://amr-abc.westeurope.redis.azure.net:10000"
    assert cache.uses_entra(loaded.redis_url)
    assert loaded.appinsights_connection_string is None
    assert values["CATALOG_REFRESH_SECONDS"] == "60" and values["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_missing_outputs_are_named():
    outputs = parse_env_values(AZD_VALUES)
    del outputs["AZURE_COSMOS_ENDPOINT"], outputs["AZURE_REDIS_HOST"]
    with pytest.raises(click.ClickException, match="AZURE_COSMOS_ENDPOINT, AZURE_REDIS_HOST"):
        local_values(outputs, SAMPLE)


def test_the_command_writes_the_file_and_keeps_an_existing_one_unless_forced(tmp_path):
    target = tmp_path / "local.settings.json"
    runner = CliRunner()
    first = runner.invoke(azure_settings, ["--from-file", "-", "--output", str(target)], input=AZD_VALUES)
    assert first.exit_code == 0, first.output
    written = json.loads(target.read_text())
    assert written["Values"]["AzureWebJobsStorage__blobServiceUri"] == "https://stabc.blob.core.windows.net/"
    assert written["Host"]["LocalHttpPort"] == 7071  # the rest of the sample is kept
    target.write_text("{}")
    again = runner.invoke(azure_settings, ["--from-file", "-", "--output", str(target)], input=AZD_VALUES)
    assert again.exit_code != 0 and "--force" in again.output and target.read_text() == "{}"
    forced = runner.invoke(azure_settings, ["--from-file", "-", "--output", str(target), "--force"], input=AZD_VALUES)
    assert forced.exit_code == 0 and "AzureWebJobsStorage__queueServiceUri" in target.read_text()
