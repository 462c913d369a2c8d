"""Dependency health: run one real call per dependency, concurrently, within a deadline."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable, Mapping

OK = "ok"
DEGRADED = "degraded"

# Probes run on their own pool so a hung dependency cannot take the request threads.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


@dataclass(frozen=True)
class HealthReport:
    status: str
    dependencies: dict[str, str]

    def to_dict(self) -> dict:
        return {"status": self.status, "dependencies": dict(self.dependencies)}


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text[:200]


def check(probes: Mapping[str, Callable[[], object]], timeout: float = 3.0) -> HealthReport:
    """Call every probe; a probe that raises or outlives `timeout` marks its dependency."""
    futures = {name: _pool.submit(probe) for name, probe in probes.items()}
    results: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            results[name] = OK
        except FutureTimeout:
            results[name] = f"no answer within {timeout:g} s"
        except Exception as error:  # any failure is this dependency's state, not the endpoint's
            results[name] = describe(error)
    status = OK if all(v == OK for v in results.values()) else DEGRADED
    return HealthReport(status, results)
