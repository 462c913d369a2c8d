"""RFC 9457 problem details (`application/problem+json`) for every HTTP function's errors.

One shape for all 4xx/5xx answers: `type`, `title`, `status`, `detail` and an `errors` list
(each item names what is wrong, e.g. `{"index": 3, "field": "data.productId", "message": ...}`),
so clients handle errors of every endpoint the same way.
"""
from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Iterable, Mapping, Optional

import azure.functions as func

MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: they identify the problem without promising a web page.
TYPE_PREFIX = "urn:offerloop:problem:"


def type_uri(kind: Optional[str]) -> str:
    return TYPE_PREFIX + kind if kind else "about:blank"


def document(status: int, detail: Optional[str] = None, *, kind: Optional[str] = None,
             title: Optional[str] = None, errors: Iterable[Mapping[str, Any]] = (),
             **extensions: Any) -> dict[str, Any]:
    """The problem document as a dict; `title` defaults to the status code's phrase."""
    body: dict[str, Any] = {"type": type_uri(kind), "title": title or HTTPStatus(status).phrase,
                            "status": status}
    if detail:
        body["detail"] = detail
    body["errors"] = [dict(e) for e in errors]
    body.update(extensions)
    return body


def problem(status: int, detail: Optional[str] = None, *, kind: Optional[str] = None,
            title: Optional[str] = None, errors: Iterable[Mapping[str, Any]] = (),
            headers: Optional[Mapping[str, str]] = None, **extensions: Any) -> func.HttpResponse:
    """An HTTP response carrying one problem document.

    `kind` names the problem type (`urn:offerloop:problem:<kind>`; `about:blank` when
    omitted, as RFC 9457 prescribes for problems that only restate the status code).
    Extra keyword arguments become extension members of the document.
    """
    body = document(status, detail, kind=kind, title=title, errors=errors, **extensions)
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=MEDIA_TYPE,
                             headers={"Cache-Control": "no-store", **(headers or {})})


def bounded_int(raw: Optional[str], default: int, low: int, high: int) -> Optional[int]:
    """A query parameter as an int from low to high (default when absent or blank), or None when it is not one."""
    if raw is None or raw.strip() == "":
        return default
    raw = raw.strip()
    return int(raw) if raw.isdigit() and low <= int(raw) <= high else None


def invalid_query(errors: list[dict[str, str]]) -> func.HttpResponse:
    """400 for query parameters that are wrong: each error names its field."""
    return problem(400, "; ".join(f"{e['field']}: {e['message']}" for e in errors), kind="invalid-query",
                   errors=errors)
