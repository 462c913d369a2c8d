"""Ingest: every batch of the activity hub -> dead letters, the raw archive, profiles and offer statistics."""
from __future__ import annotations

import logging
import typing
from datetime import timezone

import azure.functions as func

from shared import bootstrap, ingest

bp = func.Blueprint()
log = logging.getLogger(__name__)


# A failed batch is retried (not checkpointed past) until it succeeds: every step is idempotent.
@bp.retry(strategy="exponential_backoff", max_retry_count="-1",
          minimum_interval="00:00:01", maximum_interval="00:00:30")
@bp.event_hub_message_trigger(arg_name="events", event_hub_name="%EVENTHUB_NAME%", connection="EventHubConnection",
                              consumer_group="ingest", cardinality="many", data_type="binary")
def ingest_activity(events: typing.List[func.EventHubEvent]) -> None:
    if not events:
        return
    partition = partition_id(events[0])
    messages = [ingest.Message(e.get_body(), partition, e.sequence_number,
                               e.enqueued_time.replace(tzinfo=e.enqueued_time.tzinfo or timezone.utc))
                for e in events]
    report = ingest.ingest(messages, bootstrap.ingest_ports())
    log.info("partition %s from sequence number %s: %s", partition, messages[0].sequence, report.summary())


def partition_id(event: func.EventHubEvent) -> str:
    """The partition of the batch, from the trigger's PartitionContext metadata."""
    context = (event.metadata or {}).get("PartitionContext") or {}
    if "PartitionId" not in context:
        # Without it the archive names and watermarks would be wrong: fail, do not guess.
        raise RuntimeError("the trigger metadata has no PartitionContext.PartitionId")
    return str(context["PartitionId"])
