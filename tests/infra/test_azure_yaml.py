"""azure.yaml deploys this folder as the Python function app the template tags for it."""
import json

import yaml

from tests.infra.bicep import BICEP_DIR, MAIN, ROOT, parse

AZURE_YAML = yaml.safe_load((ROOT / "azure.yaml").read_text())
PARAMETERS = json.loads((BICEP_DIR / "main.parameters.json").read_text())["parameters"]


def test_the_api_service_is_this_folder_as_a_python_function_app():
    assert AZURE_YAML["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}


def test_azd_provisions_main_bicep():
    infra = AZURE_YAML["infra"]
    assert infra["provider"] == "bicep" and (ROOT / infra["path"] / f"{infra['module']}.bicep") == MAIN


def test_the_function_app_carries_the_azd_service_tag_of_the_service():
    modules = parse(MAIN)["modules"]
    api = next(m for m in modules.values() if m["detail"]["path"] == "modules/functionapp.bicep")
    assert api["config"]["params"]["serviceName"] in AZURE_YAML["services"]
    site = (BICEP_DIR / "modules" / "functionapp.bicep").read_text()
    assert "'azd-service-name': serviceName" in site


def test_the_parameters_file_feeds_every_required_parameter_from_the_azd_environment():
    params = parse(MAIN)["parameters"]
    required = {name for name, p in params.items() if p.get("default") is None}
    assert required <= set(PARAMETERS)
    assert set(PARAMETERS) <= set(params)
    assert PARAMETERS["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert PARAMETERS["location"]["value"] == "${AZURE_LOCATION}"
    assert PARAMETERS["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_the_deployment_package_leaves_out_local_tooling_and_azd_state():
    ignored = set((ROOT / ".funcignore").read_text().split())
    assert {".azure", ".venv*", "local.settings.json", "tests", "infra", "local", "ops", "node_modules"} <= ignored
    assert not {"shared", "functions", "function_app.py", "host.json", "requirements.txt"} & ignored
