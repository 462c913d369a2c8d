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
from shared.personalizer import admin, errors, service

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


def _admin() -> admin.Ports:
    return bootstrap.personalizer_admin_ports()


def _v1(req: func.HttpRequest) -> bool:
    """Whether the client called a v1.0/v1.1-preview path (else 2022-09-01-preview: ?api-version=)."""
    return bool(_VERSION.match((req.route_params.get("path") or "").strip("/")))


def _evaluation_json(req: func.HttpRequest, evaluation: dict) -> dict:
    return admin.v1_json(evaluation) if _v1(req) else admin.preview_json(evaluation)


def _export_model(req: func.HttpRequest, _) -> func.HttpResponse:
    return func.HttpResponse(admin.export_model(_admin().registry), status_code=200,
                             mimetype="application/octet-stream",
                             headers={"Cache-Control": "no-store",
                                      "Content-Disposition": 'attachment; filename="personalizer-model.zip"'})


def _import_model(req: func.HttpRequest, _) -> func.HttpResponse:
    ports = _admin()
    admin.import_model(ports.registry, req.get_body(), ports.clock())
    ports.models_changed()
    return _empty()


def _reset_model(req: func.HttpRequest, _) -> func.HttpResponse:
    ports = _admin()
    admin.reset_model(ports.registry)
    ports.models_changed()
    return _empty()


def _log_properties(req: func.HttpRequest, _) -> func.HttpResponse:
    ports = _admin()
    window = ports.learning_config(ports.settings()).window_days
    return _json(admin.log_properties(ports.load, ports.clock(), window))


def _create_evaluation(req: func.HttpRequest, ids: tuple[str, ...]) -> func.HttpResponse:
    """v1.0: POST /evaluations (201, the evaluation, its Location); 2022-09-01-preview: PUT /evaluations/{id} (200)."""
    evaluation = admin.create_evaluation(ids[0] if ids else None, req.get_body(), _admin())
    if ids:
        return _json(_evaluation_json(req, evaluation))
    location = f"{req.url.split('?')[0].rstrip('/')}/{evaluation['id']}"
    return func.HttpResponse(json.dumps(_evaluation_json(req, evaluation)), status_code=201,
                             mimetype="application/json", headers={"Cache-Control": "no-store", "Location": location})


def _list_evaluations(req: func.HttpRequest, _) -> func.HttpResponse:
    evaluations = admin.list_evaluations(_admin())
    if _v1(req):
        return _json([admin.v1_json(e) for e in evaluations])
    skip, top = _count(req, "skip", 0), _count(req, "top", None)
    picked = evaluations[skip:] if top is None else evaluations[skip:skip + top]
    return _json({"value": [admin.preview_json(e, content=False) for e in picked]})


def _count(req: func.HttpRequest, name: str, default: Optional[int]) -> Optional[int]:
    text = req.params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise errors.bad_request(f"{name} must be a whole number, got {text!r}", "InvalidRequest")
    return int(text)


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
    ("POST", re.compile(r"configurations/applyFromEvaluation"),
     lambda req, _: (admin.apply_from_evaluation(req.get_body(), _admin()), _empty())[1]),
    ("GET", re.compile(r"model"), _export_model),
    ("PUT", re.compile(r"model"), _import_model),
    ("DELETE", re.compile(r"model"), _reset_model),
    ("GET", re.compile(r"model/properties"), lambda req, _: _json(admin.model_properties(_admin().registry))),
    ("GET", re.compile(r"logs/properties"), _log_properties),
    ("DELETE", re.compile(r"logs"), lambda req, _: (admin.delete_log(), _empty())[1]),
    ("GET", re.compile(r"evaluations"), _list_evaluations),
    ("POST", re.compile(r"evaluations"), _create_evaluation),
    ("PUT", re.compile(rf"evaluations/{_ID}"), _create_evaluation),
    ("GET", re.compile(rf"evaluations/{_ID}"),
     lambda req, ids: _json(_evaluation_json(req, admin.get_evaluation(ids[0], _admin())))),
    ("DELETE", re.compile(rf"evaluations/{_ID}"),
     lambda req, ids: (admin.delete_evaluation(ids[0], _admin()), _empty())[1]),
    *((verb, re.compile(r"featureImportances(/[^/]+)?"), lambda req, _: (admin.feature_importances(), _empty())[1])
      for verb in ("GET", "PUT", "DELETE")),
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
    except Exception as error:  # a dependency failed (storage unreachable, ...): said so, not a bare 500
        log.exception("personalizer %s %s failed", req.method, req.url)
        return _error(errors.PersonalizerError(503, "ServiceUnavailable",
                                               f"the operation failed, try again: {type(error).__name__}: {error}"),
                      {"Retry-After": "5"})


@bp.timer_trigger(schedule="%PERSONALIZER_RETRAIN_SCHEDULE%", arg_name="timer", run_on_startup=False)
def personalizer_retrain(timer: func.TimerRequest) -> None:
    report = bootstrap.personalizer_retrain(force=False)
    if not report.get("skipped"):
        log.info("personalizer retrain: %s", report.get("reason"))
