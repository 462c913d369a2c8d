"""The whole app on the session's local stack, served by the Functions host."""
from __future__ import annotations

import os

import pytest

# The suite's host: the baseline without exploration, so tests can expect its ranking; no
# scheduled retrain (tests call POST /api/admin/retrain). test_learning_loop.py restarts the
# host with the learning loop's own settings.
SUITE_SETTINGS = {"EXPLORATION_PERCENTAGE": "0", "RETRAIN_SCHEDULE": "0 0 0 1 1 *"}


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
