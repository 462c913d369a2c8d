"""The BI export's adapters (shared/export.py is the export itself): what it reads — the Parquet
archive's window, the hourly offer statistics and the catalog in Cosmos DB, the kept retrain
reports in container `models` — and where it writes: a local folder or a blob container
(`exports` by default), which Power BI reads as a folder of Parquet files.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Sequence

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.cosmos import ContainerProxy
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from . import (archive, catalog_store, cosmos, export, model_store, personalizer_store, projection_store, resources,
               storage)
from .learning import compaction, dataset
from .parquet_archive import ParquetArchive
from .projections import strip_system_fields
from .settings import Settings

log = logging.getLogger(__name__)
# The registries whose kept reports (models/<prefix>reports/<trainedAt>-<version>.json) are exported, by loop.
REPORT_PREFIXES = {dataset.OFFERS: "", dataset.PERSONALIZER: personalizer_store.PREFIX}
SPOOL_BYTES = 64 * 1024 * 1024  # a file bigger than this waits for its upload on disk, not in memory


def _content_type(name: str) -> str:
    return compaction.CONTENT_TYPE if name.endswith(".parquet") else "application/json"


class FolderSink:
    """Writes the export's files under a local folder; each is written beside its place and renamed
    over it when complete, so a reader never sees half a file."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.location = str(self.root)

    @contextmanager
    def create(self, name: str) -> Iterator[BinaryIO]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                yield file
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class BlobSink:
    """Writes the export's files to a blob container (created when missing). A file is spooled
    locally (on disk past SPOOL_BYTES) and uploaded whole when complete, replacing the blob."""

    def __init__(self, container: ContainerClient):
        self.container = container
        self.location = container.url
        try:
            container.create_container()
        except ResourceExistsError:
            pass

    @contextmanager
    def create(self, name: str) -> Iterator[BinaryIO]:
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as file:
            yield file
            file.seek(0)
            self.container.upload_blob(name, file, overwrite=True,
                                       content_settings=ContentSettings(content_type=_content_type(name)))

    def delete(self, name: str) -> None:
        try:
            self.container.delete_blob(name)
        except ResourceNotFoundError:
            pass


def offer_stats(container: ContainerProxy, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The offerstats documents of the hours from start's to end's (the container indexes /hour)."""
    query = "SELECT * FROM c WHERE c.hour >= @first AND c.hour <= @last"
    for item in projection_store.of_hours(container, query, compaction.iso(compaction.floor_hour(start)),
                                          compaction.iso(compaction.floor_hour(end))):
        yield strip_system_fields(item)


def reports(models: ContainerClient, days: Sequence[date]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(loop, report) of every retrain report kept on these days, both loops; a report blob that is
    not JSON is logged and skipped."""
    for loop, prefix in REPORT_PREFIXES.items():
        for day in days:
            for blob in models.list_blobs(name_starts_with=f"{prefix}{model_store.REPORTS}{day:%Y-%m-%d}"):
                try:
                    yield loop, json.loads(models.download_blob(blob.name).readall())
                except ValueError as error:
                    log.warning("skipping retrain report %s: %s", blob.name, error)


def ports(config: Settings, sink: Any, *, service: Optional[BlobServiceClient] = None,
          raw: str = resources.RAW_ARCHIVE, parquet: str = resources.PARQUET_ARCHIVE,
          models: str = resources.MODELS) -> export.ExportPorts:
    """The export's ports over the app's stores (a sink: FolderSink or BlobSink)."""
    service = service or storage.blob_service(config.storage)
    store = ParquetArchive(service, archive.BlobArchive(service, raw_container=raw), container=parquet)
    database = cosmos.database(config.cosmos, config.cosmos_database)
    return export.ExportPorts(
        load=lambda start, end, columns: store.load(start, end, decision_columns=columns),
        offer_stats=lambda start, end: offer_stats(database.get_container_client(resources.OFFER_STATS), start, end),
        reports=lambda days: reports(service.get_container_client(models), days),
        offers=lambda: catalog_store.load_all(database.get_container_client(resources.OFFERS)),
        products=lambda: catalog_store.load_all(database.get_container_client(resources.PRODUCTS)),
        create=sink.create, delete=sink.delete)


def blob_sink(config: Settings, container: str = resources.EXPORTS) -> BlobSink:
    """The app's storage account's export container as a destination."""
    return BlobSink(storage.blob_service(config.storage).get_container_client(container))
