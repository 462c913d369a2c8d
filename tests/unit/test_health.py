"""Dependency health with plain fake probes."""
import time

from shared import health


def fails():
    raise ConnectionRefusedError("connection refused")


def test_all_probes_answering_is_ok():
    report = health.check({"a": lambda: None, "b": lambda: 1})
    assert report.to_dict() == {"status": "ok", "dependencies": {"a": "ok", "b": "ok"}}


def test_a_failing_probe_degrades_and_names_its_error():
    report = health.check({"a": lambda: None, "redis": fails})
    assert report.status == "degraded"
    assert report.dependencies == {"a": "ok", "redis": "ConnectionRefusedError: connection refused"}


def test_a_hung_probe_is_reported_after_the_timeout_without_waiting_for_it():
    began = time.monotonic()
    report = health.check({"slow": lambda: time.sleep(5), "fast": lambda: None}, timeout=0.3)
    assert time.monotonic() - began < 2
    assert report.dependencies == {"slow": "no answer within 0.3 s", "fast": "ok"}
