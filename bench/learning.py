"""The learned ranker against random, the oracle and Vowpal Wabbit, and how long retraining takes.

Learning curves. On one headless simulation (shared.simulation.headless: the default world,
catalog, seed 7 and USERS shoppers), IMPRESSIONS impressions are shown by each policy:

  offerloop     the learning loop (shared.learning.loop.Learner): the learned chooser with 20%
                epsilon-greedy exploration, retrained every RETRAIN_EVERY impressions by the
                retrain job's `train` and promotion gate, on the simulated clock;
  vowpalwabbit  Vowpal Wabbit with the configuration Azure Personalizer ran by default
                (VW_ARGS), on the same logged features (see below);
  random        a uniformly random choice;
  oracle        the candidates with the highest true click probability.

For each window of WINDOW impressions the JSON has the achieved CTR (clicks / impressions), the
expected CTR of what was shown, of a random choice and of the oracle (the simulator's curve),
and the greedy value: the mean true click probability of the candidate the policy's greedy
choice (no exploration) would have put in the first slot, with the mean and the best true
probability of the same decisions' candidates (random's and the oracle's greedy values).
Offerloop's greedy choice is the arg max of the served model's scores (the baseline's first
candidate before a model is promoted), Vowpal Wabbit's the arg max of its pmf, random's
value is the candidates' mean and the oracle's their best. The lift fraction is
(value - random) / (oracle - random): 0 is random, 1 is the oracle. The figures of the last
LAST impressions are the achieved lift (exploration included) and the greedy lift of the
models that served them. Then offerloop's policy as it stands after IMPRESSIONS impressions
(the model of its last retrain) serves FINAL more impressions without retraining, valued the
same way ("final"): the greedy value of the learned policy after the run, on decisions it
has not been trained on.

Vowpal Wabbit sees what offerloop's model sees: the context features of each decision
(`shared |...` line) and each candidate's features (one line per candidate), by
Personalizer's flattening rules (shared.learning.features.flatten: strings one-hot, numbers
as values, `diagnostics` left out); offerloop's derived clock/match features only with
BENCH_LEARNING_VW_FEATURES=derived. VW's `-q ::` pairs namespaces by their first character,
so each (side, namespace) gets a distinct first letter (`Namespaces`); ':', '|', '%' and
whitespace in names are %-escaped. A decision predicts a pmf over the candidates and draws
from it with a seeded random.Random (slot after slot, without the ones shown above, when a
page shows several). Rewards are delayed as in the service: a click on a decision arrives
as offer.clicked in the same shopper's next step, so a decision is learnt (label
`0:cost:probability` on the shown action, cost -1 for a click and 0 otherwise, as
Personalizer did) when the events of that shopper's next step arrive; the decisions still
waiting at the end of the run are dropped (one per shopper, at most USERS).

Retraining. The offerloop run's logged events and decisions (its first BASE decisions) are
tiled into tables of each of SIZES decisions (copies shifted in time, with fresh decision
and event ids, rewards following their decisions), written as zstd Parquet, and for each
size a fresh process reads them and runs the retrain job's `train` (no current model, so
the candidate is evaluated against the baseline): the seconds (reading, and train's own
breakdown) and the process's peak resident memory (VmHWM; also its memory before reading).
It reads what the retrain job reads: events' type, decisionId, offerId, value and time, and
the decisions' training columns (dataset.TRAINING_COLUMNS); `train` then reads the candidates
of only the held-out decisions it scores (at most 5,000), keeping just those rows as the
file's newest row groups are decoded (`candidates_reader`; the job does the same per hour's
file). Sizes up to FULL_READ_MAX are also measured reading every column, as a load of whole
files would. The
worker says on stderr when each of train's steps starts and ends, so a stopped one says
where it was. It is stopped after WORKER_TIMEOUT seconds, or when the machine runs short of
memory (MEMORY_FLOOR_MIB left).
The issue's aims: at least Vowpal Wabbit's CTR, and 1M decisions retrained in 60 s or less.

Environment: BENCH_LEARNING_IMPRESSIONS (50000), BENCH_LEARNING_FINAL (5000; 0: none), BENCH_LEARNING_USERS (1000),
BENCH_LEARNING_WINDOW (5000), BENCH_LEARNING_RETRAIN_EVERY (5000), BENCH_LEARNING_POLICIES
(all four), BENCH_LEARNING_VW_FEATURES (logged), BENCH_LEARNING_SIZES
(10000,100000,1000000; empty: none), BENCH_LEARNING_FULL_READ_MAX (100000),
BENCH_LEARNING_MEMORY_FLOOR_MIB (4096), BENCH_LEARNING_AFFINITY (1: offerloop's decisions carry the shopper's
product affinity from the related-products table its retrains compute, as in the app; 0: not).
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shared import catalog, events as ev, policy
from shared.learning import compaction, dataset, retrain
from shared.learning.explore import Exploration, greedy_index
from shared.learning.features import Flat, FeatureSpace, action_flat, context_flat, flatten

IMPRESSIONS = int(os.environ.get("BENCH_LEARNING_IMPRESSIONS", "50000"))
USERS = int(os.environ.get("BENCH_LEARNING_USERS", "1000"))
WINDOW = int(os.environ.get("BENCH_LEARNING_WINDOW", "5000"))
RETRAIN_EVERY = int(os.environ.get("BENCH_LEARNING_RETRAIN_EVERY", "5000"))
POLICIES = tuple(p.strip() for p in os.environ.get("BENCH_LEARNING_POLICIES",
                                                   "offerloop,vowpalwabbit,random,oracle").split(",") if p.strip())
VW_FEATURES = os.environ.get("BENCH_LEARNING_VW_FEATURES", "logged")  # or "derived"
SIZES = tuple(int(s) for s in os.environ.get("BENCH_LEARNING_SIZES", "10000,100000,1000000").split(",") if s.strip())
FULL_READ_MAX = int(os.environ.get("BENCH_LEARNING_FULL_READ_MAX", "100000"))
SEED = 7
LAST = 10_000  # the acceptance span: the last impressions of each run
FINAL = int(os.environ.get("BENCH_LEARNING_FINAL", "5000"))  # impressions served by offerloop's policy after the run
# offerloop's retrains also compute the related-products table, whose product affinity its decisions log (0: not)
AFFINITY = os.environ.get("BENCH_LEARNING_AFFINITY", "1") != "0"
BASE = 50_000  # logged decisions the retraining tables are tiled from
VW_ARGS = "--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"
WORKER_TIMEOUT = 600.0  # seconds for one size's retrain
MEMORY_FLOOR_MIB = float(os.environ.get("BENCH_LEARNING_MEMORY_FLOOR_MIB", "4096"))  # stop a worker below this
REWARD_COLUMNS = ("type", "decisionId", "offerId", "value", "time")  # what dataset.reward_events reads
VW_VERSION = "vowpalwabbit"


# -- Vowpal Wabbit's text format ------------------------------------------------------------------
_SPECIAL = re.compile(r"[\s:|%]")


def escape(text: str) -> str:
    """A name VW's text format reads back whole: ':', '|', '%' and whitespace as %XX."""
    return _SPECIAL.sub(lambda m: f"%{ord(m.group()):02X}", text)


