"""The related-products table in Blob storage, and the offers function's in-memory copy of it.

    models/affinity/related.npz   the latest table (NumPy arrays + JSON metadata, no pickle),
                                  replaced whole by each retrain (a blob upload is atomic)

`RelatedCache.get()` looks at the blob at most every `refresh_seconds` with a conditional
read (If-None-Match: an unchanged table costs one small request and no download) and keeps
the table in memory, so looking up a product's related products, or a shopper's affinity,
reads nothing. A missing blob means no table yet; an unreadable one, or storage that does not
answer, keeps the table already loaded.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError, ResourceNotModifiedError
from azure.storage.blob import ContainerClient, ContentSettings

from .affinity import AffinityError, Related
from .refresh import Periodic

log = logging.getLogger(__name__)

BLOB = "affinity/related.npz"
_NPZ = ContentSettings(content_type="application/octet-stream")


class RelatedStore:
    def __init__(self, container: ContainerClient, name: str = BLOB):
        self.container, self.name = container, name

    def save(self, related: Related) -> None:
        self.container.upload_blob(self.name, related.to_bytes(), overwrite=True, content_settings=_NPZ)

    def load(self, etag: Optional[str] = None) -> tuple[Optional[Related], Optional[str]]:
        """(the table, its etag); (None, None) when there is none; (None, etag) when unchanged since `etag`."""
        try:
            if etag:
                download = self.container.download_blob(self.name, etag=etag,
                                                         match_condition=MatchConditions.IfModified)
            else:
                download = self.container.download_blob(self.name)
            data = download.readall()
        except ResourceNotFoundError:
            return None, None
        except (ResourceNotModifiedError, ResourceModifiedError):  # 304: not modified
            return None, etag
        return Related.from_bytes(data), download.properties.etag


class RelatedCache:
    """The latest table in memory (None until a retrain has written one)."""

    def __init__(self, store: RelatedStore, refresh_seconds: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self._store = store
        self._periodic = Periodic(refresh_seconds, monotonic)
        self._etag: Optional[str] = None
        self._related: Optional[Related] = None
        self.error: Optional[str] = None  # why the last refresh failed, if it did

    def get(self) -> Optional[Related]:
        self._periodic.run(self._reload)
        return self._related

    def _reload(self) -> None:
        try:
            related, etag = self._store.load(self._etag if self._related is not None else None)
        except AffinityError as error:
            self.error = str(error)
            log.error("related-products table unreadable, keeping the one loaded: %s", error)
            return
        except Exception as error:  # storage unreachable: keep what is loaded, try at the next refresh
            self.error = f"{type(error).__name__}: {error}"
            log.warning("related-products table not refreshed: %s", self.error)
            return
        self.error = None
        if related is not None:
            self._related, self._etag = related, etag
            log.info("related-products table %s loaded: %s products", related.version, len(related.items))
        elif etag is None:  # the blob is gone
            self._related, self._etag = None, None

    def refresh_soon(self) -> None:
        self._periodic.soon()
