"""GET /api/offers?userId=U[&productId=P][&n=3]: the shopper's offers, logged as an offer.shown event."""
from __future__ import annotations

import json
import logging

import azure.functions as func

from shared import bootstrap, offers, problems

bp = func.Blueprint()
log = logging.getLogger(__name__)


# Anonymous: the storefront asks from shoppers' browsers, which cannot keep a function key.
@bp.route(route="offers", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_offers(req: func.HttpRequest) -> func.HttpResponse:
    user_id = (req.params.get("userId") or "").strip()
    n = problems.bounded_int(req.params.get("n"), offers.DEFAULT_OFFERS, offers.MIN_OFFERS, offers.MAX_OFFERS)
    errors = []
    if not user_id or len(user_id) > offers.MAX_ID_LENGTH:
        errors.append({"field": "userId", "message": f"required, 1 to {offers.MAX_ID_LENGTH} characters"})
    if n is None:
        errors.append({"field": "n", "message": f"an integer from {offers.MIN_OFFERS} to {offers.MAX_OFFERS}"})
    if errors:
        return problems.invalid_query(errors)
    product_id = (req.params.get("productId") or "").strip() or None
    decision = offers.decide(user_id, product_id, n, bootstrap.offer_ports())
    return func.HttpResponse(json.dumps(decision.to_dict()), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "no-store"})