def feature(name: str, value: float) -> str:
    return escape(name) if value == 1.0 else f"{escape(name)}:{value:.6g}"


class Namespaces:
    """VW namespace names with a distinct first character per (side, namespace), given in order of first use.

    VW's interactions (`-q ::`) pair namespaces by their first character, so the context's and an
    action's `history`, or `brands` and `baseline`, must not share one."""

    LETTERS = string.ascii_uppercase + string.ascii_lowercase

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], str] = {}

    def name(self, side: str, namespace: str) -> str:
        key = (side, namespace)
        found = self._names.get(key)
        if found is None:
            if len(self._names) >= len(self.LETTERS):
                raise ValueError(f"more than {len(self.LETTERS)} namespaces")
            found = self._names[key] = self.LETTERS[len(self._names)] + escape(namespace)
        return found


def line(flat: Flat, side: str, namespaces: Namespaces, prefix: str = "") -> str:
    """One VW text line of (namespace, name, value) triples: `prefix|Ans name name:value |Bns ...`."""
    groups: dict[str, list[str]] = {}
    for namespace, name, value in flat:
        groups.setdefault(namespace, []).append(feature(name, value))
    parts = [f"|{namespaces.name(side, ns)} {' '.join(names)}" for ns, names in groups.items()]
    return prefix + (" ".join(parts) if parts else "|")


def example(context: Flat, actions: Sequence[Flat], namespaces: Namespaces) -> list[str]:
    """A multi-line ADF example: the shared context line, then one line per action."""
    return [line(context, "shared", namespaces, "shared ")] + [line(a, "action", namespaces) for a in actions]


def labelled(lines: Sequence[str], index: int, cost: float, probability: float) -> list[str]:
    """The example with the CB label `0:cost:probability` on action `index` (ADF ignores the label's action)."""
    out = list(lines)
    out[index + 1] = f"0:{cost:g}:{probability:.6g} {out[index + 1]}"
    return out


def flats(context: policy.Context, candidates: Sequence[policy.Scored], mode: str) -> tuple[Flat, list[Flat]]:
    """The decision's context and candidates as (namespace, name, value) triples: as logged, or with
    offerloop's derived features too."""
    if mode == "derived":
        space = FeatureSpace()
        return (context_flat(context.features, space),
                [action_flat(s.features, context.features, space) for s in candidates])
    return flatten(context.features), [flatten(s.features) for s in candidates]


def draw(pmf: Sequence[float], rng: random.Random) -> int:
    """An index drawn with the pmf's probabilities (normalised)."""
    target, at = rng.random() * sum(pmf), 0
    while at < len(pmf) - 1 and target >= pmf[at]:
        target -= pmf[at]
        at += 1
    return at


