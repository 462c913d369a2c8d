"""Event Hubs trigger (cardinality many) against the project's Event Hubs emulator (local/eventhubs):
batches, checkpoints after success only, redelivery of a failed batch in-process and after a restart."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

import pytest
from azure.storage.blob import BlobServiceClient

from .conftest import ROOT, free_port, stop_process, wait_for

pytestmark = [pytest.mark.host, pytest.mark.timeout(180)]

HUB_CONFIG = {"UserConfig": {"NamespaceConfig": [{"Type": "EventHub", "Name": "emulatorNs1", "Entities": [
    {"Name": "hubname", "PartitionCount": "2", "ConsumerGroups": [{"Name": "cg1"}]}]}]}}


@pytest.fixture(scope="module")
def eventhubs(tmp_path_factory):
    """The Event Hubs emulator on a free port; yields (connection string, port)."""
    if importlib.util.find_spec("local.eventhubs") is None:
        pytest.skip("the Event Hubs emulator (local/eventhubs) is not available")
    base = tmp_path_factory.mktemp("eventhubs")
    (base / "Config.json").write_text(json.dumps(HUB_CONFIG))
    port = free_port()
    log = open(base / "emulator.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.eventhubs", "--config", str(base / "Config.json"), "--host", "127.0.0.1",
         "--port", str(port), "--data-dir", str(base / "data")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    connection = (f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
                  "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true")
    try:
        from azure.eventhub import EventHubProducerClient

        def answers() -> bool:
            assert process.poll() is None, (base / "emulator.log").read_text()
            try:
                with EventHubProducerClient.from_connection_string(connection, eventhub_name="hubname",
                                                                   retry_total=0) as producer:
                    producer.get_eventhub_properties()
                return True
            except Exception:
                return False

        wait_for(answers, 30, "the Event Hubs emulator", interval=0.3)
        yield connection, port
    finally:
        stop_process(process, timeout=10)
        log.close()


def send(connection: str, partition: str, bodies: list[str]) -> None:
    from azure.eventhub import EventData, EventHubProducerClient

    with EventHubProducerClient.from_connection_string(connection, eventhub_name="hubname") as producer:
        batch = producer.create_batch(partition_id=partition)
        for body in bodies:
            batch.add(EventData(body.encode()))
        producer.send_batch(batch)


def checkpoint(azurite: str, port: int, partition: str):
    """The checkpointed sequence number of a partition, or None."""
    container = BlobServiceClient.from_connection_string(azurite).get_container_client("azure-webjobs-eventhub")
    for blob in container.list_blobs(name_starts_with=f"127.0.0.1:{port}/hubname/cg1/checkpoint/",
                                     include=["metadata"]):
        if blob.name.rsplit("/", 1)[1] == partition:
            return int(blob.metadata["sequencenumber"])
    return None


@pytest.fixture(scope="module")
def start_host(make_host, eventhubs):
    connection, _ = eventhubs
    return lambda: make_host(enable=["batch"], env={"EventHubConnection": connection})


def test_a_batch_is_delivered_as_a_list_and_checkpointed_once_the_function_returns(start_host, eventhubs, azurite):
    connection, port = eventhubs
    host = start_host()
    send(connection, "0", ["one", "two", "three"])
    batches = wait_for(lambda: [b for b in host.records("batch") if "three" in b["bodies"]], 30, "the batch")
    assert batches[0]["bodies"] == ["one", "two", "three"]
    assert batches[0]["partition"] == "0"
    last = batches[0]["sequence_numbers"][-1]
    assert batches[0]["sequence_numbers"] == [last - 2, last - 1, last]
    wait_for(lambda: checkpoint(azurite, port, "0") == last, 10, "the checkpoint of partition 0")
    assert host.stop() == 0


def test_a_failing_batch_is_not_checkpointed_and_comes_again_in_process_and_after_a_restart(
        start_host, eventhubs, azurite):
    connection, port = eventhubs
    host = start_host()
    (host.record_dir / "fail-eventhub").touch()
    send(connection, "1", ["fine", "poison-pill"])

    def failures():
        return [b for b in host.records("batch") if b["failing"]]

    first = wait_for(lambda: len(failures()) >= 2 and failures(), 30, "an in-process redelivery")
    assert first[0]["bodies"] == first[1]["bodies"] == ["fine", "poison-pill"]
    assert first[1]["at"] - first[0]["at"] >= 0.9  # after the backoff
    failed_sequence = first[0]["sequence_numbers"][-1]
    assert checkpoint(azurite, port, "1") is None

    assert host.stop() == 0
    old_pid = first[0]["pid"]
    host.start()
    again = wait_for(lambda: [b for b in failures() if b["pid"] != old_pid], 30, "redelivery after the restart")
    assert again[0]["bodies"] == ["fine", "poison-pill"]
    assert checkpoint(azurite, port, "1") is None

    (host.record_dir / "fail-eventhub").unlink()
    done = wait_for(lambda: [b for b in host.records("batch") if not b["failing"] and "poison-pill" in b["bodies"]],
                    30, "the batch to succeed")
    assert done[0]["bodies"] == ["fine", "poison-pill"]
    wait_for(lambda: checkpoint(azurite, port, "1") == failed_sequence, 10, "the checkpoint of partition 1")
    time.sleep(1.5)  # and it is not delivered again once checkpointed
    assert len([b for b in host.records("batch") if not b["failing"]]) == 1
    assert host.stop() == 0
