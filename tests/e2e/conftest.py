"""The whole app on the session's local stack, served by the Functions host."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Mapping

import pytest

# The suite's host: the baseline without exploration, so tests can expect its ranking; no
# scheduled retrain of either loop (tests call POST /api/admin/retrain). Tests that need other
# settings restart the host with them (`restarted_host`).
SUITE_SETTINGS = {"EXPLORATION_PERCENTAGE": "0", "RETRAIN_SCHEDULE": "0 0 0 1 1 *",
                  "PERSONALIZER_RETRAIN_SCHEDULE": "0 0 0 1 1 *"}


@contextmanager
def restarted_host(stack, overrides: Mapping[str, str]) -> Iterator[None]:
    """The host restarted with these settings over the suite's; afterwards the suite's host again."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**SUITE_SETTINGS, **overrides}.items():
            patch.setenv(name, value)
        stack.down(["host"])
        stack.up(["host"])
        try:
            yield
        finally:
            stack.down(["host"])
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SUITE_SETTINGS.items():
            patch.setenv(name, value)
        stack.up(["host"])


@pytest.fixture(scope="session")
def api(stack) -> str:
    """Base URL of the running app (`http://127.0.0.1:<port>/api`)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SUITE_SETTINGS.items():
            patch.setenv(name, value)
        stack.up(["host"])
        try:
            yield f"http://127.0.0.1:{stack.config.ports.host}/api"
        finally:
            stack.down(["host"])
