"""The template creates what the app uses, under the same names (shared/resources.py, the
local Event Hubs emulator's Config.json, local.settings.sample.json)."""
import json

from shared import resources
from tests.infra.bicep import BICEP_DIR, MAIN, ROOT, body, indexed_functions, parse, resources as resources_in, variable

NAMES = json.loads((BICEP_DIR / "app-resources.json").read_text())
SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
EMULATOR_HUBS = json.loads((ROOT / "local" / "eventhubs" / "Config.json").read_text())


def test_main_takes_its_names_from_app_resources_json():
    assert variable(MAIN, "names")["function"]["parameters"]["file_path"] == "app-resources.json"


def test_blob_containers_and_queues_are_the_apps():
    assert sorted(NAMES["blobContainers"]) == sorted(resources.BLOB_CONTAINERS)
    assert sorted(NAMES["queues"]) == sorted(resources.QUEUES)


def test_cosmos_containers_have_the_apps_partition_keys_and_an_indexing_policy():
    containers = NAMES["cosmos"]["containers"]
    assert {c["name"]: c["partitionKey"] for c in containers} == resources.COSMOS_CONTAINERS
    for container in containers:
        policy = container["indexingPolicy"]
        assert policy["indexingMode"] == "consistent"
        # A query filtering on a path the policy leaves out would scan; these are the ones the app runs.
        assert {"path": "/*"} in policy["includedPaths"] or {"path": "/*"} in policy["excludedPaths"]
    stats = next(c for c in containers if c["name"] == resources.OFFER_STATS)["indexingPolicy"]
    assert {"path": "/hour/?"} in stats["includedPaths"]  # catalog_store.offer_totals: WHERE c.hour >= @since


def test_the_database_and_hub_are_the_ones_the_settings_name():
    assert NAMES["cosmos"]["database"] == SAMPLE["COSMOS_DATABASE"]
    assert NAMES["eventHub"]["name"] == SAMPLE["EVENTHUB_NAME"]


def test_the_hub_matches_the_local_emulators_and_has_every_consumer_group_a_function_reads_with():
    hub = EMULATOR_HUBS["UserConfig"]["NamespaceConfig"][0]["Entities"][0]
    assert NAMES["eventHub"]["name"] == hub["Name"]
    assert sorted(NAMES["eventHub"]["consumerGroups"]) == sorted(g["Name"] for g in hub["ConsumerGroups"])
    used = {b["consumerGroup"] for fn in indexed_functions()
            for b in json.loads(fn.get_function_json())["bindings"] if b["type"] == "eventHubTrigger"}
    assert used and used <= set(NAMES["eventHub"]["consumerGroups"])


def test_the_partition_count_is_a_parameter_defaulting_to_four():
    assert parse(MAIN)["parameters"]["eventHubPartitionCount"]["default"] == 4
    hub = resources_in(BICEP_DIR / "modules" / "eventhubs.bicep", "Microsoft.EventHub/namespaces/eventhubs")
    assert body(next(iter(hub.values())))["properties"]["partitionCount"] == "partitionCount"
