"""Index a v2-model function app the way the Python worker does.

Import the script (function_app.py, or PYTHON_SCRIPT_FILE_NAME) from the app folder,
find the single FunctionApp instance, and turn each of `app.get_functions()` into a
FunctionSpec: its trigger and bindings as the host would read them from the generated
function.json, with `%SETTING%` expressions resolved.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import azure.functions as func

from .settings import HostError, parse_timespan, resolve, section

log = logging.getLogger("Host.Loader")

TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger", "eventHubTrigger")
OUTPUTS = ("queue", "http")
_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$", re.I)
# Properties that are templates or names of settings, not %expressions%.
_NOT_RESOLVED = {"route", "connection", "name", "type", "direction"}


@dataclass(frozen=True)
class RetryPolicy:
    strategy: str  # "fixed_delay" or "exponential_backoff"
    max_retry_count: int  # -1: forever
    delay: float = 0.0
    minimum: float = 0.0
    maximum: float = 0.0

    def delay_for(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        if self.strategy == "fixed_delay":
            return self.delay
        return min(self.maximum, self.minimum * (2 ** (retry - 1)))


@dataclass
class FunctionSpec:
    name: str
    func: Callable[..., Any]
    trigger: dict
    bindings: list[dict]
    retry: Optional[RetryPolicy] = None
    is_async: bool = False
    disabled: bool = False
    extra: dict = field(default_factory=dict)  # per-trigger data the listeners keep

    @property
    def trigger_type(self) -> str:
        return self.trigger["type"]

    @property
    def outputs(self) -> list[dict]:
        return [b for b in self.bindings if b["direction"] == "out" and b["name"] != "$return"]

    @property
    def return_binding(self) -> Optional[dict]:
        return next((b for b in self.bindings if b["name"] == "$return"), None)


def import_app(app_dir: Path) -> func.FunctionRegister:
    script = os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py")
    if not script.endswith(".py") or not (app_dir / script).is_file():
        raise HostError(f"{app_dir / script} not found (the v2 model needs it; "
                        "PYTHON_SCRIPT_FILE_NAME may name another file)")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    module_name = script[:-3]
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        log.error("importing %s failed", script, exc_info=True)
        raise HostError(f"importing {script} failed: {type(error).__name__}: {error}") from None
    apps = [v for v in vars(module).values() if isinstance(v, func.FunctionRegister)]
    if not apps:
        raise HostError(f"could not find a top-level function app instance in {script}")
    if len({id(a) for a in apps}) > 1:
        raise HostError(f"more than one function app instance found in {script}")
    return apps[0]


def index(app_dir: Path, host_json: dict, env=os.environ) -> list[FunctionSpec]:
    app = import_app(app_dir)
    try:
        functions = app.get_functions()
    except Exception as error:
        raise HostError(f"indexing the function app failed: {type(error).__name__}: {error}") from None
    only = section(host_json, "functions")
    specs = []
    for fn in functions:
        spec = _spec(fn, env)
        if only is not None and spec.name.lower() not in {str(n).lower() for n in only}:
            log.info("function %s is not listed in host.json \"functions\"; skipped", spec.name)
            continue
        specs.append(spec)
    names = [s.name.lower() for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HostError(f"duplicate function names: {', '.join(duplicates)}")
    return specs


def _spec(fn: func.Function, env) -> FunctionSpec:
    name = fn.get_function_name()
    if not name or not _NAME.match(name):
        raise HostError(f"function '{name}': invalid function name (letters, digits, _ and -, "
                        "starting with a letter)")
    user_function = fn.get_user_function()
    raw = json.loads(fn.get_function_json())["bindings"]
    bindings = []
    for binding in raw:
        binding = {k: (v if k in _NOT_RESOLVED else _resolve(name, v, env)) for k, v in binding.items()}
        binding["direction"] = str(binding.get("direction", "in")).lower()
        bindings.append(binding)
    triggers = [b for b in bindings if b["type"].lower().endswith("trigger")]
    if len(triggers) != 1:
        raise HostError(f"function '{name}': needs exactly one trigger, found {len(triggers)}")
    trigger = triggers[0]
    if trigger["type"] not in TRIGGERS:
        raise HostError(f"function '{name}': trigger type '{trigger['type']}' is not supported by "
                        f"the dev host (supported: {', '.join(TRIGGERS)})")
    for binding in bindings:
        if binding is trigger:
            continue
        if binding["direction"] != "out" or binding["type"] not in OUTPUTS:
            raise HostError(f"function '{name}': {binding['direction']} binding '{binding['name']}' "
                            f"of type '{binding['type']}' is not supported by the dev host "
                            f"(supported: queue output; http output for HTTP triggers)")
        if binding["type"] == "http" and trigger["type"] != "httpTrigger":
            raise HostError(f"function '{name}': an http output needs an HTTP trigger")
        if binding["type"] == "queue" and "{" in str(binding.get("queueName", "")):
            raise HostError(f"function '{name}': queue output '{binding['name']}': {{...}} binding "
                            "expressions in queueName are not supported by the dev host")
    disabled = any(env.get(k, "").strip().lower() in ("1", "true")
                   for k in (f"AzureWebJobs.{name}.Disabled", f"AzureWebJobs_{name}_Disabled"))
    return FunctionSpec(
        name=name, func=user_function, trigger=trigger, bindings=bindings,
        retry=_retry(name, fn.get_settings_dict("retry_policy")),
        is_async=inspect.iscoroutinefunction(user_function), disabled=disabled,
    )


def _resolve(name: str, value: Any, env) -> Any:
    try:
        return resolve(value, env)
    except HostError as error:
        raise HostError(f"function '{name}': {error}") from None


def _retry(name: str, policy: Optional[dict]) -> Optional[RetryPolicy]:
    if not policy:
        return None
    what = f"function '{name}': retry policy"
    strategy = str(policy.get("strategy", "")).lower()
    try:
        count = int(policy.get("max_retry_count"))
    except (TypeError, ValueError):
        raise HostError(f"{what}: max_retry_count must be an integer (-1 for no limit)") from None
    if strategy == "fixed_delay":
        return RetryPolicy(strategy, count, delay=parse_timespan(policy.get("delay_interval"), what))
    if strategy == "exponential_backoff":
        return RetryPolicy(strategy, count,
                           minimum=parse_timespan(policy.get("minimum_interval"), what),
                           maximum=parse_timespan(policy.get("maximum_interval"), what))
    raise HostError(f"{what}: strategy must be fixed_delay or exponential_backoff, got {strategy!r}")
