"""Retraining: on a timer (RETRAIN_SCHEDULE, six-field NCRONTAB) and on demand.

  retrain_models   timer: compacts the archive, and retrains when RETRAIN_EVERY_IMPRESSIONS new
                   decisions have arrived since the last retrain
  POST /api/admin/retrain   the same job now, whatever the count; 200 with the report
                   ({"promoted", "reason", "version", "evaluation", "data", ...})
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import bootstrap, problems

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%RETRAIN_SCHEDULE%", arg_name="timer", run_on_startup=False)
def retrain_models(timer: func.TimerRequest) -> None:
    report = bootstrap.retrain(force=False)
    log.info("retrain%s: %s", " (past due)" if timer.past_due else "", report.get("reason"))


# An admin operation: a function key in Azure.
@bp.route(route="admin/retrain", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def admin_retrain(req: func.HttpRequest) -> func.HttpResponse:
    try:
        report = bootstrap.retrain(force=True)
    except Exception as error:  # a dependency failed (storage unreachable, ...): say so, nothing was promoted
        log.exception("retrain failed")
        return problems.problem(503, f"the retrain job failed, nothing was promoted: {type(error).__name__}: {error}",
                                kind="retrain-failed", title="Retrain failed", headers={"Retry-After": "30"})
    return func.HttpResponse(json.dumps(report), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})
