"""Timer triggers: the schedule, run_on_startup, and past-due occurrences from the status blob."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from azure.storage.blob import BlobServiceClient

from .conftest import wait_for

pytestmark = [pytest.mark.host, pytest.mark.timeout(120)]


def status_blob(azurite: str, host_id: str, function: str):
    service = BlobServiceClient.from_connection_string(azurite)
    container = service.get_container_client("azure-webjobs-hosts")
    if not container.exists():
        container.create_container()
    return container.get_blob_client(f"timers/{host_id}/Host.Functions.{function}/status")


def test_a_timer_fires_on_its_schedule(make_host):
    host = make_host(enable=["tick"])  # every 2 seconds
    firings = wait_for(lambda: len(host.records("tick")) >= 3 and host.records("tick"), 20, "three firings")
    times = [f["at"] for f in firings]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert all(1.5 < gap < 2.5 for gap in gaps), gaps
    assert all(int(t) % 2 == 0 for t in times), times  # on even seconds, as */2 means
    assert not any(f["past_due"] for f in firings)
    host.stop()


def test_run_on_startup_fires_once_when_the_host_starts(make_host):
    host = make_host(enable=["startup"])  # otherwise once a year
    fired = wait_for(lambda: host.records("startup"), 10, "the startup run")
    time.sleep(1)
    assert len(host.records("startup")) == 1
    assert fired[0]["past_due"] is False
    host.stop()


def test_a_missed_occurrence_fires_once_at_startup_with_past_due(make_host, azurite):
    host_id = "hosttest-pastdue"
    last = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    blob = status_blob(azurite, host_id, "hourly")  # schedule "0 0 * * * *"
    blob.upload_blob(json.dumps({"Last": last.isoformat(), "Next": (last + timedelta(hours=1)).isoformat(),
                                 "LastUpdated": last.isoformat()}), overwrite=True)
    host = make_host(enable=["hourly"], env={"AzureFunctionsWebHost__hostid": host_id})
    fired = wait_for(lambda: host.records("hourly"), 10, "the past-due run")
    time.sleep(1)
    assert len(host.records("hourly")) == 1
    assert fired[0]["past_due"] is True
    assert fired[0]["status"]["Next"].startswith((last + timedelta(hours=1)).strftime("%Y-%m-%dT%H"))
    status = json.loads(blob.download_blob().readall())
    assert datetime.fromisoformat(status["Next"]) > datetime.now(timezone.utc)
    assert datetime.fromisoformat(status["Last"]) > datetime.now(timezone.utc) - timedelta(minutes=1)
    host.stop()


def test_a_timer_that_missed_nothing_does_not_fire_at_startup(make_host, azurite):
    host_id = "hosttest-ontime"
    now = datetime.now(timezone.utc)
    last = now.replace(minute=0, second=0, microsecond=0)
    if now - last < timedelta(seconds=5):
        time.sleep(5)  # do not race the top of the hour
    blob = status_blob(azurite, host_id, "hourly")
    blob.upload_blob(json.dumps({"Last": last.isoformat(), "Next": (last + timedelta(hours=1)).isoformat(),
                                 "LastUpdated": last.isoformat()}), overwrite=True)
    host = make_host(enable=["hourly"], env={"AzureFunctionsWebHost__hostid": host_id})
    time.sleep(3)
    assert host.records("hourly") == []
    assert "Function 'hourly' initial status: Last=" in host.log()
    host.stop()


def test_a_new_monitored_timer_records_its_schedule_status(make_host, azurite):
    host_id = "hosttest-new"
    host = make_host(enable=["hourly"], env={"AzureFunctionsWebHost__hostid": host_id})
    blob = status_blob(azurite, host_id, "hourly")
    status = wait_for(lambda: blob.exists() and json.loads(blob.download_blob().readall()), 10, "the status blob")
    assert datetime.fromisoformat(status["Next"]).minute == 0
    assert status["Last"].startswith("0001-01-01")
    assert host.records("hourly") == []
    host.stop()
