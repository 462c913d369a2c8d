"""Decision timings are OpenTelemetry histograms, kept in-process when no Application Insights is set."""
import pytest

from shared import telemetry


def test_decision_timings_are_recorded_per_part():
    metrics = telemetry._create(None)  # a fresh set, independent of the process-wide one
    for ms in (1.0, 3.0):
        metrics.record_decision("total", ms)
    metrics.record_decision("profile_read", 0.5)
    metrics.dropped_events.add(2)
    collected = metrics.collect()
    assert collected["offerloop.offers.decision.total"] == {"count": 2, "sum": 4.0}
    assert collected["offerloop.offers.decision.profile_read"]["count"] == 1
    assert collected["offerloop.offers.shown_dropped"] == {"value": 2}


def test_configure_creates_the_instruments_once():
    assert telemetry.configure(None) is telemetry.configure("InstrumentationKey=ignored-the-second-time")


def test_the_hosts_authentication_string_selects_an_entra_credential_for_that_identity(monkeypatch):
    made = []
    monkeypatch.setattr("shared.identity.credential", lambda client_id=None: made.append(client_id) or "cred")
    assert telemetry.exporter_credential("Authorization=AAD;ClientId=cid-1") == "cred"
    assert telemetry.exporter_credential("clientid=cid-2; authorization=aad") == "cred"
    assert telemetry.exporter_credential("Authorization=AAD") == "cred"
    assert made == ["cid-1", "cid-2", None]


def test_without_entra_authorization_the_exporter_gets_no_credential(monkeypatch):
    monkeypatch.setattr("shared.identity.credential", lambda client_id=None: pytest.fail("no credential wanted"))
    assert telemetry.exporter_credential(None) is None
    assert telemetry.exporter_credential("") is None
    assert telemetry.exporter_credential("ClientId=cid-1") is None
