"""HTTP triggers and the host's own admin endpoints, served with aiohttp.

Requests become the same `http` datum the host sends the worker, so the function gets
a real `func.HttpRequest`; its `func.HttpResponse` (or str) is written back. As under
Core Tools, auth levels are logged but not enforced. Unknown paths get 404, and so does
a known path with another method (as in Azure, whose routes include the method), and a
failed invocation an empty 500.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from typing import Optional

from aiohttp import web
from azure.functions.meta import Datum
from multidict import CIMultiDict

from .invoker import Invoker
from .loader import FunctionSpec
from .routes import Route
from .settings import HostError, parse_int, section

log = logging.getLogger("Host.Http")
MAX_BODY = 100 * 1024 * 1024  # the host's default request body limit


class HttpTrigger:
    def __init__(self, spec: FunctionSpec, prefix: str):
        self.spec = spec
        trigger = spec.trigger
        template = trigger.get("route") or spec.name
        self.template = "/".join(p for p in (prefix.strip("/"), template.strip("/")) if p)
        if self.template.split("/")[0].lower() == "admin":
            raise HostError(f"function '{spec.name}': the route '{self.template}' conflicts with the "
                            "host's built-in admin routes")
        self.route = Route(self.template)
        methods = trigger.get("methods") or []
        self.methods = {str(m).upper() for m in methods} or None  # None: any method
        self.auth_level = str(trigger.get("authLevel") or "function").lower()

    def describe(self, base_url: str) -> str:
        methods = ",".join(sorted(self.methods)) if self.methods else "*"
        return f"[{methods}] {base_url}/{self.template} (authLevel: {self.auth_level})"


class HttpServer:
    def __init__(self, specs: list[FunctionSpec], invoker: Invoker, host_json: dict, host_id: str,
                 admin_invoke=None):
        options = section(host_json, "extensions", "http") or {}
        prefix = section(options, "routePrefix")
        self.prefix = "api" if prefix is None else str(prefix)
        self.triggers = [HttpTrigger(s, self.prefix) for s in specs if s.trigger_type == "httpTrigger"]
        # ASP.NET precedence; registration order breaks ties (sorted() is stable).
        self.triggers.sort(key=lambda t: t.route.precedence)
        self.invoker = invoker
        self.host_id = host_id
        self.admin_invoke = admin_invoke
        self.custom_headers = dict(section(options, "customHeaders") or {})
        concurrent = parse_int(section(options, "maxConcurrentRequests") or -1, "http.maxConcurrentRequests")
        self.limit = asyncio.Semaphore(concurrent) if concurrent > 0 else None
        self.max_outstanding = parse_int(section(options, "maxOutstandingRequests") or -1,
                                         "http.maxOutstandingRequests")
        self.outstanding = 0
        self.started = time.monotonic()
        self.state = "Running"
        self.runner: Optional[web.AppRunner] = None

    async def start(self, host: str, port: int, shutdown_timeout: float) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/admin/host/status", self.status)
        app.router.add_route("*", "/admin/host/ping", lambda r: web.Response(status=200))
        app.router.add_post("/admin/functions/{name}", self.admin_function)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                    shutdown_timeout=shutdown_timeout)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()

    async def stop(self) -> None:
        """Stop accepting connections; requests in flight get the shutdown timeout to finish."""
        self.state = "Stopping"
        if self.runner is not None:
            await self.runner.cleanup()

    async def status(self, request: web.Request) -> web.Response:
        body = {
            "id": self.host_id, "state": self.state, "version": "4.0.0 (offerloop dev host)",
            "versionDetails": "local.host", "platformVersion": "", "instanceId": f"{os.getpid()}",
            "computerName": socket.gethostname(),
            "processUptime": int((time.monotonic() - self.started) * 1000),
        }
        return web.json_response(body)

    async def admin_function(self, request: web.Request) -> web.Response:
        """POST /admin/functions/<name> {"input": "..."}: run a non-HTTP function now."""
        try:
            text = (json.loads(await request.read() or b"{}") or {}).get("input", "")
        except (ValueError, AttributeError):
            return web.Response(status=400, text="the body must be JSON: {\"input\": \"...\"}")
        if self.admin_invoke is None:
            return web.Response(status=404)
        return web.Response(status=await self.admin_invoke(request.match_info["name"], str(text or "")))

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        for trigger in self.triggers:
            values = trigger.route.match(path if path.startswith("/") else "/" + path)
            if values is None:
                continue
            if trigger.methods is not None and request.method.upper() not in trigger.methods:
                continue
            return await self.run(trigger, request, values)
        if path == "/" and request.method in ("GET", "HEAD"):
            return web.Response(text="Your Functions 4.0 app is up and running (offerloop dev host)",
                                content_type="text/html")
        return web.Response(status=404)

    async def run(self, trigger: HttpTrigger, request: web.Request, values: dict) -> web.Response:
        if 0 < self.max_outstanding <= self.outstanding:
            return web.Response(status=429)
        self.outstanding += 1
        try:
            datum = await self._request_datum(request, values)
            if self.limit is not None:
                async with self.limit:
                    result = await self.invoker.invoke(trigger.spec, datum, {})
            else:
                result = await self.invoker.invoke(trigger.spec, datum, {})
            if not result.succeeded:
                return self._with_custom(web.Response(status=500))
            try:
                return self._with_custom(_response(result.return_datum))
            except Exception:
                log.exception("function '%s' returned a response that cannot be sent", trigger.spec.name)
                return web.Response(status=500)
        finally:
            self.outstanding -= 1

    def _with_custom(self, response: web.Response) -> web.Response:
        for name, value in self.custom_headers.items():
            response.headers.setdefault(name, str(value))
        return response

    async def _request_datum(self, request: web.Request, values: dict) -> Datum:
        body = await request.read()
        headers = {k: ", ".join(request.headers.getall(k)) for k in set(request.headers.keys())}
        query = {k: ",".join(request.query.getall(k)) for k in set(request.query.keys())}
        text = lambda v: Datum(v, "string")  # noqa: E731
        return Datum({
            "method": text(request.method),
            "url": text(str(request.url)),
            "headers": {k: text(v) for k, v in headers.items()},
            "query": {k: text(v) for k, v in query.items()},
            "params": {k: text(v) for k, v in values.items()},
            "body": Datum(body, "bytes"),
        }, "http")


def _response(datum: Optional[Datum]) -> web.Response:
    if datum is None:
        return web.Response(status=204)
    if datum.type == "string":
        return web.Response(status=200, body=datum.value.encode("utf-8"),
                            headers={"Content-Type": "text/plain; charset=utf-8"})
    if datum.type != "http":
        raise TypeError(f"unexpected HTTP response datum {datum.type}")
    value = datum.value
    headers = CIMultiDict((k, v.value) for k, v in value["headers"].items())
    for cookie in value.get("cookies") or []:
        for morsel in cookie.values():
            headers.add("Set-Cookie", morsel.OutputString())
    body = value["body"].value if value.get("body") is not None else b""
    return web.Response(status=int(value["status_code"].value), body=body, headers=headers)

