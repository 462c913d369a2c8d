"""The simulation `make up` starts: SIMULATION_USERS / SIMULATION_RATE, refused before anything starts."""
from __future__ import annotations

import pytest

from local.stack import StackError, simulation_settings


def test_defaults(monkeypatch):
    monkeypatch.delenv("SIMULATION_USERS", raising=False)
    monkeypatch.delenv("SIMULATION_RATE", raising=False)
    assert simulation_settings() == (100, 5.0)


def test_values_from_the_environment(monkeypatch):
    monkeypatch.setenv("SIMULATION_USERS", "0")
    monkeypatch.setenv("SIMULATION_RATE", "12.5")
    assert simulation_settings() == (0, 12.5)


@pytest.mark.parametrize("users, rate, named", [
    ("-1", "5", "SIMULATION_USERS"), ("many", "5", "SIMULATION_USERS"),
    ("10", "fast", "SIMULATION_RATE"), ("10", "-2", "SIMULATION_RATE"), ("10", "nan", "SIMULATION_RATE"),
    ("10", "9000", "SIMULATION_RATE"),
])
def test_bad_values_name_the_variable(monkeypatch, users, rate, named):
    monkeypatch.setenv("SIMULATION_USERS", users)
    monkeypatch.setenv("SIMULATION_RATE", rate)
    with pytest.raises(StackError, match=named):
        simulation_settings()
