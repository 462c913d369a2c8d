"""GET /api/dashboard, /api/store and /api/static/{*path}: the app's own pages, served from web/ (shared/pages.py)."""
from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap, pages, problems

bp = func.Blueprint()
log = logging.getLogger(__name__)


def _html(body: str) -> func.HttpResponse:
    return func.HttpResponse(body, status_code=200, mimetype="text/html", charset="utf-8",
                             headers={"Cache-Control": "no-cache", **pages.SECURITY_HEADERS})


# Anonymous, like the offers and events the pages call: they are opened in a browser.
@bp.route(route="dashboard", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def dashboard_page(req: func.HttpRequest) -> func.HttpResponse:
    return _html(pages.site().pages["dashboard"])


@bp.route(route="store", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def store_page(req: func.HttpRequest) -> func.HttpResponse:
    try:
        snapshot = bootstrap.catalog_cache().get()
    except Exception as error:  # settings or the catalog's store unusable: the page cannot be built
        log.warning("the store page has no catalog: %s", error)
        snapshot = None
    if snapshot is None or not snapshot.products:
        return problems.problem(503, "the catalog is not loaded (yet); try again in a few seconds",
                                kind="catalog-unavailable", title="Catalog unavailable", headers={"Retry-After": "5"})
    return _html(pages.site().store(snapshot))


@bp.route(route="static/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def static_file(req: func.HttpRequest) -> func.HttpResponse:
    asset = pages.site().asset(req.route_params.get("path") or "")
    if asset is None:
        return problems.problem(404, "no such static file", kind="not-found", title="Not found")
    headers = {"ETag": asset.etag, "Cache-Control": asset.cache_control(req.params.get("v")),
               "X-Content-Type-Options": "nosniff"}
    if asset.matches(req.headers.get("If-None-Match")):
        return func.HttpResponse(status_code=304, headers=headers)
    return func.HttpResponse(asset.body, status_code=200, mimetype=asset.mimetype, headers=headers)
