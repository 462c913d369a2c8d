"""`python -m bench [NAME ...]`: run benchmarks on a throwaway local stack and print a table.

Each benchmark is a module `bench/<name>.py` with `run(stack) -> dict` of figures; the
figures go to `bench/results/<name>.json` with the machine they were measured on. A module with
`NEEDS_STACK = False` gets no stack (None); when only such benchmarks are named, none is started.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import click

from local.config import ephemeral_config
from local.stack import Stack, StackError

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("emulators", "offers", "simulation", "learning", "movielens", "personalizer", "pages")


def _machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def _table(name: str, figures: dict) -> str:
    rows = [(k, v) for k, v in figures.items() if not isinstance(v, (dict, list))]
    width = max(len(k) for k, _ in rows)
    lines = [f"\n{name}", "-" * (width + 16)]
    lines += [f"{k:<{width}}  {_number(v):>12}" if isinstance(v, float) else f"{k:<{width}}  {v:>12}"
              for k, v in rows]
    return "\n".join(lines)


def _number(value: float) -> str:
    """One decimal, four for a figure below 1 (a precision, a fraction), or two significant ones below 0.001."""
    if value and abs(value) < 0.001:
        return f"{value:.2e}"
    return f"{value:,.4f}" if abs(value) < 1 else f"{value:,.1f}"


def _run(name: str, module, stack: Optional[Stack]) -> None:
    began = time.time()
    figures = module.run(stack)
    document = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
                "machine": _machine(), "figures": figures}
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    click.echo(_table(name, figures))
    click.echo(f"written to bench/results/{name}.json")


@click.command()
@click.argument("names", nargs=-1)
def main(names: tuple[str, ...]) -> None:
    """Run the named benchmarks (all when none is named)."""
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        click.echo(f"offerloop: unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
                   err=True)
        sys.exit(2)
    RESULTS.mkdir(exist_ok=True)
    modules = {name: importlib.import_module(f"bench.{name}") for name in names or BENCHMARKS}
    if not any(getattr(module, "NEEDS_STACK", True) for module in modules.values()):
        for name, module in modules.items():
            _run(name, module, None)
        return
    with tempfile.TemporaryDirectory(prefix="offerloop-bench-") as state:
        stack = Stack(ephemeral_config(Path(state)), say=click.echo)
        try:
            click.echo("starting a local stack for the benchmarks (free ports, in-memory)…")
            stack.up(("redis", "azurite", "cosmos", "eventhubs"))
            for name, module in modules.items():
                _run(name, module, stack if getattr(module, "NEEDS_STACK", True) else None)
        except StackError as error:
            click.echo(f"offerloop: {error}", err=True)
            sys.exit(1)
        finally:
            stack.down(quiet=True)


if __name__ == "__main__":
    main()
