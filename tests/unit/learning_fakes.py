"""Logged decisions for the learning tests: headless runs in the small world, cached per process."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from shared.learning import dataset
from shared.learning.loop import Learner
from shared.simulation import headless
from shared.simulation.headless import Options
from shared.simulation.world import World

from .simulation_fakes import SMALL, small_snapshot


@dataclass
class Logs:
    events: pa.Table
    decisions: pa.Table
    world: World
    end: datetime  # the simulated clock when the run stopped


def _run(chooser_of, impressions: int, seed: int) -> Logs:
    snapshot = small_snapshot()
    world = World(headless.WorldParams(), snapshot.products, snapshot.offers, snapshot.users)
    records: list[dict] = []
    simulator = headless.Simulator(world, snapshot, chooser_of(world), Options(impressions=impressions, users=300,
                                                                                  seed=seed),
                                   "logged", lambda batch: records.extend(e.to_dict() for e in batch))
    simulator.run()
    events, decisions = dataset.tables(records)
    return Logs(events, decisions, world, simulator.clock)


@functools.cache
def random_logs(impressions: int = 4000, seed: int = 11) -> Logs:
    """Decisions of the uniformly random policy (each shown offer logged with 1/K)."""
    return _run(lambda world: headless.chooser("random", world, seed), impressions, seed)


@functools.cache
def exploring_logs(impressions: int = 15000, seed: int = 5) -> Logs:
    """Decisions of the baseline with 20% epsilon-greedy exploration (what a fresh app logs)."""
    learner = Learner(retrain_every=10**9, seed=seed)
    return _run(lambda world: learner.chooser, impressions, seed)


SPEC = SMALL
