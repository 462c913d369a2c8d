"""Event position filters on receiver links.

The SDKs ask for a start position with an Apache selector filter on the link
source, e.g. ``amqp.annotation.x-opt-offset > '1234'`` (see
``azure.eventhub._utils.event_position_selector``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from .amqp.link import LinkError
from .amqp.types import Described

SELECTOR_FILTER = "apache.org:selector-filter:string"
SELECTOR_FILTER_CODE = 0x0000468C00000004
_EXPRESSION = re.compile(
    r"^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>|=)\s*'([^']*)'\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class StartPosition:
    kind: str  # "beginning", "latest", "offset", "sequence", "time"
    value: int = 0
    inclusive: bool = False


BEGINNING = StartPosition("beginning")
LATEST = StartPosition("latest")


def selector_from_source_filter(filters: Any) -> Optional[str]:
    """The selector expression in a link source's filter map, if any."""
    if not isinstance(filters, dict):
        return None
    for key, value in filters.items():
        descriptor = value.descriptor if isinstance(value, Described) else key
        expression = value.value if isinstance(value, Described) else value
        if str(key) == SELECTOR_FILTER or descriptor in (SELECTOR_FILTER, SELECTOR_FILTER_CODE):
            if isinstance(expression, bytes):
                expression = expression.decode("utf-8")
            if isinstance(expression, str):
                return expression
    return None


def parse_selector(expression: Optional[str]) -> StartPosition:
    if expression is None:
        return BEGINNING
    match = _EXPRESSION.match(expression)
    if not match:
        raise LinkError("amqp:invalid-field", f"Unsupported event position filter: {expression!r}")
    field, operator, raw = match.group(1).lower(), match.group(2), match.group(3).strip()
    inclusive = operator in (">=", "=")
    if field == "offset":
        if raw == "@latest":
            return LATEST
        if raw == "-1":
            return BEGINNING
    try:
        value = int(raw)
    except ValueError:
        raise LinkError("amqp:invalid-field", f"Invalid value {raw!r} in event position filter {expression!r}") from None
    kind = {"offset": "offset", "sequence-number": "sequence", "enqueued-time": "time"}[field]
    return StartPosition(kind, value, inclusive)
