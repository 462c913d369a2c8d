"""The local stack's configuration from the environment."""
import pytest

from local.config import ConfigError, Ports, emulator_settings


def test_ports_default_to_the_contract():
    assert Ports.from_env({}) == Ports(host=7071, blob=10000, queue=10001, table=10002,
                                       cosmos=8081, eventhubs=5672, redis=6379)


def test_each_port_moves_with_its_variable():
    ports = Ports.from_env({"COSMOS_PORT": "18081", "FUNCTIONS_PORT": "17071"})
    assert (ports.cosmos, ports.host, ports.redis) == (18081, 17071, 6379)


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_port_that_is_not_a_port_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigError, match="REDIS_PORT"):
        Ports.from_env({"REDIS_PORT": value})


def test_two_services_on_one_port_are_refused():
    with pytest.raises(ConfigError, match="same port"):
        Ports.from_env({"REDIS_PORT": "8081"})


def test_emulator_settings_point_at_the_stacks_ports():
    settings = emulator_settings(Ports(blob=1, queue=2, table=3, cosmos=4, eventhubs=5, redis=6, host=7))
    assert "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1" in settings["AzureWebJobsStorage"]
    assert "QueueEndpoint=http://127.0.0.1:2/devstoreaccount1" in settings["AzureWebJobsStorage"]
    assert settings["EventHubConnection"].startswith("Endpoint=sb://127.0.0.1:5;")
    assert settings["EventHubConnection"].endswith("UseDevelopmentEmulator=true")
    assert settings["CosmosDBConnection"].startswith("AccountEndpoint=http://127.0.0.1:4/;")
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6/0"
