"""GET /api/products/{id}/related as the host calls it: validation, unknown products, similar then popular."""
import json

import azure.functions as func
import numpy as np
import pytest

from functions import products as products_api
from shared import bootstrap
from shared.affinity import GLOBAL, Related
from shared.catalog_cache import build_snapshot

from .offer_fakes import NOW

SNAPSHOT = build_snapshot([{"id": f"p{i}", "name": f"product {i}", "category": "toys" if i < 4 else "books",
                            "brand": "B", "price": 10.0 + i} for i in range(5)], [], [], now=NOW)
# p0 is most like p1, then p4 (another category); p5 is not in the catalog any more
TABLE = Related(items=["p0", "p1", "p4", "p5"], indptr=np.array([0, 3, 3, 3, 3]), indices=np.array([1, 2, 3], np.int32),
                scores=np.array([0.6, 0.3, 0.2], np.float32), coldstart={GLOBAL: [("p3", 0.5), ("p4", 0.3), ("p2", 0.2)]},
                version="v7")


class Caches:
    def __init__(self, table):
        self.table = table

    def get(self):
        return self.table


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(bootstrap, "catalog_cache", lambda: Caches(SNAPSHOT))
    holder = Caches(TABLE)
    monkeypatch.setattr(bootstrap, "related_cache", lambda: holder)
    return holder


def call(product_id: str, params: dict) -> func.HttpResponse:
    request = func.HttpRequest("GET", f"http://localhost/api/products/{product_id}/related", params=params, body=b"",
                               route_params={"productId": product_id})
    return products_api.related_products.build().get_user_function()(request)


def test_related_products_are_the_similar_ones_then_the_categorys_most_liked(table):
    response = call("p0", {"n": "4"})
    body = json.loads(response.get_body())
    assert response.status_code == 200 and body["productId"] == "p0" and body["version"] == "v7"
    assert [(r["productId"], r["basis"]) for r in body["related"]] == [
        ("p1", "similar"), ("p4", "similar"), ("p3", "popular"), ("p2", "popular")]
    assert body["related"][0] == {"productId": "p1", "score": 0.6, "basis": "similar", "name": "product 1",
                                  "category": "toys", "brand": "B", "price": 11.0}
    assert [r["productId"] for r in json.loads(call("p0", {"n": "1"}).get_body())["related"]] == ["p1"]


def test_without_a_table_yet_the_answer_is_an_empty_list(table):
    table.table = None
    body = json.loads(call("p0", {}).get_body())
    assert body == {"productId": "p0", "related": [], "version": None}


@pytest.mark.parametrize("product_id, params, status, field", [
    ("p0", {"n": "0"}, 400, "n"), ("p0", {"n": "51"}, 400, "n"), ("p0", {"n": "ten"}, 400, "n"),
    ("x" * 200, {}, 400, "productId"), ("nope", {}, 404, "productId"),
])
def test_a_bad_query_or_an_unknown_product_is_a_problem(table, product_id, params, status, field):
    response = call(product_id, params)
    body = json.loads(response.get_body())
    assert response.status_code == status and response.mimetype == "application/problem+json"
    assert [e["field"] for e in body["errors"]] == [field]
