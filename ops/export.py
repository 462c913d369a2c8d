"""`python -m ops export`: the BI export of the last days, to a folder or to blob container `exports`.

Writes Parquet tables of fixed schemas in Hive-style date partitions (shared/export.py; every
column described in docs/export.md): the archived events and decisions (the training window's
rows, the hours not compacted yet read from the raw archive), the hourly (and, where the
statistics have it, per-minute) offer statistics with the offers' titles, kinds and
categories, the retrain reports, and the offers and products. A second export of the same
days overwrites the same files.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import click
from tqdm import tqdm

from shared import export as bi
from shared import export_store, resources

from . import app_settings


@click.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 3650),
              help="Today (UTC, so far) and the days before it, this many dates in all.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write to this local folder.")
@click.option("--to-blob", is_flag=True, help="Write to a blob container of the app's storage account.")
@click.option("--container", default=resources.EXPORTS, show_default=True, help="The container, with --to-blob.")
@click.option("--no-candidates", is_flag=True,
              help="Leave out every candidate's features (~12 KB a decision): decisions.candidates and the "
                   "decision events' data are null.")
def export(days: int, out: Optional[Path], to_blob: bool, container: str, no_candidates: bool) -> None:
    """Export events, decisions, offer statistics, retrains, offers and products as Parquet for Power BI."""
    if (out is None) == (not to_blob):
        raise click.UsageError("give exactly one of --out DIR and --to-blob")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = app_settings()
    sink = export_store.blob_sink(config, container) if to_blob else export_store.FolderSink(out)
    window = bi.Window.last_days(days, datetime.now(timezone.utc))
    began = time.monotonic()
    with tqdm(total=bi.steps(window), desc="exporting", unit="step", disable=None) as bar:
        def progress(step: str) -> None:
            bar.set_postfix_str(step)
            bar.update()

        manifest = bi.run(export_store.ports(config, sink), window, candidates=not no_candidates, progress=progress)
    counts = ", ".join(f"{t['rows']:,} {name}" for name, t in manifest["tables"].items())
    click.echo(f"exported {window.to_dict()['from']}..{window.to_dict()['to']} to {sink.location}: {counts} "
               f"in {time.monotonic() - began:.1f} s")
