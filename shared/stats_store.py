"""What GET /api/stats reads: the statistics documents of some hours in Cosmos DB, and the offers
loop's retrain reports in Blob storage (models/reports/, written by shared/model_store.py).

Offer statistics are partitioned by offer, so their hours are one cross-partition query;
traffic is partitioned by hour. Both queries filter on `hour`, which both containers index
(infra/bicep/app-resources.json), and select only what the dashboard uses.

A failure of a dependency is raised as stats.Unavailable (`guard`), which the function turns
into a 503.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Optional, TypeVar

from azure.core.exceptions import AzureError
from azure.cosmos import ContainerProxy
from azure.storage.blob import ContainerClient
from redis.exceptions import RedisError

from . import model_store, projection_store, stats
from .refresh import Periodic

log = logging.getLogger(__name__)
T = TypeVar("T")

OFFER_STATS_QUERY = "SELECT c.offerId, c.hour, c.byMinute FROM c WHERE c.hour >= @first AND c.hour <= @last"
TRAFFIC_QUERY = "SELECT c.hour, c.partition, c.byMinute FROM c WHERE c.hour >= @first AND c.hour <= @last"
REPORTS_REFRESH_SECONDS = 5.0
DEPENDENCY_ERRORS = (AzureError, RedisError, OSError)


def guard(what: str, read: Callable[..., T]) -> Callable[..., T]:
    """`read`, with a dependency's failure raised as stats.Unavailable naming `what`."""
    def guarded(*args):
        try:
            return read(*args)
        except DEPENDENCY_ERRORS as error:
            raise stats.Unavailable(f"{what}: {type(error).__name__}: {error}") from error
    return guarded


def hours_reader(container: ContainerProxy, query: str) -> Callable[[str, str], list[dict]]:
    """(first hour, last hour) -> the container's documents of those hours, as `query` selects them."""
    def read(first: str, last: str) -> list[dict]:
        return list(projection_store.of_hours(container, query, first, last))
    return guard(f"Cosmos DB container {container.id}", read)


class ReportReader:
    """The newest retrain reports, newest first, looked for every `seconds`.

    Reports are named reports/<trainedAt>-<version>.json, so their names sort by time, and a
    report is never rewritten: only names not seen yet are downloaded. After the first look,
    which lists every report, only the days from the newest one's on are listed. Once read,
    the reports stay shown while a later look fails.
    """

    def __init__(self, container: ContainerClient, prefix: str = "", limit: int = stats.PROMOTIONS,
                 seconds: float = REPORTS_REFRESH_SECONDS, monotonic: Callable[[], float] = time.monotonic,
                 today: Callable[[], date] = lambda: datetime.now(timezone.utc).date()):
        self.container, self.folder, self.limit = container, prefix + model_store.REPORTS, limit
        self._periodic = Periodic(seconds, monotonic)
        self._today = today
        self._kept: dict[str, dict] = {}  # name -> report, the newest `limit`
        self._newest: list[dict] = []
        self._first = threading.Event()  # set once the first look is done

    def newest(self) -> list[dict]:
        if not self._first.is_set():  # the first look: a failure is the caller's, the others wait for it
            with self._periodic.lock:
                if not self._first.is_set():
                    self._reload()
                    self._periodic.done()
            return self._newest
        try:
            self._periodic.run(self._reload)
        except DEPENDENCY_ERRORS as error:  # the reports read before are still the newest known
            log.warning("retrain reports not refreshed: %s: %s", type(error).__name__, error)
        return self._newest

    def _reload(self) -> None:
        names = sorted(set(self._kept) | set(self._names()))[-self.limit:]
        self._kept = {n: self._kept[n] if n in self._kept else self._download(n) for n in names}
        self._newest = [self._kept[n] for n in reversed(names) if self._kept[n] is not None]
        self._first.set()

    def _names(self) -> list[str]:
        newest = max(self._kept, default=None)
        if newest is None:
            return list(self.container.list_blob_names(name_starts_with=self.folder))
        day = _day_of(newest[len(self.folder):]) or self._today()
        names = []
        while day <= self._today():
            names += self.container.list_blob_names(name_starts_with=f"{self.folder}{day.isoformat()}")
            day += timedelta(days=1)
        return names

    def _download(self, name: str) -> Optional[dict]:
        try:
            return json.loads(self.container.download_blob(name).readall())
        except ValueError as error:  # not JSON: shown as missing, not as an outage
            log.warning("retrain report %s unreadable: %s", name, error)
            return None


def _day_of(stamp: str) -> Optional[date]:
    try:
        return date.fromisoformat(stamp[:10])
    except ValueError:
        return None
