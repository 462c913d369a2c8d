"""Identity only: no keys read or handed out, local auth off everywhere, one identity, least
privilege, and a diagnostic setting on every resource that has logs or metrics."""
import re

import pytest

from tests.infra.bicep import (BICEP_DIR, MAIN, all_resources, bicep_files, body, outputs, parse, parse_text,
                               resources, text_of, walk)

MODULES = BICEP_DIR / "modules"
SECRET_NAME = re.compile(r"key|secret|password|token|connection_?string|sas", re.IGNORECASE)
SECRET_VALUE = re.compile(r"list_func|\blist[A-Z]\w*|connectionstring|primaryKey|secondaryKey|instrumentationkey|"
                          r"AccountKey=|SharedAccessKey", re.IGNORECASE)


def secret_outputs(path_or_parsed) -> list[str]:
    """Outputs that carry (or are named for) a key or a connection string."""
    found = parse(path_or_parsed) if not isinstance(path_or_parsed, dict) else path_or_parsed
    return [name for name, output in (found.get("outputs") or {}).items()
            if SECRET_NAME.search(name) or SECRET_VALUE.search(text_of(output["value"]))]


def test_the_output_check_catches_a_key_and_a_connection_string():
    bad = parse_text("""
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'x'
}
resource ai 'Microsoft.Insights/components@2020-02-02' existing = {
  name: 'y'
}
output KEY_ONE string = st.listKeys().keys[0].value
output SETTING string = ai.properties.ConnectionString
output STORAGE string = 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${st.listKeys().keys[0].value}'
output BLOB string = st.properties.primaryEndpoints.blob
""")
    assert sorted(secret_outputs(bad)) == ["KEY_ONE", "SETTING", "STORAGE"]


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(BICEP_DIR).as_posix())
def test_no_output_carries_a_key_or_a_connection_string(path):
    assert secret_outputs(path) == []


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(BICEP_DIR).as_posix())
def test_the_template_never_reads_a_key(path):
    calls = [node for node in walk(parse(path)) if isinstance(node, dict) and node.get("type") == "list_func"]
    assert calls == [] and "listKeys" not in path.read_text()


def test_main_outputs_are_upper_snake_and_include_what_local_settings_need():
    from ops.azure_settings import FROM_OUTPUTS, REDIS_OUTPUTS

    names = set(outputs(MAIN))
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in names), names
    assert set(FROM_OUTPUTS) | set(REDIS_OUTPUTS) <= names


def test_local_auth_is_disabled_on_every_service():
    def one(module, type_):
        found = [r for r in resources(MODULES / module, type_).values() if not r.get("existing")]
        assert len(found) == 1, (module, type_)
        return body(found[0])["properties"]

    storage = one("storage.bicep", "Microsoft.Storage/storageAccounts")
    assert storage["allowSharedKeyAccess"] is False and storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    assert one("eventhubs.bicep", "Microsoft.EventHub/namespaces")["disableLocalAuth"] is True
    assert one("cosmos.bicep", "Microsoft.DocumentDB/databaseAccounts")["disableLocalAuth"] is True
    assert one("monitoring.bicep", "Microsoft.Insights/components")["DisableLocalAuth"] is True
    redis = one("redis.bicep", "Microsoft.Cache/redisEnterprise/databases")
    assert redis["accessKeysAuthentication"] == "Disabled" and redis["clientProtocol"] == "Encrypted"


def test_one_user_assigned_identity_runs_the_app_and_reads_its_package():
    identities = [r for _, _, r in all_resources("Microsoft.ManagedIdentity/userAssignedIdentities")]
    assert len(identities) == 1
    site = body(resources(MODULES / "functionapp.bicep", "Microsoft.Web/sites")["site"])
    assert site["identity"]["type"] == "UserAssigned"
    storage = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert parse(MODULES / "functionapp.bicep")["parameters"]["pythonVersion"]["default"] == "3.11"


