"""GET /api/products/{productId}/related?n=10: the products most often liked together with this one."""
from __future__ import annotations

import json

import azure.functions as func

from shared import affinity, bootstrap, offers, problems

bp = func.Blueprint()
DEFAULT_RELATED = 10


# Anonymous, like the offers: the storefront asks from shoppers' browsers.
@bp.route(route="products/{productId}/related", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def related_products(req: func.HttpRequest) -> func.HttpResponse:
    product_id = (req.route_params.get("productId") or "").strip()
    n = problems.bounded_int(req.params.get("n"), DEFAULT_RELATED, 1, affinity.MAX_RELATED)
    errors = []
    if not product_id or len(product_id) > offers.MAX_ID_LENGTH:
        errors.append({"field": "productId", "message": f"1 to {offers.MAX_ID_LENGTH} characters"})
    if n is None:
        errors.append({"field": "n", "message": f"an integer from 1 to {affinity.MAX_RELATED}"})
    if errors:
        return problems.invalid_query(errors)
    products = bootstrap.catalog_cache().get().products
    product = products.get(product_id)
    if product is None:
        return problems.problem(404, f"no product {product_id!r} in the catalog", kind="unknown-product",
                                errors=[{"field": "productId", "message": "not in the catalog"}])
    table = bootstrap.related_cache().get()

    def describe(item: str) -> dict | None:
        found = products.get(item)
        return None if found is None else {"name": found.name, "category": found.category, "brand": found.brand,
                                           "price": found.price}

    body = {"productId": product_id, "related": affinity.related_products(table, product_id, product.category,
                                                                          describe, n),
            "version": table.version if table is not None else None}
    return func.HttpResponse(json.dumps(body), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "public, max-age=60"})
