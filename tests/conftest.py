"""Shared fixtures. Test tiers are folders; each folder's tests get its marker."""
from __future__ import annotations

from pathlib import Path

import pytest

from local.services import EMULATORS
from tests.stackfixture import quiet_stack, make_stack_config

TIERS = ("unit", "integration", "host", "e2e", "worker", "infra")


def pytest_collection_modifyitems(items):
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """Redis, Azurite, the Cosmos DB server and the Event Hubs emulator, started once per run.

    `stack.settings` holds the app settings pointing at them. The Functions host is not
    started here; tests that need it call `stack.up(["host"])` (see tests/e2e).
    """
    running = quiet_stack(make_stack_config(tmp_path_factory.mktemp("stack")))
    try:
        running.up(EMULATORS)
        yield running
    finally:
        running.down()
