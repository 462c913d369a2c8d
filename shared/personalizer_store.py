"""The Personalizer-compatible loop's state in Blob storage (container `models`, under `personalizer/`).

    models/personalizer/settings.json             its service configuration and policy (LoopSettings)
    models/personalizer/evaluations/<id>.json     offline evaluations, as the API returns them
    models/personalizer/<version>/..., current.json, reports/...   its models (model_store.BlobRegistry)

`SettingsCache.get()` reads the settings at most every `refresh_seconds` (a conditional read:
an unchanged blob costs no download) and keeps the last good copy when storage does not
answer; `put` writes through, so the instance that took a PUT serves it at once, and the
others within `refresh_seconds`. Before the first PUT the defaults apply.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Optional

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError, ResourceNotModifiedError
from azure.storage.blob import ContainerClient, ContentSettings

from .personalizer.configuration import LoopSettings
from .refresh import Periodic

log = logging.getLogger(__name__)

PREFIX = "personalizer/"
SETTINGS = PREFIX + "settings.json"
EVALUATIONS = PREFIX + "evaluations/"
_JSON = ContentSettings(content_type="application/json")


class SettingsStore:
    def __init__(self, container: ContainerClient, name: str = SETTINGS):
        self.container, self.name = container, name

    def load(self, etag: Optional[str] = None) -> tuple[Optional[dict], Optional[str]]:
        """(the stored document, its etag); (None, None) when none was stored; (None, etag) when unchanged."""
        try:
            if etag:
                download = self.container.download_blob(self.name, etag=etag, match_condition=MatchConditions.IfModified)
            else:
                download = self.container.download_blob(self.name)
            data = download.readall()
        except ResourceNotFoundError:
            return None, None
        except (ResourceNotModifiedError, ResourceModifiedError):
            return None, etag
        return json.loads(data), download.properties.etag

    def save(self, document: dict) -> str:
        result = self.container.get_blob_client(self.name).upload_blob(
            json.dumps(document, indent=2).encode("utf-8"), overwrite=True, content_settings=_JSON)
        return result["etag"]


class SettingsCache:
    """The loop's settings in memory: the stored ones, else `defaults()`."""

    def __init__(self, store: SettingsStore, defaults: Callable[[], LoopSettings], refresh_seconds: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self._store, self._defaults = store, defaults
        self._periodic = Periodic(refresh_seconds, monotonic)
        self._etag: Optional[str] = None
        self._settings: Optional[LoopSettings] = None
        self._default: Optional[LoopSettings] = None

    def get(self) -> LoopSettings:
        self._periodic.run(self._reload)
        if self._settings is None and self._default is None:
            self._default = self._defaults()
        return self._settings or self._default

    def _reload(self) -> None:
        try:
            document, etag = self._store.load(self._etag if self._settings is not None else None)
        except Exception as error:  # storage unreachable: keep what is served
            log.warning("personalizer settings unreadable, keeping the current ones: %s", error)
            return
        if document is None and etag is None:
            self._settings, self._etag = None, None
        elif document is not None:
            try:
                self._settings, self._etag = LoopSettings.from_dict(document), etag
            except (ValueError, TypeError, KeyError) as error:
                log.error("stored personalizer settings are invalid, keeping the current ones: %s", error)

    def put(self, settings: LoopSettings) -> LoopSettings:
        etag = self._store.save(settings.to_dict())
        with self._periodic.lock:
            self._settings, self._etag = settings, etag
            self._periodic.done()
        return settings


class EvaluationStore:
    """Offline evaluations by id (the JSON the API returns)."""

    def __init__(self, container: ContainerClient, prefix: str = EVALUATIONS):
        self.container, self.prefix = container, prefix

    def get(self, evaluation_id: str) -> Optional[dict]:
        try:
            return json.loads(self.container.download_blob(self.prefix + evaluation_id + ".json").readall())
        except ResourceNotFoundError:
            return None

    def put(self, evaluation: dict[str, Any]) -> None:
        self.container.upload_blob(self.prefix + evaluation["id"] + ".json", json.dumps(evaluation).encode("utf-8"),
                                   overwrite=True, content_settings=_JSON)

    def list(self) -> list[dict]:
        return [json.loads(self.container.download_blob(b.name).readall())
                for b in self.container.list_blobs(name_starts_with=self.prefix)]

    def delete(self, evaluation_id: str) -> bool:
        try:
            self.container.delete_blob(self.prefix + evaluation_id + ".json")
        except ResourceNotFoundError:
            return False
        return True
