"""The queue-driven simulation: what the simulation API and the two queue functions do.

  start   validates the request, makes the run current, and puts each user's first step on the
          actions queue, due as if the run had long been going, so that it starts at its steady rate;
  perform (simulate_action) runs a step of a current run and returns the outcome for the
          responses queue; a step of a run that is no longer current is dropped;
  follow  (schedule_next) puts the user's next step on the actions queue, delayed by the think
          (or return) time;
  stop    ends the run and clears both queues; steps still in flight are dropped when they arrive.

A message that does not parse raises `BadMessage`: the function fails, the host retries it
`maxDequeueCount` times and then moves it to `<queue>-poison`; other users' steps carry on.
"""
from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from pydantic import ValidationError

from .. import resources
from ..catalog_cache import Snapshot
from . import run, shopper, world
from .shopper import Outcome, Shown, Step
from .store import RunStore

log = logging.getLogger(__name__)

ACTIONS_QUEUE = resources.SIMULATION_ACTIONS
RESPONSES_QUEUE = resources.SIMULATION_RESPONSES
QUEUES = (ACTIONS_QUEUE, RESPONSES_QUEUE)
ENQUEUE_THREADS = 16


class BadMessage(ValueError):
    """A queue message that is not a simulation step or outcome."""


class NoCatalog(Exception):
    """The catalog has no users yet (seeding has not finished)."""


@dataclass(frozen=True)
class Ports:
    runs: RunStore
    enqueue: Callable[[Step, float], None]  # onto the actions queue, visible after that many seconds
    clear: Callable[[], None]  # empty both queues
    catalog: Callable[[], Snapshot]
    decide: Callable[[str, Optional[str], int], Shown]
    post: Callable[[list[dict[str, Any]]], None]
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def start(body: Any, ports: Ports) -> run.RunConfig:
    """Begin a run (raises run.InvalidStart, run.AlreadyRunning, NoCatalog)."""
    now = ports.clock()
    config = run.configure(body, now, default_seed=random.SystemRandom().randrange(2 ** 31))
    snapshot = ports.catalog()
    if not snapshot.users or not snapshot.offers:
        raise NoCatalog("the catalog has no users or offers yet; seed it (python -m ops seed) and try again")
    if config.users > len(snapshot.users):
        raise run.InvalidStart([{"field": "users", "message": f"the catalog has {len(snapshot.users)} users; "
                                                              f"ask for at most that many"}])
    ports.runs.begin(config)
    users = shopper.pick_users(list(snapshot.users), config.users, config.seed)
    first = [(shopper.first_step(config.runId, u),
              config.timing.first_delay(shopper.rng_for(config.seed, u, 0, 0, "start"), config.behaviour))
             for u in users]
    try:
        with ThreadPoolExecutor(ENQUEUE_THREADS, thread_name_prefix="simulation-start") as pool:
            list(pool.map(lambda item: ports.enqueue(*item), first))
    except Exception:
        ports.runs.end(run.stopped(config, ports.clock()))
        raise
    log.info("simulation %s started: %s users, %s actions/s, seed %s", config.runId, config.users,
             config.rate, config.seed)
    return config


def stop(ports: Ports) -> Optional[run.RunConfig]:
    """Stop the current run; None when none was running."""
    config = ports.runs.current()
    if config is None:
        return None
    ended = run.stopped(config, ports.clock())
    ports.runs.end(ended)
    ports.clear()
    log.info("simulation %s stopped", config.runId)
    return ended


def status(ports: Ports) -> dict[str, Any]:
    config = ports.runs.latest()
    if config is None:
        return run.status(None, shopper.Tally(), 0, [])
    return run.status(config, *ports.runs.counters(config, ports.clock()))


def _parse(model: type, text: str) -> Any:
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        raise BadMessage(f"not a simulation {model.__name__.lower()} message: "
                         + "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}"
                                     for e in error.errors()[:5])) from None


def perform(text: str, ports: Ports) -> Optional[str]:
    """simulate_action: run the step in `text`; the outcome's JSON for the responses queue, or
    None when the step's run is no longer current."""
    step = _parse(Step, text)
    config = _run_of(step.runId, ports)
    if config is None:
        return None
    world_ = world.for_snapshot(config.params, ports.catalog())
    acted = shopper.act(step, config.behaviour, config.seed,
                        shopper.Ports(world=world_, decide=ports.decide, post=ports.post, clock=ports.clock))
    ports.runs.record(step.runId, acted.tally, ports.clock())
    return acted.outcome.model_dump_json()


def follow(text: str, ports: Ports) -> None:
    """schedule_next: enqueue the user's next step after its delay (nothing when the run ended)."""
    outcome = _parse(Outcome, text)
    config = _run_of(outcome.runId, ports)
    if config is None:
        return
    nxt, delay = shopper.schedule(outcome, config.behaviour, config.timing, config.seed)
    ports.enqueue(nxt, delay)


def _run_of(run_id: str, ports: Ports) -> Optional[run.RunConfig]:
    config = ports.runs.active(run_id)
    if config is None:
        log.debug("dropping a step of simulation %s, which is not running", run_id)
    return config


def queue_delay(seconds: float, rng: random.Random = random.Random()) -> int:
    """Whole seconds for a queue's visibility delay, rounded at random so the mean stays `seconds`."""
    whole = int(seconds)
    return whole + (1 if rng.random() < seconds - whole else 0)
