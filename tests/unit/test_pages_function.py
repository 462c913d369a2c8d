"""GET /api/dashboard, /api/store and /api/static/{*path} as the host calls them, and web/ itself:
the catalog embedded and escaped, static files with their types and caching, nothing outside web/
served, nothing loaded from another origin, and the vendored Chart.js identical to the npm package's."""
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import azure.functions as func
import pytest

from functions import pages as pages_api
from local import vendor
from shared import bootstrap, pages
from shared.catalog_cache import build_snapshot

from .offer_fakes import NOW

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
HOSTILE = "</script><script>alert(1)</script><!-- & \u2028"
SNAPSHOT = build_snapshot(
    [{"id": "p2", "name": "Eco Kettle", "category": "kitchen", "brand": "Norvik", "price": 45},
     {"id": "p1", "name": HOSTILE, "category": "toys", "brand": "Lu<b>", "price": 12.5}],
    [{"id": "o1", "title": "10 % off toys </script>", "kind": "category_discount", "category": "toys",
      "validFrom": "2026-01-01T00:00:00Z", "validTo": "2036-01-01T00:00:00Z", "rules": {}},
     {"id": "o2", "title": "Free shipping", "kind": "free_shipping", "minBasket": 50,
      "validFrom": "2026-01-01T00:00:00Z", "validTo": "2036-01-01T00:00:00Z", "rules": {}}],
    [], now=NOW)


class Holder:
    def __init__(self, snapshot):
        self.snapshot = snapshot

    def get(self):
        if isinstance(self.snapshot, Exception):
            raise self.snapshot
        return self.snapshot


@pytest.fixture
def catalog(monkeypatch):
    holder = Holder(SNAPSHOT)
    monkeypatch.setattr(bootstrap, "catalog_cache", lambda: holder)
    return holder


def call(fn, path: str, params=None, route_params=None, headers=None) -> func.HttpResponse:
    request = func.HttpRequest("GET", f"http://localhost/api/{path}", params=params or {}, body=b"",
                               route_params=route_params or {}, headers=headers or {})
    return fn.build().get_user_function()(request)


def static(path: str, **kwargs) -> func.HttpResponse:
    return call(pages_api.static_file, f"static/{path}", route_params={"path": path}, **kwargs)


class Elements(HTMLParser):
    """Every element's tag and attributes, and the text of each <script>."""

    def __init__(self):
        super().__init__()
        self.elements, self.scripts, self._script = [], [], None

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._script = (dict(attrs), [])

    def handle_data(self, data):
        if self._script is not None:
            self._script[1].append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None