# -- the Vowpal Wabbit chooser -------------------------------------------------------------------
@dataclass
class _Slot:
    lines: list[str]  # the example this slot was drawn from
    index: int  # the shown action's position in it
    probability: float
    offer_id: str


@dataclass
class VowpalWabbit:
    """policy.Chooser of a VW contextual bandit that learns from the clicks in the simulation's events."""

    seed: int = SEED
    features: str = VW_FEATURES
    args: str = VW_ARGS
    learned: int = 0
    clicked: int = 0
    _waiting: dict[str, tuple[str, list[_Slot]]] = field(default_factory=dict)  # user -> (decision, slots)
    _last: list[_Slot] = field(default_factory=list)
    greedy: int = 0  # the last decision's greedy candidate (arg max of the first slot's pmf)

    def __post_init__(self) -> None:
        import vowpalwabbit  # only this benchmark needs it

        self.workspace = vowpalwabbit.Workspace(f"{self.args} --quiet --random_seed {self.seed}")
        self.namespaces = Namespaces()
        self.rng = random.Random(f"offerloop-bench:vowpalwabbit:{self.seed}")
        self.exploration = {"policy": "epsilon-greedy", "epsilon": 0.2}

    def __call__(self, context: policy.Context, candidates: Sequence[policy.Scored], n: int) -> policy.Choice:
        self._last = []
        if not candidates:
            return policy.Choice([], VW_VERSION, dict(self.exploration))
        shared, actions = flats(context, candidates, self.features)
        lines = example(shared, actions, self.namespaces)
        remaining = list(range(len(candidates)))
        chosen = []
        for slot in range(min(n, len(candidates))):
            slot_lines = [lines[0]] + [lines[i + 1] for i in remaining]
            pmf = self.workspace.predict(slot_lines)
            at = draw(pmf, self.rng)
            if slot == 0:
                self.greedy = remaining[int(np.argmax(pmf))]
            probability = pmf[at] / sum(pmf)
            picked = candidates[remaining.pop(at)]
            self._last.append(_Slot(slot_lines, at, probability, picked.offer.id))
            chosen.append((picked, probability))
        return policy.Choice(chosen, VW_VERSION, dict(self.exploration))

    def on_events(self, batch: list[ev.Event]) -> None:
        """A shopper's step: learn the shopper's previous decision (its click, if any, is in this
        step), then keep the decision just made until the next step."""
        clicks = {(e.data.decisionId, e.data.offerId) for e in batch if e.type == ev.OFFER_CLICKED}
        for user in dict.fromkeys(e.user_id for e in batch):
            waiting = self._waiting.pop(user, None)
            if waiting is not None:
                self._learn(*waiting, clicks)
        for event in batch:
            if event.type == ev.OFFER_SHOWN and self._last:
                assert [s.offer_id for s in self._last] == [c.offerId for c in event.data.chosen]
                self._waiting[event.user_id] = (event.data.decisionId, self._last)
                self._last = []

    def _learn(self, decision_id: str, slots: list[_Slot], clicks: set[tuple[str, str]]) -> None:
        for slot in slots:
            hit = (decision_id, slot.offer_id) in clicks
            self.workspace.learn(labelled(slot.lines, slot.index, -1.0 if hit else 0.0, slot.probability))
            self.learned += 1
            self.clicked += hit

    def finish(self) -> dict[str, Any]:
        unlabelled = len(self._waiting)
        self._waiting.clear()
        self.workspace.finish()
        return {"args": self.args, "features": self.features, "learnedSlots": self.learned,
                "learnedClicks": self.clicked, "droppedUnlabelledDecisions": unlabelled}


# -- recording what each decision was worth ---------------------------------------------------
Greedy = Callable[[policy.Context, Sequence[policy.Scored], np.ndarray], float]


@dataclass
class Decided:
    """One decision's true click probabilities: of each shown offer, the candidates' mean, the
    best ones (the oracle's, by slot), and the policy's greedy first-slot pick."""

    shown: list[float]
    random: float
    best: list[float]
    greedy: float
    final: bool = False  # served by the policy as it stood after IMPRESSIONS (no more retraining)


class Recorder:
    """A policy.Chooser around another that records each decision's true values (`Decided`)."""

    def __init__(self, chooser: policy.Chooser, greedy: Greedy, world,
                 frozen: Callable[[], bool] = lambda: False) -> None:
        self.chooser, self.greedy, self.world, self.frozen = chooser, greedy, world, frozen
        self.decided: list[Decided] = []
        self.impressions = 0

    def __call__(self, context: policy.Context, candidates: Sequence[policy.Scored], n: int) -> policy.Choice:
        choice = self.chooser(context, candidates, n)
        if choice.chosen:
            hour, page, user_id = context.now.hour, context.product, context.user.id
            truth = {s.offer.id: self.world.click_probability(user_id, s.offer, hour, page) for s in candidates}
            probabilities = np.array([truth[s.offer.id] for s in candidates])
            ranked = sorted(probabilities, reverse=True)
            final = self.impressions >= IMPRESSIONS and self.frozen()
            self.decided.append(Decided([truth[s.offer.id] for s, _ in choice.chosen], float(probabilities.mean()),
                                        [float(p) for p in ranked[:len(choice.chosen)]],
                                        float(self.greedy(context, candidates, probabilities)), final))
            self.impressions += len(choice.chosen)
        return choice


