"""`python -m ops <command>`: operations on the app's data (seeding, rebuilding projections)."""
from __future__ import annotations

import importlib

import click

# Each module here defines a click command of its own name; list it to add it.
COMMANDS = ("seed", "rebuild", "demo", "simulate", "azure_settings", "export")


@click.group()
def cli() -> None:
    """offerloop's operations on its data."""


for _name in COMMANDS:
    cli.add_command(getattr(importlib.import_module(f"{__package__}.{_name}"), _name))

if __name__ == "__main__":
    cli()
