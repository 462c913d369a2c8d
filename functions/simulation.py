"""The shopper simulation: its HTTP API and the two queue functions that move simulated users.

  POST /api/simulation/start {users, rate?, seed?, slots?, world?}  202 with the run
  POST /api/simulation/stop                                          200 with the stopped run
  GET  /api/simulation/status                                        200 counters, CTRs, curve
  simulate_action  (queue simulation-actions)   one step of a user -> the outcome on simulation-responses
  schedule_next    (queue simulation-responses) the user's next step, delayed, onto simulation-actions
"""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import bootstrap, problems
from shared.simulation import run, service

bp = func.Blueprint()
log = logging.getLogger(__name__)

STORAGE = "AzureWebJobsStorage"


def _json(body: dict, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})


# Starting and stopping take a function key in Azure; the status is public (the dashboard reads it).
@bp.route(route="simulation/start", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def simulation_start(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body = json.loads(req.get_body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return problems.problem(400, f"the body is not valid JSON: {error}", kind="malformed-json",
                                title="Malformed JSON")
    try:
        config = service.start(body, bootstrap.simulation_ports())
    except run.InvalidStart as error:
        return problems.problem(400, str(error), kind="invalid-simulation", title="Invalid simulation",
                                errors=error.errors)
    except run.AlreadyRunning as error:
        return problems.problem(409, str(error), kind="simulation-running", title="Simulation running",
                                runId=error.run_id)
    except service.NoCatalog as error:
        return problems.problem(409, str(error), kind="no-catalog", title="No catalog",
                                headers={"Retry-After": "2"})
    return _json({"state": config.state, **config.model_dump(exclude={"state"})}, 202)


@bp.route(route="simulation/stop", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def simulation_stop(req: func.HttpRequest) -> func.HttpResponse:
    config = service.stop(bootstrap.simulation_ports())
    if config is None:
        return _json({"state": "idle", "runId": None})
    return _json({"state": config.state, **config.model_dump(exclude={"state"})})


@bp.route(route="simulation/status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def simulation_status(req: func.HttpRequest) -> func.HttpResponse:
    return _json(service.status(bootstrap.simulation_ports()))


@bp.queue_trigger(arg_name="msg", queue_name=service.ACTIONS_QUEUE, connection=STORAGE)
@bp.queue_output(arg_name="response", queue_name=service.RESPONSES_QUEUE, connection=STORAGE)
def simulate_action(msg: func.QueueMessage, response: func.Out[str]) -> None:
    # A malformed message raises: retried up to maxDequeueCount, then moved to simulation-actions-poison.
    outcome = service.perform(msg.get_body().decode("utf-8", errors="replace"), bootstrap.simulation_ports())
    if outcome is not None:
        response.set(outcome)


@bp.queue_trigger(arg_name="msg", queue_name=service.RESPONSES_QUEUE, connection=STORAGE)
def schedule_next(msg: func.QueueMessage) -> None:
    service.follow(msg.get_body().decode("utf-8", errors="replace"), bootstrap.simulation_ports())
