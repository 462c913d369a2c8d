"""GET /api/health: the app and each dependency it talks to."""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import bootstrap, health
from shared.settings import SettingsError

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_health(req: func.HttpRequest) -> func.HttpResponse:
    try:
        probes = bootstrap.health_probes(bootstrap.app_settings())
        report = health.check(probes).to_dict()
    except SettingsError as error:
        report = {"status": health.DEGRADED, "dependencies": {"settings": str(error)}}
    if report["status"] != health.OK:
        log.warning("health degraded: %s", report["dependencies"])
    return func.HttpResponse(json.dumps(report), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})
