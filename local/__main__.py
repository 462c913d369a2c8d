"""`python -m local up|down|run|status|settings`: the local stack's command line (used by the Makefile)."""
from __future__ import annotations

import json
import shutil
import signal
import sys
import time

import click

from .config import LOOPBACK, ROOT, ConfigError, StackConfig
from .services import ALL, SERVICES
from .stack import Stack, StackError


def _stack() -> Stack:
    return Stack(StackConfig.from_env(), say=lambda line: click.echo(line, err=False), seed_catalog=True)


def _ensure_local_settings(config: StackConfig) -> None:
    # Core Tools needs local.settings.json; it is untracked, so start it from the sample.
    target = config.app_dir / "local.settings.json"
    sample = config.app_dir / "local.settings.sample.json"
    if not target.exists() and sample.exists():
        shutil.copyfile(sample, target)
        click.echo("  created local.settings.json from local.settings.sample.json")


def _print_urls(stack: Stack) -> None:
    p = stack.config.ports
    hub = stack.settings.get("EVENTHUB_NAME", "activity")
    logs = stack.config.logs_dir
    try:
        logs = logs.relative_to(ROOT)
    except ValueError:
        pass
    host = "func start (Core Tools)" if stack.config.use_core_tools else "development host"
    click.echo(f"""
offerloop is running locally:
  API            http://{LOOPBACK}:{p.host}/api/health   ({host})
  simulation     http://{LOOPBACK}:{p.host}/api/simulation/status
  dashboard      http://{LOOPBACK}:{p.host}/api/dashboard   (live charts)
  store          http://{LOOPBACK}:{p.host}/api/store       (the demo storefront)
  Azurite        blob http://{LOOPBACK}:{p.blob} · queue http://{LOOPBACK}:{p.queue} · table http://{LOOPBACK}:{p.table}
  Cosmos DB      http://{LOOPBACK}:{p.cosmos}/
  Event Hubs     sb://{LOOPBACK}:{p.eventhubs} (hub '{hub}')
  Redis          redis://{LOOPBACK}:{p.redis}/0
  logs           {logs}/<service>.log""")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # `kill` of `make run` stops the stack like Ctrl-C does


def _fail(error: Exception) -> None:
    click.echo(f"offerloop: {error}", err=True)
    sys.exit(1)


@click.group()
def cli() -> None:
    """Start and stop offerloop's local stack: emulators and the Functions host."""


@cli.command()
@click.argument("services", nargs=-1, type=click.Choice(ALL))
def up(services: tuple[str, ...]) -> None:
    """Start the stack in the background (or only SERVICES)."""
    try:
        stack = _stack()
        _ensure_local_settings(stack.config)
        click.echo("Starting offerloop's local stack…")
        stack.up(services or ALL)
    except (StackError, ConfigError) as error:
        _fail(error)
    _print_urls(stack)
    click.echo("  stop with     make down")


@cli.command()
def down() -> None:
    """Stop exactly the processes `up` started."""
    try:
        stopped = _stack().down()
    except ConfigError as error:
        _fail(error)
    click.echo("offerloop: stopped " + (", ".join(stopped) if stopped else "nothing (not running)"))


@cli.command()
def run() -> None:
    """Start the stack, follow the host's log, and stop what was started on Ctrl-C."""
    try:
        stack = _stack()
        _ensure_local_settings(stack.config)
        host_log = stack.log_path("host")
        # Follow the host's log from this start on, so its list of functions shows too.
        log_start = host_log.stat().st_size if host_log.exists() else 0
        click.echo("Starting offerloop's local stack…")
        started = stack.up(ALL)
    except (StackError, ConfigError) as error:
        _fail(error)
    _print_urls(stack)
    click.echo("  Ctrl-C stops everything this command started.\n")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with open(host_log, "r", errors="replace") as log:
            log.seek(log_start)
            while True:
                line = log.readline()
                if line:
                    click.echo(line, nl=False)
                    continue
                if stack.record("host") is None:
                    click.echo("offerloop: the Functions host stopped; see its log above", err=True)
                    break
                time.sleep(0.2)
    except KeyboardInterrupt:
        click.echo("\nStopping…")
    stack.down(started)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(as_json: bool) -> None:
    """Show which services of the stack are running."""
    records = _stack().status()
    if as_json:
        click.echo(json.dumps({n: (r.pid if r else None) for n, r in records.items()}))
        return
    for name, record in records.items():
        state = f"running (pid {record.pid})" if record else "stopped"
        click.echo(f"  {SERVICES[name].title:<30} {state}")


@cli.command()
def settings() -> None:
    """Print the app settings for this stack as shell exports (for running tools against it)."""
    for key, value in _stack().settings.items():
        click.echo(f"export {key}='{value}'")


if __name__ == "__main__":
    cli()
