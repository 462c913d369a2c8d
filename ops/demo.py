"""`python -m ops demo`: what `make up`/`make run` do in the background once the stack is up:
seed the catalog if it is empty, then start a simulation of shoppers unless one is running.
"""
from __future__ import annotations

import json
import time
from typing import Any

import click
import requests

from . import seed as seed_module

# The host answers 409 no-catalog (Retry-After: 2) until its catalog cache has loaded the
# seeded documents; `start` waits that long at most.
CATALOG_WAIT_SECONDS = 120.0
TIMEOUT_SECONDS = 30


def _problem_kind(body: dict) -> str:
    return str(body.get("type", "")).rsplit(":", 1)[-1]


def start(api: str, body: dict[str, Any], wait: float = CATALOG_WAIT_SECONDS) -> tuple[int, dict]:
    """POST simulation/start; while the host has no catalog yet, ask again after its Retry-After
    (for at most `wait` seconds). The last answer: (status, body)."""
    deadline = time.monotonic() + wait
    while True:
        answer = requests.post(f"{api}/simulation/start", json=body, timeout=TIMEOUT_SECONDS)
        payload = answer.json()
        if answer.status_code != 409 or _problem_kind(payload) != "no-catalog" or time.monotonic() > deadline:
            return answer.status_code, payload
        time.sleep(float(answer.headers.get("Retry-After") or 2))


def start_simulation(api: str, users: int, rate: float) -> str:
    """Start a simulation unless one runs; a line saying what happened."""
    state = requests.get(f"{api}/simulation/status", timeout=TIMEOUT_SECONDS).json()
    if state.get("state") == "running":
        return f"simulation {state['runId']} is already running ({state['users']} users)"
    code, body = start(api, {"users": users, "rate": rate})
    if code == 202:
        return f"simulation {body['runId']} started: {users} users, about {rate:g} actions/s"
    if code == 409 and _problem_kind(body) == "simulation-running":
        return f"simulation {body.get('runId')} is already running"
    raise click.ClickException(f"starting the simulation failed: HTTP {code} {json.dumps(body)}")


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
