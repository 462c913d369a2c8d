"""Timer trigger: six-field NCRONTAB or TimeSpan schedules, run_on_startup, use_monitor.

As in the Timers extension, a monitored schedule keeps its status (Last, Next,
LastUpdated) in the blob `azure-webjobs-hosts/timers/<hostId>/Host.Functions.<name>/status`
of AzureWebJobsStorage; an occurrence missed while the host was down runs once at
startup with `past_due=True`. Monitoring is off for schedules that fire more than once
a minute. Times are local to WEBSITE_TIME_ZONE (or TZ), UTC by default.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.core.exceptions import ResourceNotFoundError
from azure.functions.meta import Datum
from croniter import croniter

from . import storage
from .invoker import Invoker, invoke_with_retries
from .loader import FunctionSpec
from .settings import HostError, parse_timespan

log = logging.getLogger("Host.Timers")
CONTAINER = "azure-webjobs-hosts"
DEFAULT = datetime(1, 1, 1, tzinfo=timezone.utc)  # .NET DateTime.MinValue: "never"
THRESHOLD = datetime(2, 1, 1, tzinfo=timezone.utc)


def time_zone() -> tzinfo:
    name = os.environ.get("WEBSITE_TIME_ZONE") or os.environ.get("TZ") or ""
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HostError(f"time zone {name!r} (WEBSITE_TIME_ZONE/TZ) is not a known IANA time zone") from None


class Schedule:
    def __init__(self, expression: str, tz: tzinfo, what: str):
        self.expression, self.tz = expression, tz
        fields = expression.split()
        self.interval: Optional[timedelta] = None
        if len(fields) == 6 and croniter.is_valid(expression, second_at_beginning=True):
            self.kind = "Cron"
        elif len(fields) == 1 and ":" in expression:
            self.interval = timedelta(seconds=parse_timespan(expression, what))
            if self.interval <= timedelta(0):
                raise HostError(f"{what}: the TimeSpan schedule must be positive")
            self.kind = "TimeSpan"
        else:
            raise HostError(f"{what}: the schedule expression '{expression}' was not recognized as a "
                            "valid cron expression (six fields: second minute hour day month "
                            "day-of-week) or timespan string")

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.tz)
        if self.interval is not None:
            return local + self.interval
        # NCRONTAB requires both day-of-month and day-of-week to match (day_or=False).
        return croniter(self.expression, local, second_at_beginning=True, day_or=False).get_next(datetime)

    def fires_often(self, now: datetime) -> bool:
        """More than one occurrence within a minute: the extension then turns monitoring off."""
        if self.interval is not None:
            return self.interval < timedelta(minutes=1)
        first = self.next_after(now)
        return self.next_after(first) < now + timedelta(minutes=1)


def _parse(value) -> datetime:
    if not value:
        return DEFAULT
    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value)).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return DEFAULT
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment if moment >= THRESHOLD else DEFAULT


def _format(moment: datetime, tz: tzinfo) -> str:
    if moment <= THRESHOLD:
        return "0001-01-01T00:00:00+00:00"
    return moment.astimezone(tz).isoformat()


def timer_datum(past_due: bool, status: Optional[dict]) -> Datum:
    return Datum(json.dumps({"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status,
                             "IsPastDue": past_due}), "json")


def admin_input(spec: FunctionSpec, text: str) -> tuple[Datum, dict]:
    return timer_datum(False, None), {}


class TimerListener:
    def __init__(self, spec: FunctionSpec, invoker: Invoker, host_id: str, tz: tzinfo):
        self.spec, self.invoker, self.tz = spec, invoker, tz
        trigger = spec.trigger
        self.schedule = Schedule(str(trigger.get("schedule") or ""), tz, f"function '{spec.name}'")
        self.run_on_startup = bool(trigger.get("runOnStartup", False))
        use_monitor = trigger.get("useMonitor")
        self.monitor = (use_monitor is None or bool(use_monitor)) and \
            not self.schedule.fires_often(datetime.now(timezone.utc))
        self.container = self.blob = None
        if self.monitor:
            self.container = storage.blob_service().get_container_client(CONTAINER)
            self.blob = self.container.get_blob_client(f"timers/{host_id}/Host.Functions.{spec.name}/status")
        self.last = self.next = self.updated = DEFAULT
        self.stopping = asyncio.Event()
        self.task: Optional[asyncio.Task] = None
        self.current: Optional[asyncio.Task] = None

    def describe(self) -> str:
        return f"timerTrigger ({self.schedule.kind}: '{self.schedule.expression}')"

    async def start(self) -> None:
        now = datetime.now(timezone.utc)
        past_due = await self._check_past_due(now) if self.monitor else False
        if not self.monitor:
            self.next = self.schedule.next_after(now)
        log.info("The next 5 occurrences of '%s' (%s) are: %s", self.spec.name, self.schedule.expression,
                 ", ".join(o.isoformat() for o in self._upcoming(now, 5)))
        self.task = asyncio.create_task(self._run(past_due), name=f"timer:{self.spec.name}")

    def _upcoming(self, now: datetime, count: int) -> list[datetime]:
        found = []
        for _ in range(count):
            now = self.schedule.next_after(now)
            found.append(now)
        return found

    def stop_accepting(self) -> None:
        self.stopping.set()

    def pending(self) -> set[asyncio.Task]:
        return {t for t in (self.task, self.current) if t is not None}

    async def _check_past_due(self, now: datetime) -> bool:
        """ScheduleMonitor.CheckPastDueAsync: read (or create) the status; is its Next behind us?"""
        await storage.ensure_container(self.container)
        try:
            status = json.loads(await (await self.blob.download_blob()).readall())
        except ResourceNotFoundError:
            status = None
        if status is None:
            self.last, self.next, self.updated = DEFAULT, self.schedule.next_after(now), now
            await self._save()
        else:
            self.last, self.next, self.updated = (_parse(status.get("Last")), _parse(status.get("Next")),
                                                  _parse(status.get("LastUpdated")))
            basis = self.last if self.last > THRESHOLD else self.updated if self.updated > THRESHOLD else now
            expected = self.schedule.next_after(basis)
            if self.next != expected:  # the schedule changed since the status was written
                if now > expected:
                    expected, basis = self.schedule.next_after(now), now
                self.last, self.next, self.updated = DEFAULT, expected, basis
                await self._save()
        log.info("Function '%s' initial status: Last='%s', Next='%s', LastUpdated='%s'", self.spec.name,
                 _format(self.last, self.tz), _format(self.next, self.tz), _format(self.updated, self.tz))
        return now > self.next

    async def _save(self) -> None:
        document = {"Last": _format(self.last, self.tz), "Next": _format(self.next, self.tz),
                    "LastUpdated": _format(self.updated, self.tz)}
        try:
            await self.blob.upload_blob(json.dumps(document), overwrite=True)
        except Exception as error:  # best effort, as in the extension
            log.error("Function '%s' failed to update the timer trigger status: %s", self.spec.name, error)

    def _status(self) -> Optional[dict]:
        if not self.monitor:
            return None
        return {"Last": _format(self.last, self.tz), "Next": _format(self.next, self.tz),
                "LastUpdated": _format(self.updated, self.tz)}

    async def _run(self, past_due: bool) -> None:
        if past_due:
            log.info("Timer '%s' is past due (Next was %s); running now", self.spec.name,
                     _format(self.next, self.tz))
            await self._fire(past_due=True, unscheduled=True)
        elif self.run_on_startup:
            await self._fire(past_due=False, unscheduled=True)
        while not self.stopping.is_set():
            delay = (self.next - datetime.now(timezone.utc)).total_seconds()
            try:
                await asyncio.wait_for(self.stopping.wait(), max(delay, 0))
                return
            except asyncio.TimeoutError:
                await self._fire(past_due=False, unscheduled=False)

    async def _fire(self, past_due: bool, unscheduled: bool) -> None:
        if self.stopping.is_set():
            return
        invoked_at = datetime.now(timezone.utc)
        status = self._status()
        self.current = asyncio.create_task(invoke_with_retries(
            self.invoker, self.spec, lambda: (timer_datum(past_due, status), {}), stopping=self.stopping))
        await asyncio.shield(self.current)
        # Avoid computing the same Next twice when the timer fired a moment early.
        basis = self.next if not unscheduled and self.next > invoked_at else invoked_at
        self.last, self.updated = basis, basis
        self.next = self.schedule.next_after(basis)
        if self.monitor:
            await self._save()
