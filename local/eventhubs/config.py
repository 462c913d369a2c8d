"""Loading and validating the emulator's Config.json.

The format is Microsoft's Event Hubs emulator format, plus one optional
per-entity extension, ``RetentionHours`` (a positive number, fractions allowed;
default 24).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

DEFAULT_CONSUMER_GROUP = "$Default"
DEFAULT_RETENTION_HOURS = 24.0
MAX_PARTITIONS = 32
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$")
_GROUP_NAME = re.compile(r"^(?:\$Default|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?)$")


class ConfigError(ValueError):
    """The config file is missing, unreadable or invalid; the message says where."""


@dataclass(frozen=True)
class HubConfig:
    name: str
    partition_count: int
    consumer_groups: List[str] = field(default_factory=list)
    retention_hours: float = DEFAULT_RETENTION_HOURS

    @property
    def retention_ms(self) -> int:
        return max(1, int(self.retention_hours * 3600 * 1000))


@dataclass(frozen=True)
class EmulatorConfig:
    namespace: str
    hubs: List[HubConfig]


def load_config(path: Path) -> EmulatorConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_config(data, source=str(path))


def parse_config(data: Any, source: str = "config") -> EmulatorConfig:
    user = _object(data, "UserConfig", source)
    namespaces = user.get("NamespaceConfig")
    if not isinstance(namespaces, list) or not namespaces:
        raise ConfigError(f"{source}: UserConfig.NamespaceConfig must be a non-empty list")
    hubs: List[HubConfig] = []
    seen: Dict[str, str] = {}
    namespace_name = ""
    for n, namespace in enumerate(namespaces):
        where = f"{source}: UserConfig.NamespaceConfig[{n}]"
        if not isinstance(namespace, dict):
            raise ConfigError(f"{where} must be an object")
        if namespace.get("Type") != "EventHub":
            raise ConfigError(f"{where}.Type must be \"EventHub\" (got {namespace.get('Type')!r})")
        namespace_name = namespace_name or _string(namespace, "Name", where)
        entities = namespace.get("Entities")
        if not isinstance(entities, list) or not entities:
            raise ConfigError(f"{where}.Entities must be a non-empty list of event hubs")
        for e, entity in enumerate(entities):
            hub = _parse_hub(entity, f"{where}.Entities[{e}]")
            if hub.name.lower() in seen:
                raise ConfigError(f"{where}.Entities[{e}]: duplicate event hub name {hub.name!r}")
            seen[hub.name.lower()] = hub.name
            hubs.append(hub)
    return EmulatorConfig(namespace=namespace_name, hubs=hubs)


def _parse_hub(entity: Any, where: str) -> HubConfig:
    if not isinstance(entity, dict):
        raise ConfigError(f"{where} must be an object")
    name = _string(entity, "Name", where)
    if not _NAME.match(name):
        raise ConfigError(f"{where}.Name {name!r}: use letters, digits, '.', '-', '_' (start/end alphanumeric)")
    count = _number(entity.get("PartitionCount"), f"{where}.PartitionCount", integer=True)
    if not 1 <= count <= MAX_PARTITIONS:
        raise ConfigError(f"{where}.PartitionCount must be between 1 and {MAX_PARTITIONS} (got {count})")
    groups = [DEFAULT_CONSUMER_GROUP]
    raw_groups = entity.get("ConsumerGroups", [])
    if not isinstance(raw_groups, list):
        raise ConfigError(f"{where}.ConsumerGroups must be a list of {{\"Name\": ...}} objects")
    for g, group in enumerate(raw_groups):
        group_where = f"{where}.ConsumerGroups[{g}]"
        if not isinstance(group, dict):
            raise ConfigError(f"{group_where} must be an object with a Name")
        group_name = _string(group, "Name", group_where)
        if not _GROUP_NAME.match(group_name):
            raise ConfigError(f"{group_where}.Name {group_name!r} is not a valid consumer group name")
        if group_name.lower() in (existing.lower() for existing in groups):
            if group_name.lower() == DEFAULT_CONSUMER_GROUP.lower():
                continue  # listing $Default explicitly is harmless
            raise ConfigError(f"{group_where}: duplicate consumer group {group_name!r}")
        groups.append(group_name)
    retention = DEFAULT_RETENTION_HOURS
    if "RetentionHours" in entity:
        retention = _number(entity["RetentionHours"], f"{where}.RetentionHours", integer=False)
        if retention <= 0:
            raise ConfigError(f"{where}.RetentionHours must be greater than 0 (got {retention})")
    return HubConfig(name=name, partition_count=int(count), consumer_groups=groups, retention_hours=float(retention))


def _object(data: Any, key: str, source: str) -> Dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise ConfigError(f"{source}: top level must be an object with a {key!r} object")
    return data[key]


def _string(obj: Dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key} must be a non-empty string")
    return value


def _number(value: Any, where: str, integer: bool) -> Any:
    # Microsoft's format writes numbers as strings ("PartitionCount": "4"); accept both.
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{where} is required and must be a number")
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise ConfigError(f"{where} must be a number (got {value!r})") from None
    if integer and isinstance(value, float) and value.is_integer():
        value = int(value)
    if integer and not isinstance(value, int):
        raise ConfigError(f"{where} must be a whole number (got {value!r})")
    if not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number (got {value!r})")
    return value
