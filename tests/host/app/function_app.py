"""A function app for testing the dev host: each function records what it received.

Records are JSON lines in $RECORD_DIR/<function>.jsonl, read by the tests.
"""
import asyncio
import json
import os
import time
import typing

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def record(function: str, **values) -> None:
    values.setdefault("at", time.time())
    line = json.dumps(values) + "\n"
    with open(os.path.join(os.environ["RECORD_DIR"], f"{function}.jsonl"), "a") as out:
        out.write(line)


def flag(name: str) -> bool:
    return os.path.exists(os.path.join(os.environ["RECORD_DIR"], name))


# -- HTTP ---------------------------------------------------------------------------
@app.route(route="items/{id:int}/{*rest}", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def items(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method, "url": req.url, "route": dict(req.route_params),
        "params": dict(req.params), "body": req.get_body().decode(),
        "header": req.headers.get("x-test"),
    }
    return func.HttpResponse(json.dumps(payload), status_code=201, mimetype="application/json",
                             headers={"X-Seen": "yes"})


@app.route(route="plain")
async def plain(req: func.HttpRequest) -> str:
    return "just text"


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("the function failed on purpose")


@app.route(route="slow")
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("seconds", "2")))
    return func.HttpResponse("finally")


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="out", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[typing.List[str]]) -> func.HttpResponse:
    out.set(req.get_body().decode().split(","))
    return func.HttpResponse("queued", status_code=202)


# -- queues -------------------------------------------------------------------------
@app.queue_trigger(arg_name="msg", queue_name="work-items", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    record("work", id=msg.id, body=msg.get_body().decode(), dequeue_count=msg.dequeue_count,
           insertion_time=msg.insertion_time.isoformat() if msg.insertion_time else None,
           pop_receipt=msg.pop_receipt)


@app.queue_trigger(arg_name="msg", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def relay(msg: str) -> None:
    record("relay", body=msg)


@app.queue_trigger(arg_name="msg", queue_name="flaky-items", connection="AzureWebJobsStorage")
async def flaky(msg: func.QueueMessage, context: func.Context) -> None:
    record("flaky", id=msg.id, body=msg.get_body().decode(), dequeue_count=msg.dequeue_count,
           invocation_id=context.invocation_id)
    raise RuntimeError("this message always fails")


# -- timers -------------------------------------------------------------------------
@app.timer_trigger(schedule="*/2 * * * * *", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    record("tick", past_due=timer.past_due)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def startup(timer: func.TimerRequest) -> None:
    record("startup", past_due=timer.past_due)


@app.timer_trigger(schedule="%HOURLY_SCHEDULE%", arg_name="timer")
def hourly(timer: func.TimerRequest) -> None:
    record("hourly", past_due=timer.past_due, status=timer.schedule_status)


# -- Event Hubs ---------------------------------------------------------------------
@app.event_hub_message_trigger(arg_name="events", event_hub_name="%EVENT_HUB%", consumer_group="cg1",
                               connection="EventHubConnection", cardinality="many", data_type="binary")
def batch(events: typing.List[func.EventHubEvent]) -> None:
    bodies = [e.get_body().decode() for e in events]
    failing = flag("fail-eventhub") and any(b.startswith("poison") for b in bodies)
    record("batch", bodies=bodies, sequence_numbers=[e.sequence_number for e in events],
           partition=events[0].metadata["PartitionContext"]["PartitionId"], failing=failing,
           pid=os.getpid())
    if failing:
        raise RuntimeError("poison event in batch")
