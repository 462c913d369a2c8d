"""The model registry in Blob storage: container `models`.

    models/<version>/model.npz       the fitted model (NumPy arrays, no pickle)
    models/<version>/features.json   its feature configuration
    models/<version>/metrics.json    the offline evaluation against the policy it was compared with
    models/<version>/data.json       the data range and counts it was trained on
    models/<version>/report.json     the whole retrain report (why it was or was not promoted)
    models/current.json              the pointer to the served model: {version, promotedAt, previous, apprentice}
    models/latest-report.json        the last retrain's report (also of skipped or rejected runs)
    models/reports/<trainedAt>-<version>.json  every retrain's report, kept

Promotion rewrites current.json only if it has not changed since this registry read it
(etag), so two retrains racing cannot overwrite each other's promotion unseen.

The Personalizer-compatible API's loop keeps the same layout under `models/personalizer/`
(`prefix`).
"""
from __future__ import annotations

import json
import threading
from typing import Any, Optional

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings

from . import resources
from .learning.model import LinearModel, ModelError
from .learning.retrain import PromotionConflict

POINTER = "current.json"
LATEST_REPORT = "latest-report.json"
REPORTS = "reports/"
_JSON = ContentSettings(content_type="application/json")


class BlobRegistry:
    def __init__(self, container: ContainerClient, prefix: str = ""):
        self.container = container
        self.prefix = prefix
        self._etag: Optional[str] = None
        self._lock = threading.Lock()

    def _json(self, name: str) -> tuple[Optional[dict], Optional[str]]:
        try:
            download = self.container.download_blob(self.prefix + name)
        except ResourceNotFoundError:
            return None, None
        return json.loads(download.readall()), download.properties.etag

    def _put(self, name: str, data: bytes, settings: Optional[ContentSettings] = None, **conditions: Any) -> None:
        self.container.upload_blob(self.prefix + name, data, overwrite=True, content_settings=settings, **conditions)

    def pointer(self) -> Optional[dict]:
        """The served model's pointer, or None when no model was ever promoted."""
        document, etag = self._json(POINTER)
        with self._lock:
            self._etag = etag
        return document

    def load(self, version: str) -> LinearModel:
        try:
            data = self.container.download_blob(f"{self.prefix}{version}/model.npz").readall()
        except ResourceNotFoundError:
            raise ModelError(f"model blob {resources.MODELS}/{self.prefix}{version}/model.npz not found") from None
        return LinearModel.from_bytes(data)

    def save(self, version: str, files: dict[str, bytes]) -> None:
        # the model first, the report last: a report always has its model beside it
        for name in sorted(files, key=lambda n: (n != "model.npz", n == "report.json", n)):
            self._put(f"{version}/{name}", files[name], _JSON if name.endswith(".json") else None)

    def promote(self, pointer: dict) -> None:
        body = json.dumps(pointer, indent=2).encode("utf-8")
        with self._lock:
            etag = self._etag
        try:
            if etag is None:  # nothing was promoted when we looked: only create
                self.container.upload_blob(self.prefix + POINTER, body, overwrite=False, content_settings=_JSON)
            else:
                self._put(POINTER, body, _JSON, etag=etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            raise PromotionConflict("the current model changed while this retrain ran; not promoted") from None

    def latest_report(self) -> Optional[dict]:
        return self._json(LATEST_REPORT)[0]

    def keep_report(self, report: dict) -> None:
        body = json.dumps(report, indent=2).encode("utf-8")
        stamp = str(report.get("trainedAt") or "").replace(":", "")
        self._put(f"{REPORTS}{stamp}-{report.get('version', 'skipped')}.json", body, _JSON)
        self._put(LATEST_REPORT, body, _JSON)


    def reset(self) -> None:
        """Back to the baseline: the pointer is removed (the model versions and reports stay)."""
        try:
            self.container.delete_blob(self.prefix + POINTER)
        except ResourceNotFoundError:
            pass
        with self._lock:
            self._etag = None

    def files(self, version: str) -> dict[str, bytes]:
        """Every file of one model version (models/<prefix><version>/...); empty when there is none."""
        folder = f"{self.prefix}{version}/"
        return {blob.name[len(folder):]: self.container.download_blob(blob.name).readall()
                for blob in self.container.list_blobs(name_starts_with=folder)}


def from_service(service: BlobServiceClient, container: str = resources.MODELS, prefix: str = "") -> BlobRegistry:
    return BlobRegistry(service.get_container_client(container), prefix)
