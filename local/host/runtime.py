"""The host's life: load settings and the app, start every trigger, serve, shut down cleanly."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Optional

from . import storage
from .http import HttpServer
from .invoker import Invoker
from .loader import FunctionSpec, index
from .queue import QueueListener, QueueOptions, QueueOutput
from .settings import HostError, host_id, load_host_json, load_local_settings, section
from .timer import TimerListener, time_zone

log = logging.getLogger("Host.Startup")
_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "information": logging.INFO,
           "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
           "none": logging.CRITICAL + 10}


def apply_log_levels(host_json: dict) -> None:
    """host.json logging.logLevel: "default" for everything, other keys per logger category."""
    for category, level in (section(host_json, "logging", "logLevel") or {}).items():
        value = _LEVELS.get(str(level).lower())
        if value is None:
            raise HostError(f"host.json logging.logLevel.{category}: unknown level {level!r}")
        logging.getLogger(None if category.lower() == "default" else category).setLevel(value)


class Host:
    def __init__(self, app_dir: Path, host: str, port: int, shutdown_timeout: float):
        self.app_dir = app_dir.resolve()
        self.host, self.port, self.shutdown_timeout = host, port, shutdown_timeout
        self.listeners: list = []
        self.specs: dict[str, FunctionSpec] = {}
        self.invoker: Optional[Invoker] = None
        self.http: Optional[HttpServer] = None
        self.background: set[asyncio.Task] = set()

    async def start(self) -> None:
        began = time.monotonic()
        load_local_settings(self.app_dir)
        host_json = load_host_json(self.app_dir)
        apply_log_levels(host_json)
        os.chdir(self.app_dir)  # the worker runs with the app folder as its working directory
        if os.environ.get("FUNCTIONS_WORKER_RUNTIME", "python").lower() != "python":
            raise HostError(f"FUNCTIONS_WORKER_RUNTIME is {os.environ['FUNCTIONS_WORKER_RUNTIME']!r}; "
                            "this host runs Python apps only")
        the_host_id = host_id(self.app_dir)
        specs = index(self.app_dir, host_json)
        active = [s for s in specs if not s.disabled]
        self.specs = {s.name.lower(): s for s in active}
        queue_options = QueueOptions.from_host_json(host_json)
        queue_output = QueueOutput(queue_options)
        self.invoker = Invoker(str(self.app_dir), {"queue": queue_output})
        for spec in specs:
            if spec.disabled:
                log.info("Function '%s' is disabled (AzureWebJobs.%s.Disabled)", spec.name, spec.name)
                continue
            try:
                self.invoker.load(spec)
                for binding in spec.outputs:
                    queue_output.check(spec, binding)
                self.listeners += self._listener(spec, host_json, queue_options, the_host_id)
            except HostError as error:
                if str(error).startswith(("function '", "cannot load")):
                    raise
                raise HostError(f"function '{spec.name}': {error}") from None
            if spec.retry and spec.trigger_type in ("httpTrigger", "queueTrigger"):
                log.warning("Function '%s': retry policies do not apply to %s (ignored, as in Azure)",
                            spec.name, spec.trigger_type)
        self.http = HttpServer(active, self.invoker, host_json, the_host_id, self.admin_invoke)
        for listener in self.listeners:
            try:
                await listener.start()
            except HostError:
                raise
            except Exception as error:
                raise HostError(f"function '{listener.spec.name}': cannot start its "
                                f"{listener.spec.trigger_type} listener: {type(error).__name__}: {error}") from None
        await self.http.start(self.host, self.port, self.shutdown_timeout)
        self._log_functions(specs)
        log.info("Host started (%dms), host id %s, listening on http://%s:%d", (time.monotonic() - began) * 1000,
                 the_host_id, self.host, self.port)

    def _listener(self, spec: FunctionSpec, host_json, queue_options, the_host_id) -> list:
        kind = spec.trigger_type
        if kind == "queueTrigger":
            return [QueueListener(spec, self.invoker, queue_options)]
        if kind == "timerTrigger":
            return [TimerListener(spec, self.invoker, the_host_id, time_zone())]
        if kind == "eventHubTrigger":
            from .eventhub import EventHubListener, EventHubOptions

            return [EventHubListener(spec, self.invoker, EventHubOptions.from_host_json(host_json))]
        return []

    def _log_functions(self, specs: list[FunctionSpec]) -> None:
        base = f"http://{self.host}:{self.port}"
        described = {t.spec.name: t.describe(base) for t in self.http.triggers}
        described.update({listener.spec.name: listener.describe() for listener in self.listeners})
        lines = [f"{s.name}: {described.get(s.name, 'disabled')}" for s in specs]
        log.info("Functions:\n%s", "\n".join(f"        {line}" for line in lines) or "        (none)")

    async def admin_invoke(self, name: str, text: str) -> int:
        """POST /admin/functions/<name>: run a non-HTTP function in the background (202)."""
        spec = self.specs.get(name.lower())
        if spec is None or spec.trigger_type == "httpTrigger":
            return 404
        from . import queue, timer

        modules = {"timerTrigger": timer, "queueTrigger": queue}
        if spec.trigger_type == "eventHubTrigger":
            from . import eventhub

            modules["eventHubTrigger"] = eventhub
        try:
            datum, metadata = modules[spec.trigger_type].admin_input(spec, text)
        except HostError as error:
            log.warning("POST /admin/functions/%s: %s", spec.name, error)
            return 400
        task = asyncio.create_task(self.invoker.invoke(spec, datum, metadata))
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return 202

    async def stop(self, hurry: asyncio.Event) -> bool:
        """Stop accepting work, let in-flight invocations finish (bounded), close clients.

        Returns False if some invocation was still running when the wait ended.
        """
        deadline = time.monotonic() + self.shutdown_timeout
        log.info("Host is stopping; waiting up to %.0f s for running invocations", self.shutdown_timeout)
        for listener in self.listeners:
            listener.stop_accepting()
        if self.http is not None:
            self.http.state = "Stopping"
            await self.http.stop()
        pending = set(self.background)
        for listener in self.listeners:
            pending |= listener.pending()
        if pending:
            waiter = asyncio.ensure_future(asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic())))
            hurry_wait = asyncio.ensure_future(hurry.wait())
            await asyncio.wait({waiter, hurry_wait}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            hurry_wait.cancel()
            for task in pending:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        log.debug("in-flight work done after %.1f s", self.shutdown_timeout - (deadline - time.monotonic()))
        for listener in self.listeners:
            close = getattr(listener, "close", None)
            if close is not None:
                log.debug("closing the %s listener", listener.spec.name)
                try:
                    await asyncio.wait_for(close(), max(3.0, deadline - time.monotonic()))
                except Exception as error:
                    log.warning("closing the %s listener failed: %s", listener.spec.name, error)
        log.debug("listeners closed after %.1f s", self.shutdown_timeout - (deadline - time.monotonic()))
        await storage.close_all()
        finished = self.invoker is None or self.invoker.active == 0
        if self.invoker is not None:
            self.invoker.pool.shutdown(wait=False, cancel_futures=True)
        log.info("Host stopped%s", "" if finished else " (some invocations were still running)")
        return finished
