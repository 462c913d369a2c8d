"""`python -m ops demo`: what `make up`/`make run` do in the background once the stack is up:
seed the catalog if it is empty, then start a simulation of shoppers unless one is running.
"""
from __future__ import annotations

import json

import click
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import seed as seed_module

# The host answers 409 no-catalog until its catalog cache has loaded the seeded documents
# (it retries every 2 s), and 503 if it is still starting: retry those for about two minutes.
RETRY = Retry(total=60, status_forcelist=(409, 502, 503), allowed_methods=None, backoff_factor=0.5,
              backoff_max=2.0, respect_retry_after_header=True, raise_on_status=False)
TIMEOUT_SECONDS = 30


def _session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=RETRY))
    return session


def start_simulation(api: str, users: int, rate: float) -> str:
    """Start a simulation unless one runs; a line saying what happened."""
    session = _session()
    state = session.get(f"{api}/simulation/status", timeout=TIMEOUT_SECONDS).json()
    if state.get("state") == "running":
        return f"simulation {state['runId']} is already running ({state['users']} users)"
    answer = session.post(f"{api}/simulation/start", json={"users": users, "rate": rate}, timeout=TIMEOUT_SECONDS)
    body = answer.json()
    if answer.status_code == 202:
        return f"simulation {body['runId']} started: {users} users, about {rate:g} actions/s"
    if answer.status_code == 409 and body.get("type", "").endswith(":simulation-running"):
        return f"simulation {body.get('runId')} is already running"
    raise click.ClickException(f"starting the simulation failed: HTTP {answer.status_code} {json.dumps(body)}")


@click.command()
@click.option("--api", default="http://127.0.0.1:7071/api", show_default=True, help="The app's base URL.")
@click.option("--users", default=100, show_default=True, type=click.IntRange(0),
              help="Simulated shoppers; 0 starts no simulation.")
@click.option("--rate", default=5.0, show_default=True, type=click.FloatRange(0),
              help="Simulated actions per second (0: as fast as the stack goes).")
@click.pass_context
def demo(ctx: click.Context, api: str, users: int, rate: float) -> None:
    """Seed the catalog if it is empty, then start a simulation unless one is running."""
    ctx.invoke(seed_module.seed, if_empty=True)
    if users == 0:
        click.echo("no simulation started (--users 0)")
        return
    click.echo(start_simulation(api.rstrip("/"), users, rate))