def test_role_assignments_are_data_roles_named_by_guid_with_an_explicit_principal_type():
    assignments = all_resources("Microsoft.Authorization/roleAssignments")
    assert {path.name for path, _, _ in assignments} == {"rbac.bicep"}  # one RBAC module
    rbac = parse(MODULES / "rbac.bicep")["variables"]
    for _, name, resource in assignments:
        config = body(resource)
        assert config["name"]["function"]["type"] == "guid", name
        assert "principalType" in config["properties"], name
        role = config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        assert rbac[role]["value"] in DATA_ROLES, (name, role)
    (cosmos,) = [r for _, _, r in all_resources("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments")]
    assert "00000000-0000-0000-0000-000000000002" == rbac[body(cosmos)["properties"]["roleDefinitionId"]
                                                          .split("/")[-1].strip("${}")]["value"]
    (redis,) = [r for _, _, r in all_resources("Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments")]
    assert body(redis)["properties"]["accessPolicyName"] == "default"


# Built-in data-plane roles the app may hold (no Owner, Contributor or key operator roles).
DATA_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner (the host's minimum)
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    "a638d3c7-ab3a-418d-83e6-5f17a39d4fde",  # Azure Event Hubs Data Receiver
    "2b629674-e913-4c01-ae53-ef4638d8f975",  # Azure Event Hubs Data Sender
    "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
}

# Resource types with logs or metrics: each gets a diagnostic setting into Log Analytics.
DIAGNOSED = {
    "Microsoft.Storage/storageAccounts", "Microsoft.Storage/storageAccounts/blobServices",
    "Microsoft.Storage/storageAccounts/queueServices", "Microsoft.Storage/storageAccounts/tableServices",
    "Microsoft.EventHub/namespaces", "Microsoft.DocumentDB/databaseAccounts", "Microsoft.Cache/redisEnterprise",
    "Microsoft.Cache/redisEnterprise/databases", "Microsoft.Web/sites", "Microsoft.Web/serverfarms",
    "Microsoft.OperationalInsights/workspaces", "Microsoft.Network/virtualNetworks",
}
# And why the rest have none: covered by their parent's setting, none to have, or stored already.
NOT_DIAGNOSED = {
    "Microsoft.Storage/storageAccounts/blobServices/containers", "Microsoft.Storage/storageAccounts/queueServices/queues",
    "Microsoft.EventHub/namespaces/eventhubs", "Microsoft.EventHub/namespaces/eventhubs/consumergroups",
    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases", "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers",
    "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments", "Microsoft.Authorization/roleAssignments",
    "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments", "Microsoft.Insights/diagnosticSettings",
    "Microsoft.ManagedIdentity/userAssignedIdentities",  # no diagnostic categories
    "Microsoft.Insights/components",  # workspace-based: its telemetry is in Log Analytics already
    "Microsoft.Network/privateEndpoints", "Microsoft.Network/privateEndpoints/privateDnsZoneGroups",
    "Microsoft.Network/privateDnsZones", "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
    "Microsoft.Resources/resourceGroups",
}


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(BICEP_DIR).as_posix())
def test_every_resource_with_logs_or_metrics_has_a_diagnostic_setting(path):
    declared = {name: r["type"] for name, r in resources(path).items() if not r.get("existing")}
    unknown = {t for t in declared.values() if t not in DIAGNOSED | NOT_DIAGNOSED}
    assert unknown == set(), "decide whether these need a diagnostic setting"
    scopes = {body(r)["scope"] for r in resources(path, "Microsoft.Insights/diagnosticSettings").values()}
    missing = [name for name, type_ in declared.items() if type_ in DIAGNOSED and name not in scopes]
    assert missing == []
    for setting in resources(path, "Microsoft.Insights/diagnosticSettings").values():
        assert body(setting)["properties"]["workspaceId"]  # into the Log Analytics workspace
