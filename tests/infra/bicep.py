"""The Bicep template as data: every file parsed with pycep, and the pieces the tests compare."""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
BICEP_DIR = ROOT / "infra" / "bicep"
MAIN = BICEP_DIR / "main.bicep"


def bicep_files() -> list[Path]:
    return sorted(BICEP_DIR.rglob("*.bicep"))


@lru_cache(maxsize=None)
def parse(path: Path) -> dict:
    return BicepParser().parse(file_path=path)


def parse_text(text: str) -> dict:
    return BicepParser().parse(text=text)


def resources(path: Path, type_: str | None = None) -> dict[str, dict]:
    """Symbolic name -> resource (its `config` holds the body), optionally of one type."""
    found = parse(path).get("resources") or {}
    return {name: r for name, r in found.items() if type_ is None or r["type"].lower() == type_.lower()}


def all_resources(type_: str) -> list[tuple[Path, str, dict]]:
    return [(path, name, r) for path in bicep_files() for name, r in resources(path, type_).items()]


def body(resource: dict) -> dict:
    """A resource's properties, also when it is a loop (`for x in xs: {...}`) or conditional."""
    config = resource["config"]
    while "config" in config and "properties" not in config:
        config = config["config"]
    return config


def variable(path: Path, name: str) -> Any:
    return parse(path)["variables"][name]["value"]


def outputs(path: Path) -> dict[str, dict]:
    return parse(path).get("outputs") or {}


def walk(value: Any) -> Iterator[Any]:
    """Every node of a parsed value (dicts, lists, strings)."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def app_settings() -> dict[str, Any]:
    """name -> value of the Function App's app settings (siteConfig.appSettings)."""
    sites = [(path, name, r) for path, name, r in all_resources("Microsoft.Web/sites")
             if not r.get("existing")]
    assert len(sites) == 1, f"expected one Function App in the template, found {[(p.name, n) for p, n, _ in sites]}"
    path, _, site = sites[0]
    settings = body(site)["properties"]["siteConfig"]["appSettings"]
    if isinstance(settings, list):
        return {item["name"]: item["value"] for item in settings}
    # [for setting in items(<variable>): { name: setting.key, value: setting.value }]
    loop, item = settings["loop_type"]["detail"], settings["config"]
    source = loop.get("object_name") or loop["array_name"]["function"]["parameters"]["arg_1"]
    assert text_of(item["name"]).count('"key"') == 1 and text_of(item["value"]).count('"value"') == 1, item
    return dict(variable(path, source))


def text_of(value: Any) -> str:
    return json.dumps(value, default=str)


def indexed_functions():
    """function_app.app.get_functions() on a copy: the call records the names it saw and refuses
    to see them again, so the app itself stays fresh for tests/unit/test_function_app.py."""
    import function_app

    app = copy.copy(function_app.app)
    app.functions_bindings = None
    return app.get_functions()
