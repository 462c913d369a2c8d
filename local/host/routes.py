"""ASP.NET-style route templates, as the Functions host matches HTTP trigger routes.

Supports literals (case-insensitive), `{name}`, `{name?}`, `{name=default}`,
`{name:constraint[:constraint(arg)...]}`, `{*rest}` / `{**rest}` catch-alls and complex
segments such as `{file}.{ext}`. Routes are tried in ASP.NET's precedence order:
literal segments first, then constrained parameters, then plain ones, then catch-alls.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional

from .settings import HostError



def _tokens(segment: str, template: str) -> list[str]:
    """Split a segment into [literal, param, literal, ...]; `{{`/`}}` are escaped braces."""
    tokens, current, i, in_param = [], "", 0, False
    while i < len(segment):
        char, pair = segment[i], segment[i:i + 2]
        if pair in ("{{", "}}"):
            current += char
            i += 2
            continue
        if char == "{" and not in_param:
            tokens.append(current)
            current, in_param = "", True
        elif char == "}" and in_param:
            tokens.append(current)
            current, in_param = "", False
        elif char in "{}":
            raise HostError(f"route '{template}': unbalanced '{char}' in segment '{segment}'")
        else:
            current += char
        i += 1
    if in_param:
        raise HostError(f"route '{template}': unclosed '{{' in segment '{segment}'")
    return tokens + [current]


def _int_range(low: int, high: int) -> Callable[[str], bool]:
    return lambda v: re.fullmatch(r"-?\d+", v) is not None and low <= int(v) <= high


def _float(v: str) -> bool:
    try:
        float(v)
        return v.strip().lower() not in ("nan", "inf", "-inf", "infinity")
    except ValueError:
        return False


def _guid(v: str) -> bool:
    try:
        uuid.UUID(v)
        return True
    except ValueError:
        return False


def _datetime(v: str) -> bool:
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


_SIMPLE = {
    "int": _int_range(-2 ** 31, 2 ** 31 - 1),
    "long": _int_range(-2 ** 63, 2 ** 63 - 1),
    "bool": lambda v: v.lower() in ("true", "false"),
    "decimal": _float, "double": _float, "float": _float,
    "guid": _guid, "datetime": _datetime,
    "alpha": lambda v: re.fullmatch(r"[a-zA-Z]+", v) is not None,
    "required": lambda v: v != "",
}


def _constraint(text: str, template: str) -> Callable[[str], bool]:
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", text, re.S)
    if not match:
        raise HostError(f"route '{template}': cannot parse constraint '{text}'")
    name, arg = match.group(1).lower(), match.group(2)
    if arg is None and name in _SIMPLE:
        return _SIMPLE[name]
    if arg is not None:
        if name == "regex":
            pattern = re.compile(arg, re.I)
            return lambda v: pattern.search(v) is not None
        numbers = [int(a) for a in arg.split(",")] if re.fullmatch(r"-?\d+(,-?\d+)?", arg) else None
        if numbers:
            if name == "min" and len(numbers) == 1:
                return lambda v: _SIMPLE["long"](v) and int(v) >= numbers[0]
            if name == "max" and len(numbers) == 1:
                return lambda v: _SIMPLE["long"](v) and int(v) <= numbers[0]
            if name == "range" and len(numbers) == 2:
                return lambda v: _SIMPLE["long"](v) and numbers[0] <= int(v) <= numbers[1]
            if name == "length":
                low, high = (numbers * 2)[:2]
                return lambda v: low <= len(v) <= high
            if name == "minlength" and len(numbers) == 1:
                return lambda v: len(v) >= numbers[0]
            if name == "maxlength" and len(numbers) == 1:
                return lambda v: len(v) <= numbers[0]
    raise HostError(f"route '{template}': unknown route constraint '{text}'")


@dataclass
class _Param:
    name: str
    optional: bool = False
    default: Optional[str] = None
    catch_all: bool = False
    checks: tuple = ()


def _parse_param(body: str, template: str) -> _Param:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    name, _, rest = body.partition(":")
    default = None
    if "=" in name:
        name, default = name.split("=", 1)
    elif "=" in rest and "(" not in rest.split("=", 1)[0]:
        rest, default = rest.split("=", 1)
    optional = name.endswith("?") or rest.endswith("?")
    name, rest = name.rstrip("?"), rest.rstrip("?")
    if not re.fullmatch(r"[A-Za-z_][\w]*", name):
        raise HostError(f"route '{template}': invalid parameter name '{name}'")
    # Split constraints on ':' outside parentheses.
    parts, depth, current = [], 0, ""
    for char in rest:
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current:
        parts.append(current)
    return _Param(name, optional, default, catch_all, tuple(_constraint(p, template) for p in parts))


class Route:
    """One HTTP trigger route: template -> regex + parameter checks + precedence."""

    def __init__(self, template: str):
        self.template = template
        segments = [s for s in template.strip("/").split("/")] if template.strip("/") else []
        pattern, self.params, self.precedence = "", [], []
        for index, segment in enumerate(segments):
            tokens = _tokens(segment, template)  # literal, param, literal, param, ...
            params = [_parse_param(t, template) for t in tokens[1::2]]
            literal_only = not params
            whole = len(tokens) == 3 and tokens[0] == tokens[2] == ""
            last = index == len(segments) - 1
            for p in params:
                if (p.catch_all or p.optional) and not (whole and last):
                    raise HostError(f"route '{template}': optional and catch-all parameters must be "
                                    "a whole, last segment")
            self.params += params
            if literal_only:
                pattern += "/" + re.escape(segment)
                self.precedence.append(1)
            elif whole and params[0].catch_all:
                pattern += f"(?:/(?P<{params[0].name}>.*))?"
                self.precedence.append(5)
            elif whole:
                body = f"/(?P<{params[0].name}>[^/]+)"
                pattern += f"(?:{body})?" if params[0].optional or params[0].default is not None else body
                self.precedence.append(3 if params[0].checks else 4)
            else:
                names = iter(p.name for p in params)
                piece = "".join(re.escape(t) if i % 2 == 0 else f"(?P<{next(names)}>[^/]+?)"
                                for i, t in enumerate(tokens))
                pattern += "/" + piece
                self.precedence.append(2)
        try:
            self.regex = re.compile(f"^{pattern}/?$" if pattern else "^/?$", re.I)
        except re.error as error:
            raise HostError(f"route '{template}': {error}") from None

    def match(self, path: str) -> Optional[dict[str, str]]:
        """Route values for `path` (starting with '/', prefix removed), or None."""
        found = self.regex.match(path)
        if not found:
            return None
        values = {}
        for param in self.params:
            value = found.group(param.name)
            if value is None or (value == "" and param.catch_all):
                if param.default is not None:
                    values[param.name] = param.default
                continue
            if not all(check(value) for check in param.checks):
                return None
            values[param.name] = value
        return values
