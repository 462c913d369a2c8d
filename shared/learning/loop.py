"""The learning loop in one process: the headless simulation served by the learned chooser,
retrained every N impressions by the same retrain job, from the events it logged.

The events a run logs are turned into the archive's tables (`dataset.tables`) as they come,
the registry is in memory, and the clock is the simulation's; everything else (features,
exploration, the reward join, fitting, offline evaluation and the promotion gate, and the
product-affinity step with its related-products table) is the code the function app runs.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Collection, Mapping, Optional, Sequence

import pyarrow as pa

from .. import affinity_job
from .. import events as ev
from ..affinity import Related
from . import compaction, dataset, retrain
from .explore import LearnedChooser, Serving
from .retrain import LearningConfig, MemoryRegistry


@dataclass
class Learner:
    """Serving state, logged tables and retrain reports of one headless learning run."""

    config: LearningConfig = field(default_factory=LearningConfig)
    retrain_every: int = 5000  # impressions between retrains
    max_retrains: Optional[int] = None  # after this many, the last model keeps serving (None: no limit)
    seed: int = 7
    clock: Optional[Callable[[], datetime]] = None  # default: the time of the latest event seen
    registry: MemoryRegistry = field(default_factory=MemoryRegistry)
    segments: Mapping[str, str] = field(default_factory=dict)  # userId -> segment, for the cold-start lists
    affinity: bool = True  # each retrain also computes the related-products table (`related`)
    related: Optional[Related] = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    _records: list[dict] = field(default_factory=list)
    _events: list[pa.Table] = field(default_factory=list)
    _decisions: list[pa.Table] = field(default_factory=list)
    _serving: Serving = Serving(None, status="no model promoted yet")
    _shown_since: int = 0
    _latest: Optional[datetime] = None

    def __post_init__(self) -> None:
        self.chooser = LearnedChooser(lambda: self._serving, lambda: self.config.exploration,
                                      random.Random(f"offerloop-learner:{self.seed}"))

    def on_events(self, batch: list[ev.Event]) -> None:
        self._records.extend(e.to_dict() for e in batch)
        for event in batch:
            if self._latest is None or event.time > self._latest:
                self._latest = event.time
        self._shown_since += sum(e.type == ev.OFFER_SHOWN for e in batch)
        if self._shown_since >= self.retrain_every and not self.frozen:
            self.retrain()

    @property
    def frozen(self) -> bool:
        """Whether retraining has stopped (`max_retrains` reached)."""
        return self.max_retrains is not None and len(self.reports) >= self.max_retrains

    def _flush(self) -> None:
        if self._records:
            events, decisions = dataset.tables(self._records)
            self._events.append(events)
            self._decisions.append(decisions)
            self._records = []

    def load(self, start: datetime, end: datetime, event_columns: Optional[Sequence[str]] = None,
             decision_columns: Optional[Sequence[str]] = None,
             decision_ids: Optional[Collection[str]] = None) -> tuple[pa.Table, pa.Table]:
        self._flush()
        decisions = compaction.keep_only(dataset.concat(self._decisions, dataset.DECISIONS_SCHEMA),
                                         compaction.id_array(decision_ids))
        return (dataset.select(dataset.concat(self._events, dataset.EVENTS_SCHEMA), event_columns),
                dataset.select(decisions, decision_columns))

    def retrain(self) -> dict[str, Any]:
        self._shown_since = 0
        ports = retrain.JobPorts(load=self.load, registry=self.registry, clock=self.clock or (lambda: self._latest))
        report = retrain.run(ports, self.config, force=True)
        if self.affinity:
            # the app writes the lists to Redis too; here the table's own copy serves them
            step = affinity_job.Ports(load=self.load, segments=lambda: self.segments,
                                      save=lambda table: setattr(self, "related", table), publish=lambda values: None)
            report["affinity"] = affinity_job.run(step, ports.clock(), self.config.window_days)
        self.reports.append(report)
        pointer = self.registry.pointer()
        if pointer:
            graduated = not self.config.apprentice or pointer["apprentice"]["graduated"]
            self._serving = Serving(self.registry.load(pointer["version"]), apprentice=not graduated)
        elif self.config.apprentice:
            self._serving = Serving(None, apprentice=True, status="no model promoted yet")
        return report

    @property
    def serving(self) -> Serving:
        return self._serving

    @property
    def model(self) -> Optional[Any]:
        return self._serving.model

