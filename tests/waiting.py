"""Polling for tests that wait on something asynchronous (a host, an emulator, ingest)."""
from __future__ import annotations

import time
from typing import Callable


def wait_for(check: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll `check` until it returns something truthy and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_until(condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.005):
    """Poll `condition` until it is truthy or `timeout` passes; return its last value (for `assert`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(interval)
    return condition()
