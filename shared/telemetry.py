"""OpenTelemetry metrics: how long offer decisions take, and what the decision log dropped.

With APPLICATIONINSIGHTS_CONNECTION_STRING set, metrics go to Application Insights through
azure-monitor-opentelemetry-exporter (every EXPORT_INTERVAL_MS); with
APPLICATIONINSIGHTS_AUTHENTICATION_STRING `Authorization=AAD;ClientId=<id>` as well (Azure,
where the component refuses local auth) they are sent with that identity's Entra token. Without
a connection string they are kept by an in-process reader (`collect()`), which costs nothing
until read. `configure` runs once per process; later calls return the same instruments.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Optional

from opentelemetry.metrics import Counter, Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

log = logging.getLogger(__name__)

METER = "offerloop"
EXPORT_INTERVAL_MS = 60_000
# Latency buckets in ms around the aim (p99 <= 15 ms): fine below 20 ms, coarse above.
BUCKETS_MS = (0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 12.5, 15, 20, 30, 50, 100, 250, 1000, 5000)
DECISION_PARTS = ("profile_read", "scoring", "total")


@dataclass(frozen=True)
class Instruments:
    provider: MeterProvider
    reader: MetricReader
    decision_ms: dict[str, Histogram]  # part -> histogram
    dropped_events: Counter

    def record_decision(self, part: str, milliseconds: float) -> None:
        self.decision_ms[part].record(milliseconds)

    def collect(self) -> dict[str, dict]:
        """name -> {count, sum} of each histogram, from the in-process reader (empty when exporting)."""
        if not isinstance(self.reader, InMemoryMetricReader):
            return {}
        found: dict[str, dict] = {}
        data = self.reader.get_metrics_data()
        for resource in (data.resource_metrics if data else ()):
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        if hasattr(point, "bucket_counts"):
                            found[metric.name] = {"count": point.count, "sum": point.sum}
                        else:
                            found[metric.name] = {"value": point.value}
        return found


_lock = threading.Lock()
_instruments: Optional[Instruments] = None


def configure(connection_string: Optional[str] = None, authentication: Optional[str] = None) -> Instruments:
    """The process's instruments, created on the first call (with this connection string)."""
    global _instruments
    with _lock:
        if _instruments is None:
            _instruments = _create(connection_string, authentication)
        return _instruments


def exporter_credential(authentication: Optional[str]):
    """The Entra credential an APPLICATIONINSIGHTS_AUTHENTICATION_STRING asks for, or None (ingestion key).

    `Authorization=AAD;ClientId=<id>` is the Functions host's format: that managed identity in
    Azure (DefaultAzureCredential, so a developer's az login works too); `Authorization=AAD`
    alone is the default identity.
    """
    pairs = dict(part.split("=", 1) for part in (authentication or "").split(";") if "=" in part)
    pairs = {key.strip().lower(): value.strip() for key, value in pairs.items()}
    if pairs.get("authorization", "").upper() != "AAD":
        return None
    from .identity import credential

    return credential(pairs.get("clientid") or None)


def _create(connection_string: Optional[str], authentication: Optional[str] = None) -> Instruments:
    if connection_string:
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter

        # Always passed, so the exporter never reads the variable on its own (its parser logs an
        # error for the empty value local.settings.json carries).
        exporter = AzureMonitorMetricExporter(connection_string=connection_string,
                                              credential=exporter_credential(authentication))
        reader: MetricReader = PeriodicExportingMetricReader(exporter, export_interval_millis=EXPORT_INTERVAL_MS)
        log.info("metrics export to Application Insights every %s s", EXPORT_INTERVAL_MS // 1000)
    else:
        reader = InMemoryMetricReader()
    views = [View(instrument_name="offerloop.offers.decision.*",
                  aggregation=ExplicitBucketHistogramAggregation(boundaries=BUCKETS_MS))]
    # The app's own provider (not the global one), so that configuring it cannot clash with
    # whatever else in the process sets up OpenTelemetry.
    provider = MeterProvider(metric_readers=[reader], views=views)
    meter = provider.get_meter(METER)
    histograms = {part: meter.create_histogram(f"offerloop.offers.decision.{part}", unit="ms",
                                               description=f"offer decision time: {part.replace('_', ' ')}")
                  for part in DECISION_PARTS}
    dropped = meter.create_counter("offerloop.offers.shown_dropped", unit="{event}",
                                   description="offer.shown events that could not be sent")
    return Instruments(provider, reader, histograms, dropped)
