"""The app's own pages (GET /api/dashboard, /api/store) and their static files, from web/.

web/ is read once per process and served from memory. The pages link their static files as
`static/<path>?v=<hash of the file>`, so a browser may keep them for a year (`immutable`) and
still fetches a changed file at once; a static URL without the current hash is revalidated
through its ETag. Only the top-level scripts, styles and icon and the files under web/vendor/
are static files: any other path (`..`, the HTML, a directory) is simply not in the table.

The store page carries the catalog (products and offers) as JSON in
`<script type="application/json" id="catalog">`, escaped so that nothing in a product name
(`</script>`, `<!--`) can end the element.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Optional

from .catalog import Offer, Product
from .catalog_cache import Snapshot

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGES = {"dashboard": "dashboard.html", "store": "store.html"}
MIMETYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".md": "text/markdown"}
CATALOG_SLOT = "{{catalog}}"  # where store.html takes the catalog JSON
# The store page stays small if the catalog grows; products beyond these are reached through related products.
MAX_PRODUCTS = 2000
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The pages load nothing from another origin, and run no inline script or style.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_STATIC_LINK = re.compile(r'\b(src|href)="static/([^"?#]+)"')
_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})


@dataclass(frozen=True)
class Asset:
    """One static file: its path under web/ ('/'-separated), bytes, media type and content hash."""

    path: str
    body: bytes
    mimetype: str
    version: str

    @classmethod
    def of(cls, path: str, body: bytes) -> "Asset":
        return cls(path, body, MIMETYPES[Path(path).suffix], hashlib.sha256(body).hexdigest()[:16])

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def cache_control(self, version: Optional[str]) -> str:
        """Immutable when asked for by its current hash (the pages' links), else revalidated."""
        return IMMUTABLE if version == self.version else REVALIDATE

    def matches(self, if_none_match: Optional[str]) -> bool:
        """Whether an If-None-Match header names this version (a 304 then)."""
        tags = {tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")}
        return self.etag in tags or "*" in tags


def load_assets(root: Path) -> dict[str, Asset]:
    """The static files: web/'s top-level scripts, styles and icons, and everything servable under vendor/."""
    assets = {}
    for file in sorted(root.rglob("*")):
        path = file.relative_to(root).as_posix()
        if file.is_file() and file.suffix in MIMETYPES and ("/" not in path or path.startswith("vendor/")):
            assets[path] = Asset.of(path, file.read_bytes())
    return assets


def script_json(value: Any) -> str:
    """JSON that is safe as the text of an HTML <script> element (`<`, `>`, `&` as \\u escapes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_SCRIPT_ESCAPES)


def catalog_document(products: Iterable[Product], offers: Iterable[Offer]) -> dict[str, list[dict]]:
    """What the store page needs of the catalog: products (by id, at most MAX_PRODUCTS) and offers."""
    listed = sorted(products, key=lambda p: p.id)[:MAX_PRODUCTS]
    return {"products": [{"id": p.id, "name": p.name, "category": p.category, "brand": p.brand, "price": p.price}
                         for p in listed],
            "offers": [{"id": o.id, "title": o.title, "kind": o.kind, "category": o.category} for o in offers]}


class Site:
    """web/ in memory: the two pages with versioned static links, and the static files."""

    def __init__(self, root: Path = WEB_DIR):
        self.assets = load_assets(root)
        self.pages = {name: self._link((root / file).read_text(encoding="utf-8")) for name, file in PAGES.items()}
        if self.pages["store"].count(CATALOG_SLOT) != 1:
            raise ValueError(f"{PAGES['store']} must hold {CATALOG_SLOT} exactly once")
        self._store: tuple[Optional[Snapshot], str] = (None, "")
        self._lock = threading.Lock()

    def _link(self, html: str) -> str:
        def versioned(match: re.Match) -> str:
            asset = self.assets.get(match.group(2))
            if asset is None:
                raise ValueError(f"a page links to static/{match.group(2)}, which is not a static file")
            return f'{match.group(1)}="static/{asset.path}?v={asset.version}"'

        return _STATIC_LINK.sub(versioned, html)

    def asset(self, path: str) -> Optional[Asset]:
        return self.assets.get(path)

    def store(self, snapshot: Snapshot) -> str:
        """The store page with this catalog snapshot, rendered once per snapshot."""
        with self._lock:
            rendered_for, html = self._store
            if rendered_for is not snapshot:
                catalog = script_json(catalog_document(snapshot.products.values(), snapshot.offers))
                html = self.pages["store"].replace(CATALOG_SLOT, catalog)
                self._store = (snapshot, html)
            return html


@lru_cache(maxsize=1)
def site() -> Site:
    return Site()
