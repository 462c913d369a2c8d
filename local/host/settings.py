"""App settings, host.json and connections, read the way the Functions host reads them.

* `local.settings.json` `Values` become environment variables unless the real
  environment already has them (Core Tools does the same).
* host.json keys are case-insensitive, like the host's configuration system.
* `%NAME%` in a binding property is replaced by the app setting NAME.
* A `connection` names either a setting holding a connection string, or a group of
  `<name>__...` settings for an identity-based connection.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

log = logging.getLogger("Host.Settings")


class HostError(Exception):
    """A one-line reason the host cannot start (bad configuration or an unsupported app)."""


def load_local_settings(app_dir: Path, env: dict = os.environ) -> dict[str, str]:
    """Put local.settings.json `Values` into `env` where not already set; return them."""
    path = app_dir / "local.settings.json"
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as error:
        raise HostError(f"{path} is not valid JSON: {error}") from None
    if document.get("IsEncrypted"):
        raise HostError(f"{path} is encrypted (IsEncrypted: true); the dev host cannot decrypt it")
    values = {str(k): "" if v is None else str(v) for k, v in (document.get("Values") or {}).items()}
    for name, value in values.items():
        env.setdefault(name, value)
    return values


def local_http_port(app_dir: Path) -> Optional[int]:
    """local.settings.json "Host": {"LocalHttpPort": ...}, the port Core Tools uses by default."""
    try:
        document = json.loads((app_dir / "local.settings.json").read_text(encoding="utf-8-sig"))
        port = section(document, "Host", "LocalHttpPort")
        return int(port) if port else None
    except (OSError, ValueError, TypeError):
        return None


def load_host_json(app_dir: Path) -> dict:
    path = app_dir / "host.json"
    if not path.exists():
        raise HostError(f"{path} not found: a function app needs a host.json")
    try:
        document = json.loads(_strip_json_comments(path.read_text(encoding="utf-8-sig")))
    except ValueError as error:
        raise HostError(f"{path} is not valid JSON: {error}") from None
    version = str(section(document, "version") or "")
    if version != "2.0":
        raise HostError(f"{path}: \"version\" must be \"2.0\" (got {version!r})")
    return document


def _strip_json_comments(text: str) -> str:
    # The host parses host.json leniently (JSON.NET); allow // and /* */ comments outside strings.
    pattern = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', re.S)
    return pattern.sub(lambda m: m.group(1) or "", text)


def section(document: Any, *path: str) -> Any:
    """document[path...] with case-insensitive keys, or None."""
    node = document
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = next((v for k, v in node.items() if k.lower() == key.lower()), None)
    return node


# -- values ---------------------------------------------------------------------------
_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


def parse_timespan(value: Any, what: str) -> float:
    """A .NET TimeSpan string ([d.]hh:mm[:ss[.fffffff]]) in seconds."""
    match = _TIMESPAN.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise HostError(f"{what}: {value!r} is not a TimeSpan; write it as \"hh:mm:ss\" (e.g. \"00:00:30\")")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    total = (int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
             + (int(fraction) / 10 ** len(fraction) if fraction else 0.0))
    return -total if sign else total


def parse_int(value: Any, what: str, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    try:
        number = int(value)
        if isinstance(value, float) and value != number:
            raise ValueError
    except (TypeError, ValueError):
        raise HostError(f"{what}: {value!r} is not an integer") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise HostError(f"{what}: {number} is outside {minimum}..{maximum}")
    return number


_EXPRESSION = re.compile(r"%([^%]+)%")


def resolve(value: Any, env: Mapping[str, str] = os.environ) -> Any:
    """Replace `%SETTING%` in strings (recursively in lists) with the app setting's value."""
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in env:
            raise HostError(f"'%{name}%' does not resolve to a value (no app setting {name})")
        return env[name]

    return _EXPRESSION.sub(lookup, value)


def setting_bool(name: str, env: Mapping[str, str] = os.environ) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true")


# -- connections ----------------------------------------------------------------------
@dataclass(frozen=True)
class Connection:
    """How to reach one service: a connection string, or an endpoint plus Azure AD credential."""

    name: str
    connection_string: Optional[str] = None
    endpoint: Optional[str] = None  # account/service URI or fully qualified namespace
    client_id: Optional[str] = None  # user-assigned managed identity (<name>__clientId)

    def credential(self):
        from azure.identity.aio import DefaultAzureCredential

        if self.client_id:
            return DefaultAzureCredential(managed_identity_client_id=self.client_id)
        return DefaultAzureCredential()


def _group(prefix: str, env: Mapping[str, str]) -> dict[str, str]:
    start = prefix.lower() + "__"
    return {k[len(start):].lower(): v for k, v in env.items() if k.lower().startswith(start) and v}


def resolve_connection(name: Optional[str], kind: str, default: str = "AzureWebJobsStorage",
                       env: Mapping[str, str] = os.environ) -> Connection:
    """Find the connection named `name` for `kind` ("queue", "blob" or "eventhubs").

    Like the WebJobs SDK, `AzureWebJobs<name>` is tried before `<name>`; then the
    identity-based form `<name>__<serviceUri|queueServiceUri|blobServiceUri|accountName|
    fullyQualifiedNamespace>`.
    """
    name = name or default
    for candidate in (f"AzureWebJobs{name}", name):
        if env.get(candidate):
            return Connection(name, connection_string=env[candidate])
    for candidate in (f"AzureWebJobs{name}", name):
        group = _group(candidate, env)
        endpoint = None
        if kind == "eventhubs":
            endpoint = group.get("fullyqualifiednamespace")
        elif kind == "queue":
            endpoint = group.get("queueserviceuri")
        elif kind == "blob":
            endpoint = group.get("blobserviceuri") or group.get("serviceuri")
        if not endpoint and kind in ("queue", "blob") and group.get("accountname"):
            endpoint = f"https://{group['accountname']}.{kind}.core.windows.net"
        if endpoint:
            return Connection(name, endpoint=endpoint, client_id=group.get("clientid"))
    hint = {"eventhubs": "__fullyQualifiedNamespace", "queue": "__queueServiceUri",
            "blob": "__blobServiceUri"}[kind]
    raise HostError(f"connection '{name}' is not configured: set the app setting {name} to a "
                    f"connection string, or {name}{hint} for an identity-based connection")


def host_id(app_dir: Path, env: Mapping[str, str] = os.environ) -> str:
    """The host ID, as the Functions host derives it (used in storage paths)."""
    explicit = env.get("AzureFunctionsWebHost__hostid") or env.get("AzureFunctionsWebHost:hostid")
    if explicit:
        return explicit.strip().lower()
    site = env.get("WEBSITE_SITE_NAME")
    if site:
        base = site
    else:
        # Core Tools: "<machine name>-<stable hash of the script root>"
        import socket

        stable = 23
        for char in str(app_dir):
            stable = (stable * 31 + ord(char)) & 0xFFFFFFFF
        if stable >= 2 ** 31:
            stable -= 2 ** 32
        base = f"{socket.gethostname()}-{abs(stable)}"
    cleaned = re.sub(r"[^a-z0-9-]", "", base.lower())[:32].rstrip("-")
    return cleaned or "localhost"
