"""Personalizer's errors: a status, a code, a message and the fields at fault.

The body is the Cognitive Services error shape Personalizer answers with,
{"error": {"code", "message", "target"?, "details"?, "innerError"?: {"code", "message"}}}, which
azure-core's `HttpResponseError` reads (OData v4: "error" -> "code" and "message"), so the
official clients raise with the same code and message they would get from Azure. `code` is the
HTTP-level code ("BadRequest", "ResourceNotFound"); `inner_code` is Personalizer's specific one
("InvalidRankRequest", "InvalidServiceConfiguration", ...), from the service's PersonalizerErrorCode
list. Each detail names one bad field (`target`, a dotted path such as "actions[3].id").
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Type, TypeVar

import pydantic

# Personalizer's generic messages (its PersonalizerErrorMessages)
BAD_REQUEST = "Request could not be understood by the server."
RESOURCE_NOT_FOUND = "Requested resource does not exist on the server."
# What a Cognitive Services resource answers to a missing or wrong key
UNAUTHORIZED = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
                "a valid key for an active subscription and use a correct regional API endpoint for your resource.")

Model = TypeVar("Model", bound=pydantic.BaseModel)


@dataclass(eq=False)
class PersonalizerError(Exception):
    status: int
    code: str
    message: str
    inner_code: Optional[str] = None
    details: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"({self.inner_code or self.code}) {self.message}"

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        targets = {d.get("target") for d in self.details}
        if len(self.details) == 1 and None not in targets:
            error["target"] = self.details[0]["target"]
        if self.details:
            error["details"] = [dict(d) for d in self.details]
        if self.inner_code:
            error["innerError"] = {"code": self.inner_code, "message": self.message}
        return {"error": error}


def detail(code: str, message: str, target: Optional[str] = None) -> dict[str, Any]:
    """One field's error, as an item of `details`."""
    item = {"code": code, "message": message}
    if target is not None:
        item["target"] = target
    return item


def bad_request(message: str, inner_code: Optional[str] = None,
                details: Iterable[Mapping[str, Any]] = ()) -> PersonalizerError:
    return PersonalizerError(400, "BadRequest", message, inner_code, [dict(d) for d in details])


def not_found(message: str = RESOURCE_NOT_FOUND) -> PersonalizerError:
    return PersonalizerError(404, "ResourceNotFound", message)


def unauthorized() -> PersonalizerError:
    """401 as a Cognitive Services resource answers it (its code is the status, "401")."""
    return PersonalizerError(401, "401", UNAUTHORIZED)


def target(loc: Iterable[Any]) -> str:
    """A pydantic error location as a path: ("actions", 3, "id") -> "actions[3].id"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _pascal(kind: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in kind.split("_")) if "_" in kind or kind.islower() else kind


def invalid(inner_code: str, details: list[dict[str, Any]]) -> PersonalizerError:
    """400 for a request whose fields are wrong; the message lists them."""
    parts = [f"{d['target']}: {d['message']}" if d.get("target") else d["message"] for d in details]
    message = "; ".join(parts[:5]) + (f" (and {len(parts) - 5} more)" if len(parts) > 5 else "")
    return bad_request(message or BAD_REQUEST, inner_code, details)


def parse(model_class: Type[Model], body: bytes) -> Model:
    """The request body as `model_class`, or PersonalizerError 400 naming each bad field.

    The model's `error_code` (a class attribute) is the error's inner code; a model may
    also define `problems()`, the rules across fields, each a `detail(...)`.
    """
    inner_code = getattr(model_class, "error_code", "InvalidRequest")
    if not body or not body.strip():
        raise invalid(inner_code, [detail("EmptyBody", "The request body is empty; a JSON object is expected.")])
    try:
        model = model_class.model_validate_json(body)
    except pydantic.ValidationError as e:
        details = []
        for error in e.errors(include_url=False):
            if error["type"] == "json_invalid":
                details.append(detail("InvalidJson", f"The body is not valid JSON: {error['ctx']['error']}."))
            else:
                details.append(detail(_pascal(error["type"]), error["msg"], target(error["loc"]) or None))
        raise invalid(inner_code, details) from None
    problems = getattr(model, "problems", None)
    found = problems() if problems else []
    if found:
        raise invalid(inner_code, found)
    return model


def json_body(error: PersonalizerError) -> str:
    return json.dumps(error.body())
