"""Website activity: accept a request's events all-or-nothing, then hand them to the publish port.

Plain Python (no azure.* imports): the HTTP trigger only checks headers and maps errors,
and tests pass a fake `publish`. Every event of the request is validated before any is published, so a bad
request forwards nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from . import events

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB, the Event Hubs Standard tier's largest batch
MAX_EVENTS = 500
# The Basic tier's largest event; website events are tiny, and a bound keeps every event
# well inside one Event Hubs batch.
MAX_EVENT_BYTES = 256 * 1024
MAX_LISTED_ERRORS = 50  # a problem document should stay readable

# Why a request was refused (the API maps each to a status code and a problem type).
BODY_TOO_LARGE = "body-too-large"
TOO_MANY_EVENTS = "too-many-events"
MALFORMED_JSON = "malformed-json"
NOT_EVENTS = "not-events"
EMPTY_BATCH = "empty-batch"
INVALID_EVENTS = "invalid-events"

TITLES = {
    BODY_TOO_LARGE: "Body too large", TOO_MANY_EVENTS: "Too many events", MALFORMED_JSON: "Malformed JSON",
    NOT_EVENTS: "Not events", EMPTY_BATCH: "No events", INVALID_EVENTS: "Invalid events",
}

Publish = Callable[[Sequence[events.Event]], None]


@dataclass(frozen=True)
class EventError:
    index: int  # position of the event in the request (0 for a single event)
    field: str  # dotted path inside the event: "subject", "data.productId"; "" for the event itself
    message: str
    pointer: str  # JSON Pointer into the request body (RFC 6901 fragment)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message, "pointer": self.pointer}


class Rejected(Exception):
    """The request cannot be accepted as sent; nothing of it was published."""

    def __init__(self, reason: str, detail: str, errors: Sequence[EventError] = ()):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.errors = list(errors)

    @property
    def title(self) -> str:
        return TITLES[self.reason]


def check_declared_length(content_length: Optional[str]) -> None:
    """Refuse a body whose declared length (the Content-Length header) is over the limit."""
    if content_length and content_length.strip().isdigit():
        _check_size(int(content_length))


def _check_size(size: int) -> None:
    if size > MAX_BODY_BYTES:
        raise Rejected(BODY_TOO_LARGE, f"the body is {size} bytes; at most {MAX_BODY_BYTES} "
                                       "bytes (1 MiB) are accepted, split the batch")


def accept(raw_body: bytes, publish: Publish, now: Optional[datetime] = None) -> int:
    """Validate every event of a request body, then publish them all; returns how many.

    The body is one CloudEvent (a JSON object) or a JSON array of 1 to MAX_EVENTS of them,
    of the website's types only. An event without `time` gets `now` (the acceptance time).
    Raises Rejected, before publishing anything, when any part of the request is wrong;
    whatever `publish` raises propagates.
    """
    _check_size(len(raw_body))
    document = _decode(raw_body)
    batch = isinstance(document, list)
    items = document if batch else [document]
    if batch and not items:
        raise Rejected(EMPTY_BATCH, "the array holds no events; send 1 to %d" % MAX_EVENTS)
    if len(items) > MAX_EVENTS:
        raise Rejected(TOO_MANY_EVENTS, f"{len(items)} events in one request; at most {MAX_EVENTS}, "
                                        "split the batch")
    accepted = _validate(items, batch, now or datetime.now(timezone.utc))
    publish(accepted)
    return len(accepted)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _decode(raw_body: bytes) -> Any:
    try:
        document = json.loads(raw_body, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise Rejected(MALFORMED_JSON, f"the body is not valid JSON: {error.msg} at line {error.lineno} "
                                       f"column {error.colno} (character {error.pos})") from None
    except UnicodeDecodeError as error:
        raise Rejected(MALFORMED_JSON, f"the body is not UTF-8 text: byte {error.start} is invalid") from None
    except ValueError as error:  # NaN/Infinity (parse_constant)
        raise Rejected(MALFORMED_JSON, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise Rejected(MALFORMED_JSON, "the body is not an event: it nests too deeply") from None
    if not isinstance(document, (dict, list)):
        raise Rejected(NOT_EVENTS, "the body must be one CloudEvent (a JSON object) or a JSON array of them")
    return document


def _error(index: int, batch: bool, field: str, message: str) -> EventError:
    path = ([str(index)] if batch else []) + (field.split(".") if field else [])
    pointer = "#" + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)
    return EventError(index, field, message, pointer)


def _validate(items: list, batch: bool, now: datetime) -> list[events.Event]:
    accepted: list[events.Event] = []
    errors: list[EventError] = []
    first_index_of: dict[str, int] = {}
    for index, raw in enumerate(items):
        try:
            event = events.parse(raw, events.WEBSITE_TYPES, now=now)
        except events.InvalidEvent as invalid:
            errors += [_error(index, batch, e.field, _explain(raw, e)) for e in invalid.errors]
            continue
        if event.id in first_index_of:
            errors.append(_error(index, batch, "id", f"duplicate id: event {first_index_of[event.id]} "
                                                     f"of this request has the same id"))
            continue
        first_index_of[event.id] = index
        size = len(event.to_json().encode("utf-8"))
        if size > MAX_EVENT_BYTES:
            errors.append(_error(index, batch, "", f"the event is {size} bytes; at most {MAX_EVENT_BYTES}"))
            continue
        accepted.append(event)
    if errors:
        shown = errors[:MAX_LISTED_ERRORS]
        more = f" (the first {len(shown)} are listed)" if len(errors) > len(shown) else ""
        bad = len({e.index for e in errors})
        raise Rejected(INVALID_EVENTS, f"{bad} of {len(items)} events are invalid, {len(errors)} "
                                       f"errors{more}; nothing was accepted", shown)
    return accepted


def _explain(raw: Any, error: events.FieldError) -> str:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if error.field == "type" and kind in {t for t, _ in events.SCHEMAS}:
        return f"{kind} is emitted by the offers API, not accepted here; expected one of " \
               f"{', '.join(events.WEBSITE_TYPES)}"
    return error.message
