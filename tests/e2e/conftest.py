"""The whole app on the session's local stack, served by the Functions host."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def api(stack) -> str:
    """Base URL of the running app (`http://127.0.0.1:<port>/api`)."""
    stack.up(["host"])
    try:
        yield f"http://127.0.0.1:{stack.config.ports.host}/api"
    finally:
        stack.down(["host"])
