"""POST /api/events: website activity (one CloudEvent or an array of them) onto the activity hub."""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import activity, bootstrap, problems, publisher

bp = func.Blueprint()
log = logging.getLogger(__name__)

CONTENT_TYPES = ("application/json", "application/cloudevents+json", "application/cloudevents-batch+json")
TOO_LARGE = {activity.BODY_TOO_LARGE, activity.TOO_MANY_EVENTS}  # both mean: split the batch


# Anonymous: the storefront posts from shoppers' browsers, which cannot keep a function key.
@bp.route(route="events", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def post_events(req: func.HttpRequest) -> func.HttpResponse:
    media_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        return _unsupported(media_type)
    try:
        activity.check_declared_length(req.headers.get("Content-Length"))
        accepted = activity.accept(req.get_body(), publisher.for_settings(bootstrap.app_settings()))
    except activity.Rejected as error:
        return problems.problem(413 if error.reason in TOO_LARGE else 400, error.detail, kind=error.reason,
                                title=error.title, errors=[e.to_dict() for e in error.errors])
    except publisher.Unavailable as error:
        return problems.problem(503, "the event store is unavailable; send the same events again later",
                                kind="events-unavailable", title="Events unavailable",
                                headers={"Retry-After": str(error.retry_after)})
    log.info("accepted %s events", accepted)
    return func.HttpResponse(json.dumps({"accepted": accepted}), status_code=202, mimetype="application/json")


def _unsupported(media_type: str) -> func.HttpResponse:
    accepted = ", ".join(CONTENT_TYPES)
    return problems.problem(415, f"Content-Type {media_type or '(none)'} is not accepted; send {accepted}",
                            kind="unsupported-media-type", title="Unsupported media type",
                            headers={"Accept-Post": accepted})
