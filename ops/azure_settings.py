"""`python -m ops azure-settings`: a local.settings.json for running the host on this machine
against the resources `azd up` deployed, from the azd environment's values (the template's
outputs).

The connections are identity-based with no client id, so the host and the app sign in as
you (DefaultAzureCredential: `az login`, `azd auth login`, ...); the template gives the
developer who ran azd (AZURE_PRINCIPAL_ID) the app's data roles. Nothing secret is written:
the outputs hold endpoints and names only.
"""
from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Mapping, Optional

import click

from shared.settings import COSMOS, EVENTHUB, STORAGE

# azd environment value (a main.bicep output) -> app setting
FROM_OUTPUTS = {
    "AZURE_STORAGE_BLOB_ENDPOINT": f"{STORAGE}__blobServiceUri",
    "AZURE_STORAGE_QUEUE_ENDPOINT": f"{STORAGE}__queueServiceUri",
    "AZURE_STORAGE_TABLE_ENDPOINT": f"{STORAGE}__tableServiceUri",
    "AZURE_EVENTHUBS_NAMESPACE": f"{EVENTHUB}__fullyQualifiedNamespace",
    "AZURE_EVENTHUB_NAME": "EVENTHUB_NAME",
    "AZURE_COSMOS_ENDPOINT": f"{COSMOS}__accountEndpoint",
    "AZURE_COSMOS_DATABASE": "COSMOS_DATABASE",
}
REDIS_OUTPUTS = ("AZURE_REDIS_HOST", "AZURE_REDIS_PORT")
# Emulator connection strings and Azure-only identity settings of the sample: not wanted here.
# Application Insights accepts Entra-authenticated telemetry only, so metrics stay in-process.
CLEARED = (STORAGE, EVENTHUB, COSMOS, "REDIS_CLIENT_ID", "APPLICATIONINSIGHTS_CONNECTION_STRING",
           "APPLICATIONINSIGHTS_AUTHENTICATION_STRING")


def parse_env_values(text: str) -> dict[str, str]:
    """`azd env get-values` output (KEY="value" lines, dotenv quoting) as a dict."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        values[key.strip()] = " ".join(shlex.split(raw)) if raw.strip() else ""
    return values


def local_values(outputs: Mapping[str, str], sample: Mapping[str, str]) -> dict[str, str]:
    """The sample's Values with the emulator connections replaced by the deployed resources."""
    missing = [name for name in (*FROM_OUTPUTS, *REDIS_OUTPUTS) if not outputs.get(name)]
    if missing:
        raise click.ClickException(f"the azd environment has no {', '.join(missing)}: run `azd up` (or "
                                   f"`azd provision`) first, in this folder and environment")
    values = {name: value for name, value in sample.items() if name not in CLEARED}
    values.update({setting: outputs[output] for output, setting in FROM_OUTPUTS.items()})
    # Azure Managed Redis takes TLS and a Microsoft Entra token: a rediss:// URL without a password.
    values["REDIS_URL"] = f"rediss://{outputs['AZURE_REDIS_HOST']}:{outputs['AZURE_REDIS_PORT']}"
    return values


def _azd_values(environment: Optional[str]) -> str:
    command = ["azd", "env", "get-values"] + (["--environment", environment] if environment else [])
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise click.ClickException("azd (the Azure Developer CLI) is not on PATH; or pass --from-file "
                                   "with the output of `azd env get-values`") from None
    except subprocess.CalledProcessError as failed:
        raise click.ClickException(f"`{' '.join(command)}` failed: {failed.stderr.strip()}") from None


@click.command("azure-settings")
@click.option("--environment", "-e", default=None, help="azd environment [default: azd's default one].")
@click.option("--from-file", type=click.File("r"), default=None,
              help="Read `azd env get-values` output from this file ('-': stdin) instead of running azd.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("local.settings.json"), show_default=True, help="File to write.")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def azure_settings(environment: Optional[str], from_file, output: Path, force: bool) -> None:
    """Write a local.settings.json that points the host at the deployed Azure resources."""
    from local.config import ROOT

    outputs = parse_env_values(from_file.read() if from_file else _azd_values(environment))
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())
    values = local_values(outputs, sample["Values"])
    if output.exists() and not force:
        raise click.ClickException(f"{output} exists (your emulator settings?): pass --force to replace "
                                   f"it, or --output another file")
    output.write_text(json.dumps({**sample, "Values": values}, indent=2) + "\n")
    click.echo(f"wrote {output}: the host signs in as you (az login) to the resources of "
               f"{outputs.get('AZURE_RESOURCE_GROUP', 'the azd environment')}")
    if outputs.get("AZURE_PRIVATE_NETWORKING", "").lower() == "true":
        click.echo("note: the environment was deployed with private networking; its services refuse "
                   "connections from outside the virtual network", err=True)
    click.echo("run it with: .venv/bin/python -m local.host   (or: func start)")