def parsed(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser


def test_the_dashboard_is_html_with_the_headline_numbers_the_browser_test_reads():
    response = call(pages_api.dashboard_page, "dashboard")
    html = response.get_body().decode()
    assert response.status_code == 200 and response.mimetype == "text/html" and response.charset == "utf-8"
    ids = {attrs.get("id") for _, attrs in parsed(html).elements}
    assert {"total-impressions", "total-clicks", "total-ctr", "events-per-second", "model-version",
            "last-updated", "status"} <= ids
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    scripts = [attrs for tag, attrs in parsed(html).elements if tag == "script"]
    assert scripts and all("defer" in attrs for attrs in scripts)


def test_the_store_embeds_the_catalog_as_json_that_no_product_name_can_break_out_of(catalog):
    response = call(pages_api.store_page, "store")
    html = response.get_body().decode()
    assert response.status_code == 200 and response.mimetype == "text/html"
    data_blocks = [(attrs, text) for attrs, text in parsed(html).scripts if attrs.get("id") == "catalog"]
    assert len(data_blocks) == 1 and data_blocks[0][0]["type"] == "application/json"
    assert json.loads(data_blocks[0][1]) == {
        "products": [{"id": "p1", "name": HOSTILE, "category": "toys", "brand": "Lu<b>", "price": 12.5},
                     {"id": "p2", "name": "Eco Kettle", "category": "kitchen", "brand": "Norvik", "price": 45.0}],
        "offers": [{"id": "o1", "title": "10 % off toys </script>", "kind": "category_discount", "category": "toys"},
                   {"id": "o2", "title": "Free shipping", "kind": "free_shipping", "category": None}]}
    # the hostile name ended no element: the page has its own scripts plus the data block, nothing more
    assert [attrs.get("src", attrs.get("id")).split("?")[0] for attrs, _ in parsed(html).scripts] == [
        "static/common.js", "static/store.js", "catalog"]
    assert "alert(1)</script>" not in html and "<!--" not in html and "\u2028" not in html


def test_the_store_page_is_rendered_once_per_catalog_snapshot(catalog):
    first = call(pages_api.store_page, "store").get_body()
    assert pages.site().store(SNAPSHOT) is pages.site().store(SNAPSHOT)
    catalog.snapshot = build_snapshot([{"id": "p9", "name": "New", "category": "books", "price": 3}], [], [], now=NOW)
    second = call(pages_api.store_page, "store").get_body()
    assert b'"p9"' in second and b'"p9"' not in first


@pytest.mark.parametrize("failure", [build_snapshot([], [], [], now=NOW), RuntimeError("cosmos unreachable")])
def test_without_a_catalog_the_store_is_a_503_problem(catalog, failure):
    catalog.snapshot = failure
    response = call(pages_api.store_page, "store")
    body = json.loads(response.get_body())
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    assert body["type"] == "urn:offerloop:problem:catalog-unavailable" and response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("path, mimetype", [
    ("dashboard.js", "text/javascript"), ("store.js", "text/javascript"), ("common.js", "text/javascript"),
    ("style.css", "text/css"),
    ("favicon.svg", "image/svg+xml"), ("vendor/chart.js/chart.umd.min.js", "text/javascript"),
    ("vendor/chart.js/LICENSE.md", "text/markdown"),
])
def test_static_files_are_served_from_web_with_their_content_type(path, mimetype):
    response = static(path)
    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.get_body() == (WEB / path).read_bytes()
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_vendored_chart_js_is_immutable_under_its_hash_and_revalidated_otherwise():
    path = "vendor/chart.js/chart.umd.min.js"
    plain = static(path)
    etag = plain.headers["ETag"]
    version = etag.strip('"')
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag) and plain.headers["Cache-Control"] == "no-cache"
    assert static(path, params={"v": version}).headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert static(path, params={"v": "0" * 16}).headers["Cache-Control"] == "no-cache"
    unchanged = static(path, headers={"If-None-Match": f'W/{etag}, "other"'})
    assert unchanged.status_code == 304 and unchanged.get_body() == b"" and unchanged.headers["ETag"] == etag
    assert static(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_pages_link_each_static_file_by_its_current_hash(catalog):
    html = call(pages_api.dashboard_page, "dashboard").get_body().decode()
    links = dict(re.findall(r'"static/([^"?]+)\?v=([0-9a-f]{16})"', html))
    assert set(links) == {"favicon.svg", "style.css", "vendor/chart.js/chart.umd.min.js", "common.js", "dashboard.js"}
    for path, version in links.items():
        assert static(path).headers["ETag"] == f'"{version}"'


@pytest.mark.parametrize("path", [
    "../function_app.py", "vendor/../../function_app.py", "..%2Ffunction_app.py", "%2e%2e/host.json",
    "/etc/passwd", "dashboard.html", "store.html", "", "vendor", "vendor/chart.js", "./style.css",
    "STYLE.CSS", "style.css/", "vendor/chart.js/../../store.html", "..\\function_app.py",
])
def test_anything_but_a_static_file_is_a_404(path):
    response = static(path)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def _html_files() -> list[Path]:
    return sorted(WEB.glob("*.html"))


@pytest.mark.parametrize("page", _html_files(), ids=lambda p: p.name)
def test_every_src_and_href_in_the_pages_is_same_origin(page):
    urls = [value for _, attrs in parsed(page.read_text()).elements
            for name, value in attrs.items() if name in ("src", "href", "action", "srcset", "poster", "data")]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and not url.startswith("//"), url


@pytest.mark.parametrize("asset", sorted([*WEB.glob("*.js"), *WEB.glob("*.css")]), ids=lambda p: p.name)
def test_the_pages_scripts_and_styles_name_no_other_origin(asset):
    text = asset.read_text()
    assert not re.search(r"https?://|@import|url\(\s*['\"]?//", text), asset.name


def test_the_vendored_chart_js_is_the_installed_packages_file_with_its_licence():
    package = json.loads((ROOT / "package.json").read_text())
    version = package["devDependencies"]["chart.js"]
    assert re.fullmatch(r"4\.\d+\.\d+", version)  # pinned exactly
    installed = json.loads((ROOT / "node_modules/chart.js/package.json").read_text())["version"]
    assert installed == version
    for source, copy in vendor.pairs():
        assert copy.read_bytes() == source.read_bytes(), copy
    bundle = WEB / "vendor/chart.js/chart.umd.min.js"
    assert f"Chart.js v{version}" in bundle.read_text()[:200]
    licence = (WEB / "vendor/chart.js/LICENSE.md").read_text()
    assert "MIT License" in licence and "Chart.js Contributors" in licence
    assert vendor.stale() == [] and package["scripts"]["vendor"] == "python3 -m local.vendor"


def test_web_is_deployed_with_the_app():
    ignored = set((ROOT / ".funcignore").read_text().split())
    assert not {"web", "web/", "web/*", "web/**"} & ignored


def test_a_page_linking_a_missing_static_file_or_a_store_page_without_its_slot_is_refused(tmp_path):
    (tmp_path / "style.css").write_text("body {}")
    (tmp_path / "dashboard.html").write_text('<link rel="stylesheet" href="static/style.css">')
    (tmp_path / "store.html").write_text('<script type="application/json" id="catalog">{{catalog}}</script>')
    assert pages.Site(tmp_path).pages["dashboard"].startswith('<link rel="stylesheet" href="static/style.css?v=')
    (tmp_path / "store.html").write_text("<p>no catalog</p>")
    with pytest.raises(ValueError, match="catalog"):
        pages.Site(tmp_path)
    (tmp_path / "store.html").write_text('<script src="static/missing.js"></script>{{catalog}}')
    with pytest.raises(ValueError, match="missing.js"):
        pages.Site(tmp_path)


@pytest.mark.parametrize("fn, route", [(pages_api.dashboard_page, "dashboard"), (pages_api.store_page, "store"),
                                       (pages_api.static_file, "static/{*path}")])
def test_the_pages_are_anonymous_gets(fn, route):
    trigger = json.loads(fn.build().get_function_json())["bindings"][0]
    assert trigger["route"] == route and trigger["methods"] == ["GET"] and trigger["authLevel"] == "ANONYMOUS"
