"""GET /api/stats?minutes=60: the dashboard's numbers for the last 1 to 1440 minutes (shared/stats.py)."""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import bootstrap, problems, stats

bp = func.Blueprint()
log = logging.getLogger(__name__)


# Anonymous, like the simulation's status: the dashboard polls it from the browser.
@bp.route(route="stats", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_stats(req: func.HttpRequest) -> func.HttpResponse:
    minutes = problems.bounded_int(req.params.get("minutes"), stats.DEFAULT_MINUTES, 1, stats.MAX_MINUTES)
    if minutes is None:
        return problems.invalid_query([{"field": "minutes", "message": f"an integer from 1 to {stats.MAX_MINUTES}"}])
    try:
        body = bootstrap.stats_answers().get(minutes)
    except stats.Unavailable as error:
        log.warning("statistics unavailable: %s", error)
        return problems.problem(503, f"the statistics cannot be read now: {error}", kind="stats-unavailable",
                                title="Statistics unavailable", headers={"Retry-After": "5"})
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})