class EventClock:
    """The simulated clock, read from the events' times (the learner retrains inside on_events)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def see(self, batch: list[ev.Event]) -> None:
        if batch:
            self.now = max(self.now, max(e.time for e in batch))

    def __call__(self) -> datetime:
        return self.now


# -- figures -------------------------------------------------------------------------------------
def lift(value: float, random_value: float, oracle_value: float) -> Optional[float]:
    """(value - random) / (oracle - random), None when the oracle is no better than random."""
    return (value - random_value) / (oracle_value - random_value) if oracle_value > random_value else None


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def figures(result, decided: Sequence[Decided], last: int = LAST) -> dict[str, Any]:
    """A run's curve per window and its last `last` impressions: achieved, expected and greedy values;
    the decisions of the policy after the run (`Decided.final`, a suffix) apart, under "final"."""
    everything = np.array([clicked for *_, clicked in result.sequence], dtype=float)
    assert sum(len(d.shown) for d in decided) == len(everything) == result.tally.impressions
    ended = next((i for i, d in enumerate(decided) if d.final), len(decided))
    assert all(d.final for d in decided[ended:]), "the final policy's decisions are not the last ones"
    decided, after = decided[:ended], decided[ended:]
    impressions = np.array([len(d.shown) for d in decided])
    total = int(impressions.sum())
    clicks = everything[:total]
    greedy = np.array([d.greedy for d in decided])
    first_random = np.array([d.random for d in decided])
    first_best = np.array([d.best[0] for d in decided])
    cumulative = np.cumsum(impressions)
    window_of = np.searchsorted([p.impressions for p in result.curve], cumulative, side="left")
    curve = []
    for i, p in enumerate([point for point in result.curve if point.impressions <= total]):
        mine = window_of == i
        g, gr, go = _mean(greedy[mine]), _mean(first_random[mine]), _mean(first_best[mine])
        curve.append({"impressions": p.impressions, "ctr": p.ctr, "expected": p.expected, "random": p.random,
                      "oracle": p.oracle, "liftAchieved": lift(p.ctr, p.random, p.oracle),
                      "liftExpected": lift(p.expected, p.random, p.oracle),
                      "greedy": g, "greedyRandom": gr, "greedyOracle": go, "liftGreedy": lift(g, gr, go)})
    # the last decisions that hold at least `last` impressions
    first = int(np.searchsorted(cumulative, total - last, side="right")) if total > last else 0
    start = int(cumulative[first - 1]) if first else 0
    return {"impressions": total, "clicks": int(clicks.sum()), "ctr": _mean(clicks),
            "last": _span(decided[first:], clicks[start:]), "curve": curve,
            **({"final": _span(after, everything[total:])} if after else {})}


def _span(decided: Sequence[Decided], clicks: np.ndarray) -> dict[str, Any]:
    """Achieved, expected and greedy values of consecutive decisions (`clicks`: their impressions')."""
    impressions = [len(d.shown) for d in decided]
    ctr, expected = _mean(clicks), _mean(np.array([p for d in decided for p in d.shown]))
    rnd = _mean(np.repeat([d.random for d in decided], impressions))
    orc = _mean(np.array([p for d in decided for p in d.best]))
    g, gr, go = (_mean(np.array(values, dtype=float)) for values in
                 ([d.greedy for d in decided], [d.random for d in decided], [d.best[0] for d in decided]))
    return {"impressions": len(clicks), "decisions": len(decided), "ctr": ctr, "expected": expected,
            "random": rnd, "oracle": orc, "liftAchieved": lift(ctr, rnd, orc),
            "liftExpected": lift(expected, rnd, orc), "greedy": g, "greedyRandom": gr, "greedyOracle": go,
            "liftGreedy": lift(g, gr, go)}


# -- the learning curves -------------------------------------------------------------------------
@dataclass
class Run:
    name: str
    figures: dict[str, Any]
    learner: Any = None  # offerloop's Learner (its logged tables feed the retraining sizes)


def _policy(name: str, world, options) -> tuple[policy.Chooser, Greedy, Callable, Callable[[], dict], Any]:
    """(chooser, greedy value, on_events, extra figures, learner) of a policy by name."""
    from shared.learning.loop import Learner
    from shared.simulation import headless

    if name == "offerloop":
        clock = EventClock(options.start)
        # the retrains of IMPRESSIONS impressions, then the last model serves FINAL more, unchanged
        learner = Learner(retrain_every=RETRAIN_EVERY, seed=SEED, clock=clock,
                          max_retrains=IMPRESSIONS // RETRAIN_EVERY if FINAL and RETRAIN_EVERY else None,
                          segments={u.id: u.segment for u in world.users.values() if u.segment},
                          affinity=AFFINITY)
        chooser = learner.chooser

        def greedy(context, candidates, truth):
            return truth[greedy_index(np.asarray(chooser.scores(context, candidates)[0]))]

        def on_events(batch):
            clock.see(batch)
            learner.on_events(batch)

        def extra():
            reports = learner.reports
            return {"retrainEvery": RETRAIN_EVERY, "retrains": len(reports),
                    "promotions": sum(bool(r.get("promoted")) for r in reports),
                    "retrainSeconds": sum(r.get("jobSeconds", 0.0) for r in reports),
                    "exploration": Exploration().logged(),
                    "reports": [{"examples": r.get("data", {}).get("examples"), "promoted": r.get("promoted"),
                                 "reason": r.get("reason"), "timings": r.get("timings"),
                                 "jobSeconds": r.get("jobSeconds")} for r in reports]}
        return chooser, greedy, on_events, extra, learner
    if name == "vowpalwabbit":
        vw = VowpalWabbit()
        return vw, lambda context, candidates, truth: truth[vw.greedy], vw.on_events, vw.finish, None
    if name in ("random", "oracle"):
        chooser = headless.chooser(name, world, options.seed)
        value = (lambda c, s, truth: truth.mean()) if name == "random" else (lambda c, s, truth: truth.max())
        return chooser, value, lambda batch: None, dict, None
    raise ValueError(f"unknown policy {name!r}")


def learning_curves(names: Sequence[str] = POLICIES) -> list[Run]:
    from ops import simulate
    from shared.simulation import headless
    from shared.simulation.world import World, WorldParams

    options = headless.Options(impressions=IMPRESSIONS, users=USERS, seed=SEED, window=WINDOW)
    params, spec = WorldParams(), catalog.CatalogSpec()
    snapshot = headless.catalog_snapshot(spec, options.start)
    world = World(params, snapshot.products, snapshot.offers, snapshot.users)  # the same as each run's (seeded)
    runs = []
    for name in names:
        chooser, greedy, on_events, extra, learner = _policy(name, world, options)
        frozen = (lambda: learner.frozen) if learner is not None and learner.max_retrains is not None else None
        recorder = Recorder(chooser, greedy, world, frozen or (lambda: False))
        run_options = dataclasses.replace(options, impressions=IMPRESSIONS + FINAL) if frozen else options
        measured = simulate.run_headless(recorder, run_options, params, spec, snapshot=snapshot, name=name,
                                         on_events=on_events,
                                         related=(lambda: learner.related) if learner is not None else lambda: None)
        figures_ = {**figures(measured.result, recorder.decided), "wallSeconds": measured.wall_seconds,
                    "impressionsPerSecond": measured.impressions_per_second, **extra()}
        runs.append(Run(name, figures_, learner))
        last = figures_["last"]
        print(f"{name}: last {last['impressions']:,} impressions: CTR {last['ctr']:.4f}, greedy value "
              f"{last['greedy']:.4f}, lift achieved {_pct(last['liftAchieved'])}, greedy {_pct(last['liftGreedy'])} "
              f"({measured.wall_seconds:.0f} s)", flush=True)
        final = figures_.get("final")
        if final:
            print(f"{name}: the policy after {IMPRESSIONS:,} impressions, on the next {final['impressions']:,}: "
                  f"greedy value {final['greedy']:.4f}, lift {_pct(final['liftGreedy'])}; CTR {final['ctr']:.4f}, "
                  f"lift {_pct(final['liftAchieved'])}", flush=True)
    return runs


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


# -- retraining time and memory ------------------------------------------------------------------
def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([("time", "ascending")])


def base_tables(events: pa.Table, decisions: pa.Table, count: int = BASE) -> tuple[pa.Table, pa.Table]:
    """The first `count` decisions and the events up to their last reward's time."""
    decisions = _sorted(decisions).slice(0, count)
    return _prefix(_sorted(events), decisions)


def _prefix(events: pa.Table, decisions: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The events up to the last decision's time plus the reward wait (its rewards come along)."""
    if decisions.num_rows == 0:
        return events.slice(0, 0), decisions
    last = decisions.column("time")[-1].as_py() + timedelta(seconds=retrain.LearningConfig().rewards.wait_seconds)
    keep = pc.less_equal(events.column("time"), pa.scalar(last, type=events.schema.field("time").type))
    return events.filter(keep), decisions


def _shifted(table: pa.Table, columns: Sequence[str], delta: timedelta) -> pa.Table:
    for name in columns:
        at = table.schema.get_field_index(name)
        shifted = pc.add(table.column(name), pa.scalar(delta, type=pa.duration("us")))
        table = table.set_column(at, name, shifted.cast(table.schema.field(name).type))
    return table


def _suffixed(table: pa.Table, columns: Sequence[str], suffix: str) -> pa.Table:
    for name in columns:
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, pc.binary_join_element_wise(table.column(name), suffix, ""))
    return table


def tile(events: pa.Table, decisions: pa.Table, k: int, span: timedelta) -> tuple[pa.Table, pa.Table]:
    """Copy k of the base tables: `k` spans later, with decision and event ids ending in `~k`."""
    if k == 0:
        return events, decisions
    suffix = f"~{k}"
    delta = k * span
    events = _suffixed(_shifted(events, ("time", "enqueuedTime"), delta), ("id", "decisionId"), suffix)
    decisions = _suffixed(_shifted(decisions, ("time",), delta), ("decisionId",), suffix)
    return events, decisions


def write_tiled(events: pa.Table, decisions: pa.Table, size: int, folder: Path) -> dict[str, Any]:
    """`size` decisions tiled from the base tables, as events.parquet and decisions.parquet (zstd)."""
    base = decisions.num_rows
    first, last = events.column("time")[0].as_py(), events.column("time")[-1].as_py()
    span = (last - first) + timedelta(hours=1)
    writers = {kind: pq.ParquetWriter(folder / f"{kind}.parquet", schema, compression="zstd")
               for kind, schema in (("events", dataset.EVENTS_SCHEMA), ("decisions", dataset.DECISIONS_SCHEMA))}
    written, latest, k = 0, None, 0
    try:
        while written < size:
            take = min(base, size - written)
            e, d = _prefix(events, decisions.slice(0, take)) if take < base else (events, decisions)
            e, d = tile(e, d, k, span)
            writers["events"].write_table(e)
            writers["decisions"].write_table(d)
            written += d.num_rows
            latest = d.column("time")[-1].as_py()
            k += 1
    finally:
        for writer in writers.values():
            writer.close()
    return {"decisions": written, "copies": k, "latest": latest.isoformat(),
            "parquetMiB": sum((folder / f"{kind}.parquet").stat().st_size for kind in ("events", "decisions")) / 2**20}


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: /proc's VmHWM where there is one, else ru_maxrss.

    On Linux ru_maxrss keeps the parent's peak across the vfork + exec that starts a worker,
    so it would report the benchmark's own memory; VmHWM belongs to the worker's image alone."""
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def read_for_training(folder: Path, full: bool) -> tuple[pa.Table, pa.Table]:
    """The tables as `train` gets them: every column (`full`), or the columns it uses (see the module doc)."""
    if full:
        return pq.read_table(folder / "events.parquet"), pq.read_table(folder / "decisions.parquet")
    return (pq.read_table(folder / "events.parquet", columns=list(REWARD_COLUMNS)),
            pq.read_table(folder / "decisions.parquet", columns=list(dataset.TRAINING_COLUMNS)))


def candidates_reader(path: Path) -> retrain.Candidates:
    """`train`'s candidates_of: the scored decisions' candidates, from the file's row groups that reach
    the earliest held-out time, only those decisions kept as the rows are decoded (as the retrain job
    reads them from each hour's file)."""
    def candidates_of(ids: list[str], earliest: datetime) -> dict[str, str]:
        file = pq.ParquetFile(path)
        column = file.schema_arrow.get_field_index("time")
        groups = []
        for g in range(file.num_row_groups):
            stats = file.metadata.row_group(g).column(column).statistics
            if stats is None or not stats.has_min_max or stats.max >= earliest:
                groups.append(g)
        table = compaction.read_parquet(path, ("decisionId", "candidates"), compaction.id_array(ids), row_groups=groups)
        return dataset.candidate_texts(table, ids)
    return candidates_of


TRACED = ((dataset, "examples"), (retrain, "fit_candidate"), (retrain, "assess"))  # train's steps


def _trace(began: float) -> None:
    """Say on stderr when each of train's steps starts and ends (a stopped worker's last step is known)."""
    def say(step: str, event: str) -> None:
        print(json.dumps({"step": step, "event": event, "at": round(time.perf_counter() - began, 1),
                          "peakRssMiB": round(peak_rss_mib())}), file=sys.stderr, flush=True)

    def traced(step: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            say(step, "start")
            try:
                return function(*args, **kwargs)
            finally:
                say(step, "end")
        return wrapper

    for module, name in TRACED:
        if callable(getattr(module, name, None)):
            setattr(module, name, traced(name, getattr(module, name)))


def retrain_worker(folder: Path, now: datetime, full: bool) -> dict[str, Any]:
    """In a process of its own: read the tables, run `train`, say how long it took and the peak memory."""
    baseline = peak_rss_mib()
    began = time.perf_counter()
    _trace(began)
    events, decisions = read_for_training(folder, full)
    read = time.perf_counter() - began
    trained = retrain.train(events, decisions, retrain.LearningConfig(), now, "bench",
                            candidates_of=None if full else candidates_reader(folder / "decisions.parquet"))
    total = time.perf_counter() - began
    report = trained.report
    return {"decisions": decisions.num_rows, "events": events.num_rows, "read": "all columns" if full else
            "training columns", "seconds": total, "readSeconds": read,
            "trainSeconds": total - read, "timings": report.get("timings"), "examples": report["data"]["examples"],
            "trainExamples": report["data"].get("trainExamples"),
            "heldOutEvents": report.get("evaluation", {}).get("heldOutEvents"),
            "peakRssMiB": peak_rss_mib(), "rssBeforeReadingMiB": baseline}


def _proc_mib(path: str, key: str) -> Optional[float]:
    """A `key: N kB` figure of a /proc file, in MiB (None when there is none)."""
    try:
        for row in Path(path).read_text().splitlines():
            if row.startswith(f"{key}:"):
                return int(row.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _measure_size(folder: Path, now: datetime, full: bool) -> dict[str, Any]:
    """Run the worker for one size; stop it after WORKER_TIMEOUT seconds, or when the machine has less
    than MEMORY_FLOOR_MIB of memory left (its peak so far is reported either way)."""
    command = [sys.executable, "-m", "bench.learning", "retrain", str(folder), now.isoformat(), "all" if full else
               "training"]
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    began, peak, stopped = time.perf_counter(), 0.0, None
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        worker = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=err, text=True)
        while worker.poll() is None:
            time.sleep(0.5)
            peak = max(peak, _proc_mib(f"/proc/{worker.pid}/status", "VmHWM") or 0.0)
            available = _proc_mib("/proc/meminfo", "MemAvailable")
            if time.perf_counter() - began > WORKER_TIMEOUT:
                stopped = f"stopped after {WORKER_TIMEOUT:.0f} s"
            elif available is not None and available < MEMORY_FLOOR_MIB:
                stopped = f"stopped: the machine had less than {MEMORY_FLOOR_MIB:,} MiB of memory left"
            if stopped:
                worker.kill()
                worker.wait()
                err.seek(0)
                steps = _steps(err.read())
                where = f" in {steps[-1]['step']}" if steps and steps[-1]["event"] == "start" else ""
                return {"error": stopped + where, "seconds": time.perf_counter() - began, "peakRssMiB": peak,
                        "steps": steps}
        out.seek(0)
        err.seek(0)
        if worker.returncode != 0:
            return {"error": f"exit {worker.returncode}: {err.read().strip()[-2000:]}", "peakRssMiB": peak}
        return {**json.loads(out.read().strip().splitlines()[-1]), "steps": _steps(err.read())}


def _steps(text: str) -> list[dict]:
    """The worker's step lines (see `_trace`)."""
    return [json.loads(row) for row in text.splitlines() if row.startswith('{"step"')]


def retraining(events: pa.Table, decisions: pa.Table, sizes: Sequence[int] = SIZES) -> dict[str, Any]:
    """Retraining seconds and peak memory per size (see the module doc)."""
    events, decisions = base_tables(events, decisions)
    out: dict[str, Any] = {"tiledFrom": f"tiled from {decisions.num_rows:,} simulated decisions "
                                        f"(the offerloop run's first) and their {events.num_rows:,} events",
                           "sizes": {}}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="offerloop-bench-learning-") as tmp:
            folder = Path(tmp)
            began = time.perf_counter()
            written = write_tiled(events, decisions, size, folder)
            now = datetime.fromisoformat(written["latest"]) + timedelta(hours=1)  # every reward settled
            print(f"retraining on {size:,} decisions ({written['parquetMiB']:,.0f} MiB of Parquet, written in "
                  f"{time.perf_counter() - began:.0f} s)…", flush=True)
            runs = {"training": _measure_size(folder, now, full=False)}
            if size <= FULL_READ_MAX:
                runs["all"] = _measure_size(folder, now, full=True)
            for mode, figures_ in runs.items():
                print(f"  {mode} columns: " + (figures_["error"] if "error" in figures_ else
                      f"{figures_['seconds']:.1f} s, peak {figures_['peakRssMiB']:,.0f} MiB, {figures_['timings']}"),
                      flush=True)
            out["sizes"][str(size)] = {"written": written, **runs}
    return out


# -- the benchmark -------------------------------------------------------------------------------
def _table(runs: Sequence[Run]) -> str:
    names = [r.name for r in runs]
    header = f"{'impressions':>11}  " + "  ".join(f"{n[:12] + ' CTR':>16}  {n[:12] + ' greedy':>19}" for n in names)
    lines = [header, "-" * len(header)]
    for i, point in enumerate(runs[0].figures["curve"]):
        cells = []
        for r in runs:
            curve = r.figures["curve"]
            p = curve[i] if i < len(curve) else None
            cells.append(f"{'':>16}  {'':>19}" if p is None else
                         f"{p['ctr']:>16.4f}  {p['greedy']:>10.4f} ({_pct(p['liftGreedy']):>6})")
        lines.append(f"{point['impressions']:>11,}  " + "  ".join(cells))
    return "\n".join(lines)


def _chart(runs: Sequence[Run], width: int = 100, height: int = 20) -> str:
    """The greedy value per window of each policy, as text."""
    import plotext

    drawn = [r for r in runs if r.figures["curve"]]
    if not drawn:
        return ""
    markers = ("●", "◆", "·", "○", "■", "▲")
    figure = plotext.figure
    figure.clear()
    figure.plot_size(width, height)
    figure.theme("clear")
    for i, r in enumerate(drawn):
        curve = r.figures["curve"]
        figure.draw(figure.signal([p["impressions"] for p in curve], [p["greedy"] for p in curve],
                                  marker=markers[i % len(markers)]).lines())
    top = max(p["greedy"] for r in drawn for p in r.figures["curve"])
    figure.ruler(axis=1).lim(0, top * 1.05 if top > 0 else 1)
    ends = [p["impressions"] for p in drawn[0].figures["curve"]]
    ends = ends[::max(1, len(ends) // 8)]
    figure.ruler(axis=0).ticks(ends, [f"{t:,}" for t in ends])
    figure.title(f"greedy value (true CTR of the greedy first-slot pick) per window of {WINDOW:,} impressions")
    figure.label("impressions", axis=0)
    text = figure.build().string(colorless=True)
    figure.clear()
    legend = "   ".join(f"{markers[i % len(markers)]} {r.name}" for i, r in enumerate(drawn))
    return f"{text.rstrip()}\n    {legend}"


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def run(stack=None) -> dict:
    """The learning curves, then the retraining sizes; the harness writes the figures to bench/results/learning.json."""
    out: dict[str, Any] = {"impressions": IMPRESSIONS, "users": USERS, "window": WINDOW, "seed": SEED,
                           "retrain_every": RETRAIN_EVERY, "last_impressions": LAST, "vw_args": VW_ARGS,
                           "vw_features": VW_FEATURES}
    runs = learning_curves()
    print(_table(runs))
    try:
        print(_chart(runs, width=max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))))
    except Exception as error:  # the chart is a convenience; the figures are what counts
        print(f"(no chart: {error})")
    for r in runs:
        last = r.figures["last"]
        out[f"{r.name}_ctr_last_pct"] = 100 * last["ctr"]
        out[f"{r.name}_greedy_ctr_last_pct"] = 100 * last["greedy"]
        for kind in ("Achieved", "Greedy"):
            value = last[f"lift{kind}"]
            if value is not None:  # None: the oracle was no better than random
                out[f"{r.name}_lift_{kind.lower()}_last_pct"] = 100 * value
        out[f"{r.name}_wall_s"] = r.figures["wallSeconds"]
        final = r.figures.get("final")
        if final:
            out[f"{r.name}_final_greedy_ctr_pct"] = 100 * final["greedy"]
            if final["liftGreedy"] is not None:
                out[f"{r.name}_final_lift_greedy_pct"] = 100 * final["liftGreedy"]
    by_name = {r.name: r.figures["last"] for r in runs}
    if "offerloop" in by_name and "vowpalwabbit" in by_name:
        ours, theirs = by_name["offerloop"], by_name["vowpalwabbit"]
        out["aim_ctr_at_least_vw_achieved"] = _met(ours["ctr"] >= theirs["ctr"])
        out["aim_ctr_at_least_vw_greedy"] = _met(ours["greedy"] >= theirs["greedy"])
    if "offerloop" in by_name:
        # the learning line: the policy after the run at least 90% of the way from random to the
        # oracle (greedy, true probabilities), and at least 70% achieved over the last LAST impressions
        final = next(r.figures.get("final") for r in runs if r.name == "offerloop")
        if final and final["liftGreedy"] is not None:
            out["aim_greedy_lift_at_least_90pct"] = _met(final["liftGreedy"] >= 0.9)
        if by_name["offerloop"]["liftAchieved"] is not None:
            out["aim_achieved_lift_at_least_70pct"] = _met(by_name["offerloop"]["liftAchieved"] >= 0.7)
    out["runs"] = {r.name: r.figures for r in runs}
    learner = next((r.learner for r in runs if r.learner is not None), None)
    if SIZES and learner is not None:
        events, decisions = learner.load(None, None)
        for r in runs:
            r.learner = None  # the workers get the memory the learner's copies of the tables held
        del learner
        sizing = retraining(events, decisions)
        for size, measured in sizing["sizes"].items():
            figures_ = measured["training"]
            if "error" in figures_:
                out[f"retrain_{size}_error"] = figures_["error"]
            else:
                out[f"retrain_{size}_s"] = figures_["seconds"]
                out[f"retrain_{size}_peak_mib"] = figures_["peakRssMiB"]
        million = sizing["sizes"].get("1000000", {}).get("training", {})
        if million:
            out["aim_1m_retrain_within_60s"] = _met("error" not in million and million["seconds"] <= 60)
        out["retraining"] = sizing
    elif SIZES:
        out["retraining"] = {"skipped": "the retraining sizes are tiled from the offerloop run's decisions"}
    return out


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "retrain":
        result = retrain_worker(Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), sys.argv[4] == "all")
        print(json.dumps(result))
    else:
        print(json.dumps(run(None), indent=2, default=str))
