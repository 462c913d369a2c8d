"""Decision timings are OpenTelemetry histograms, kept in-process when no Application Insights is set."""
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
