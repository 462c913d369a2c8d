"""The Personalizer-compatible API under /api/personalizer/ (Azure Personalizer 2022-09-01-preview
shapes; the v1.0 and v1.1-preview paths too), so the official clients work with
endpoint=http://<host>/api.

  personalizer_api      one HTTP function for every Personalizer route (a catch-all, routed
                        here): Personalizer's paths, methods and status codes, its error body
                        ({"error": {"code", "message", ...}}), and its key header
                        Ocp-Apim-Subscription-Key when PERSONALIZER_API_KEY is set
  personalizer_retrain  timer (PERSONALIZER_RETRAIN_SCHEDULE): retrains the loop when its
                        modelExportFrequency has passed since the last retrain
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import re
from typing import Callable, Optional

import azure.functions as func

from shared import bootstrap, publisher
from shared.personalizer import errors, service

bp = func.Blueprint()
log = logging.getLogger(__name__)

KEY_HEADER = "Ocp-Apim-Subscription-Key"
# the versions of Personalizer's paths: /personalizer/<version>/rank; 2022-09-01-preview and later
# put the version in the api-version query instead (/personalizer/rank?api-version=...)
_VERSION = re.compile(r"^v1\.(0|1-preview\.\d+)/")
_ID = r"([^/]+)"
Handler = Callable[[func.HttpRequest, tuple[str, ...]], func.HttpResponse]


def _json(body, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})


def _empty(status: int = 204) -> func.HttpResponse:
    return func.HttpResponse(status_code=status, headers={"Cache-Control": "no-store"})


def _error(error: errors.PersonalizerError, headers: Optional[dict] = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(error.body()), status_code=error.status, mimetype="application/json",
                             headers={"Cache-Control": "no-store", **(headers or {})})


def _ports() -> service.Ports:
    return bootstrap.personalizer_ports()


ROUTES: list[tuple[str, re.Pattern, Handler]] = [
    ("POST", re.compile(r"rank"), lambda req, _: _json(service.rank(req.get_body(), _ports()), 201)),
    ("POST", re.compile(r"multislot/rank"),
     lambda req, _: _json(service.rank_multislot(req.get_body(), _ports()), 201)),
    ("POST", re.compile(rf"events/{_ID}/reward"),
     lambda req, ids: (service.reward(ids[0], req.get_body(), _ports()), _empty())[1]),
    ("POST", re.compile(rf"events/{_ID}/activate"), lambda req, ids: (service.activate(ids[0], _ports()), _empty())[1]),
    ("POST", re.compile(rf"multislot/events/{_ID}/reward"),
     lambda req, ids: (service.reward_multislot(ids[0], req.get_body(), _ports()), _empty())[1]),
    ("POST", re.compile(rf"multislot/events/{_ID}/activate"),
     lambda req, ids: (service.activate(ids[0], _ports()), _empty())[1]),
    ("GET", re.compile(r"configurations/service"), lambda req, _: _json(service.service_configuration(_ports()))),
    ("PUT", re.compile(r"configurations/service"),
     lambda req, _: _json(service.update_service_configuration(req.get_body(), _ports()))),
    ("GET", re.compile(r"configurations/policy"), lambda req, _: _json(service.policy(_ports()))),
    ("PUT", re.compile(r"configurations/policy"),
     lambda req, _: _json(service.update_policy(req.get_body(), _ports()))),
    ("DELETE", re.compile(r"configurations/policy"), lambda req, _: _json(service.reset_policy(_ports()))),
]


def route(method: str, path: str) -> tuple[Optional[Handler], tuple[str, ...], bool]:
    """(the handler, its path parameters, whether the path exists for some other method)."""
    path = _VERSION.sub("", path.strip("/"), count=1)
    known = False
    for verb, pattern, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match:
            if verb == method:
                return handler, match.groups(), True
            known = True
    return None, (), known


def _authorized(req: func.HttpRequest) -> bool:
    key = os.environ.get("PERSONALIZER_API_KEY") or ""
    if not key:
        return True
    given = req.headers.get(KEY_HEADER) or ""
    return hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8"))


# Anonymous for the Functions host: Personalizer clients send Ocp-Apim-Subscription-Key, checked here.
@bp.route(route="personalizer/{*path}", methods=["GET", "POST", "PUT", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS)
def personalizer_api(req: func.HttpRequest) -> func.HttpResponse:
    if not _authorized(req):
        return _error(errors.unauthorized())
    handler, ids, known = route(req.method.upper(), req.route_params.get("path") or "")
    if handler is None:
        if known:
            return _error(errors.PersonalizerError(405, "MethodNotAllowed", f"{req.method} is not allowed here"))
        return _error(errors.not_found())
    try:
        return handler(req, ids)
    except errors.PersonalizerError as error:
        return _error(error)
    except publisher.Unavailable as error:
        return _error(errors.PersonalizerError(503, "ServiceUnavailable",
                                               f"the event could not be recorded; try again: {error}"),
                      {"Retry-After": str(error.retry_after)})


@bp.timer_trigger(schedule="%PERSONALIZER_RETRAIN_SCHEDULE%", arg_name="timer", run_on_startup=False)
def personalizer_retrain(timer: func.TimerRequest) -> None:
    report = bootstrap.personalizer_retrain(force=False)
    if not report.get("skipped"):
        log.info("personalizer retrain: %s", report.get("reason"))
