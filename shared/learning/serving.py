"""Which model the offers function serves: the current one from the registry, cached in memory.

`ModelCache.serving()` looks at the registry's pointer at most every `refresh_seconds`
(one small blob read), loads a model once per version and keeps it. With no model promoted
yet, or when the pointed-to model cannot be loaded (missing or corrupt blob), the baseline
serves and `status` says why; health reports it as degraded. When the pointer cannot be
read (storage unreachable), the model already loaded goes on serving.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from ..refresh import Periodic
from .explore import Serving
from .model import LinearModel, ModelError
from .retrain import Registry

log = logging.getLogger(__name__)
NO_MODEL = "no model promoted yet; serving the baseline"


class ModelUnavailable(Exception):
    """The learned model is not being served (the message says why)."""


class ModelCache:
    def __init__(self, registry: Registry, refresh_seconds: float = 30.0, apprentice: bool = False,
                 monotonic: Callable[[], float] = time.monotonic):
        self._registry, self._apprentice = registry, apprentice
        self._periodic = Periodic(refresh_seconds, monotonic)
        self._models: dict[str, LinearModel] = {}
        self._serving = Serving(None, apprentice=apprentice, status=NO_MODEL)

    def serving(self) -> Serving:
        """What to serve now; refreshes from the registry when due (one caller refreshes, others go on)."""
        self._periodic.run(self._refresh_now)
        return self._serving

    def _refresh_now(self) -> None:
        self._serving = self._load()

    def _load(self) -> Serving:
        try:
            pointer = self._registry.pointer()
        except Exception as error:  # storage unreachable: keep what is served
            log.warning("model pointer unreadable, serving %s: %s",
                        self._serving.model.version if self._serving.model else "the baseline", error)
            return self._serving
        if not pointer:
            return Serving(None, apprentice=self._apprentice, status=NO_MODEL)
        version = str(pointer.get("version"))
        apprentice = self._apprentice and not (pointer.get("apprentice") or {}).get("graduated", False)
        model = self._models.get(version)
        if model is None:
            try:
                model = self._registry.load(version)
            except ModelError as error:
                log.error("model %s cannot be loaded, serving the baseline: %s", version, error)
                return Serving(None, apprentice=apprentice, status=f"model {version} cannot be loaded: {error}")
            except Exception as error:  # a transient read failure: try again at the next refresh
                log.warning("model %s not loaded yet: %s", version, error)
                return Serving(self._serving.model, apprentice=apprentice,
                               status=None if self._serving.model else f"model {version} not loaded yet: {error}")
            self._models = {version: model}  # keep only the current one
            log.info("serving model %s", version)
        return Serving(model, apprentice=apprentice)

    def refresh_soon(self) -> None:
        """Look at the registry again on the next call (a retrain in this process just promoted)."""
        self._periodic.soon()

    def check(self) -> Optional[str]:
        """For health: raises ModelUnavailable when the baseline serves instead of a learned model."""
        serving = self.serving()
        if serving.model is None:
            raise ModelUnavailable(serving.status or NO_MODEL)
        return serving.model.version
