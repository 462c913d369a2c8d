"""The logged decisions and rewards, as Arrow tables, and the examples the ranker learns from.

Two tables come from archived events (`tables(records)`, the same for the raw archive's
JSON lines and for the Parquet archive that compaction writes from them):

  events     one row per event: id, type, source, userId, time, partition, sequence,
             enqueuedTime, dataschema, the common data fields as columns (decisionId,
             offerId, productId, category, price, value) and `data` as JSON text
  decisions  one row per offer.shown: decisionId, userId, time, modelVersion,
             explorationPolicy, epsilon, coldStart, candidateCount, the first slot's
             chosenOfferId and probability, and as JSON text: context, chosen
             ([{offerId, slot, probability}]), chosenFeatures (the chosen offers' features,
             in slot order) and candidates ([{offerId, features}])

Rewards follow Azure Personalizer's semantics (`RewardRules`): an offer.clicked is a reward
of 1 for the clicked offer of its decision; a reward.received is its value, for its offer or,
without one, for the first slot. Only rewards that arrive within the reward wait time of the
decision count; several are aggregated as the earliest or the sum; a decision with none
gets the default reward. Decisions younger than the wait time are still pending and are left
out. Training reads only the compact columns; the candidates are parsed only for the
held-out decisions that evaluation scores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import orjson
import pyarrow as pa

from .. import events as ev

EARLIEST, SUM = "earliest", "sum"
AGGREGATIONS = (EARLIEST, SUM)
REWARD_TYPES = (ev.OFFER_CLICKED, ev.REWARD_RECEIVED)

_TIME = pa.timestamp("us", tz="UTC")
EVENTS_SCHEMA = pa.schema([
    ("id", pa.string()), ("type", pa.string()), ("source", pa.string()), ("userId", pa.string()),
    ("time", _TIME), ("partition", pa.string()), ("sequence", pa.int64()), ("enqueuedTime", _TIME),
    ("dataschema", pa.string()), ("decisionId", pa.string()), ("offerId", pa.string()),
    ("productId", pa.string()), ("category", pa.string()), ("price", pa.float64()), ("value", pa.float64()),
    ("data", pa.string()),
])
DECISIONS_SCHEMA = pa.schema([
    ("decisionId", pa.string()), ("userId", pa.string()), ("time", _TIME), ("modelVersion", pa.string()),
    ("explorationPolicy", pa.string()), ("epsilon", pa.float64()), ("coldStart", pa.bool_()),
    ("candidateCount", pa.int32()), ("chosenOfferId", pa.string()), ("probability", pa.float64()),
    ("context", pa.string()), ("chosen", pa.string()), ("chosenFeatures", pa.string()), ("candidates", pa.string()),
])
TRAINING_COLUMNS = ("decisionId", "time", "modelVersion", "context", "chosen", "chosenFeatures")
REWARD_COLUMNS = ("id", "type", "decisionId", "offerId", "value", "time")
CANDIDATE_COLUMNS = ("decisionId", "time", "candidates")


def _time(text: Any) -> Optional[datetime]:
    if not isinstance(text, str) or not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def tables(records: Iterable[Mapping[str, Any]]) -> tuple[pa.Table, pa.Table]:
    """(events, decisions) from archive records ({partition, sequence, enqueuedTime, event}) or bare
    CloudEvents; a repeated event id is kept once (the first)."""
    rows: dict[str, list] = {name: [] for name in EVENTS_SCHEMA.names}
    shown: dict[str, list] = {name: [] for name in DECISIONS_SCHEMA.names}
    seen: set[str] = set()
    for record in records:
        event = record.get("event", record)
        event_id = event.get("id")
        if event_id in seen:
            continue
        seen.add(event_id)
        data = event.get("data") or {}
        time = _time(event.get("time"))
        for name, value in (("id", event_id), ("type", event.get("type")), ("source", event.get("source")),
                            ("userId", event.get("subject")), ("time", time),
                            ("partition", record.get("partition")), ("sequence", record.get("sequence")),
                            ("enqueuedTime", _time(record.get("enqueuedTime"))),
                            ("dataschema", event.get("dataschema")), ("decisionId", data.get("decisionId")),
                            ("offerId", data.get("offerId")), ("productId", data.get("productId")),
                            ("category", data.get("category")), ("price", _number(data.get("price"))),
                            ("value", _number(data.get("value"))), ("data", _json(data))):
            rows[name].append(value)
        if event.get("type") == ev.OFFER_SHOWN:
            chosen = sorted(data.get("chosen") or [], key=lambda c: c.get("slot", 0))
            candidates = data.get("candidates") or []
            by_id = {c.get("offerId"): c.get("features") or {} for c in candidates}
            exploration = data.get("exploration") or {}
            for name, value in (("decisionId", data.get("decisionId") or event_id), ("userId", event.get("subject")),
                                ("time", time), ("modelVersion", data.get("modelVersion")),
                                ("explorationPolicy", exploration.get("policy")),
                                ("epsilon", _number(exploration.get("epsilon"))),
                                ("coldStart", bool(data.get("coldStart", False))),
                                ("candidateCount", len(candidates)),
                                ("chosenOfferId", chosen[0].get("offerId") if chosen else None),
                                ("probability", _number(chosen[0].get("probability")) if chosen else None),
                                ("context", _json(data.get("context") or {})),
                                ("chosen", _json([{k: c.get(k) for k in ("offerId", "slot", "probability")}
                                                  for c in chosen])),
                                ("chosenFeatures", _json([by_id.get(c.get("offerId"), {}) for c in chosen])),
                                ("candidates", _json(candidates))):
                shown[name].append(value)
    return (pa.Table.from_pydict(rows, schema=EVENTS_SCHEMA), pa.Table.from_pydict(shown, schema=DECISIONS_SCHEMA))


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class RewardRules:
    wait_seconds: float = 600.0
    default: float = 0.0
    aggregation: str = EARLIEST

    def __post_init__(self) -> None:
        if not self.wait_seconds > 0:
            raise ValueError("the reward wait time must be positive")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"reward aggregation must be one of {', '.join(AGGREGATIONS)}")
        if not -1 <= self.default <= 1:
            raise ValueError("the default reward must be from -1 to 1")


@dataclass
class Examples:
    """One row per (decision, slot) whose reward is settled, oldest first."""

    decision_ids: list[str]
    times: np.ndarray  # datetime64[us]
    contexts: list[dict]
    actions: list[dict]  # the shown offer's features
    offer_ids: list[str]
    slots: np.ndarray
    probabilities: np.ndarray
    rewards: np.ndarray
    model_versions: list[str]
    owner: np.ndarray  # index into `contexts` per row (a decision's slots share a context)
    pending: int = 0  # decisions left out: younger than the reward wait time
    rewarded: int = 0  # rows that got a reward (not the default)
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rewards)


def rewards_by_decision(events: pa.Table) -> dict[str, list[tuple[datetime, Optional[str], float]]]:
    """decisionId -> [(time, offerId or None, value)] of the reward-carrying events."""
    mask = np.isin(events.column("type").to_numpy(zero_copy_only=False), REWARD_TYPES)
    picked = events.filter(pa.array(mask))
    out: dict[str, list[tuple[datetime, Optional[str], float]]] = {}
    for kind, decision, offer, value, time in zip(*(picked.column(c).to_pylist() for c in
                                                    ("type", "decisionId", "offerId", "value", "time"))):
        if decision is None or time is None:
            continue
        amount = 1.0 if kind == ev.OFFER_CLICKED else float(value if value is not None else 0.0)
        out.setdefault(decision, []).append((time, offer, amount))
    return out


def examples(decisions: pa.Table, rewards: Mapping[str, list[tuple[datetime, Optional[str], float]]],
             rules: RewardRules, as_of: datetime) -> Examples:
    """Join decisions with their rewards (see the module doc); decisions after `as_of - wait` are pending."""
    decisions = decisions.sort_by([("time", "ascending"), ("decisionId", "ascending")])
    wait = timedelta(seconds=rules.wait_seconds)
    settled_before = as_of - wait
    columns = {c: decisions.column(c).to_pylist() for c in TRAINING_COLUMNS}
    out = Examples([], np.zeros(0, "datetime64[us]"), [], [], [], np.zeros(0, np.int32), np.zeros(0), np.zeros(0),
                   [], np.zeros(0, np.int64))
    times, slots, probabilities, values, owner = [], [], [], [], []
    for decision_id, time, version, context, chosen, features in zip(*(columns[c] for c in TRAINING_COLUMNS)):
        if time > settled_before:
            out.pending += 1
            continue
        chosen, features = orjson.loads(chosen), orjson.loads(features)
        if not chosen:
            continue
        found = rewards.get(decision_id, ())
        out.contexts.append(orjson.loads(context))
        for position, (slot, action) in enumerate(zip(chosen, features)):
            offer_id = slot.get("offerId")
            amounts = [(t, v) for t, o, v in found
                       if time <= t <= time + wait and (o == offer_id or (o is None and position == 0))]
            if amounts:
                reward = min(amounts)[1] if rules.aggregation == EARLIEST else sum(v for _, v in amounts)
                out.rewarded += 1
            else:
                reward = rules.default
            out.decision_ids.append(decision_id)
            times.append(time)
            out.actions.append(action)
            out.offer_ids.append(offer_id)
            out.model_versions.append(version or "")
            slots.append(int(slot.get("slot", position)))
            probabilities.append(float(slot.get("probability") or 0.0))
            values.append(max(-1.0, min(1.0, reward)))
            owner.append(len(out.contexts) - 1)
    out.times = np.array([t.replace(tzinfo=None) for t in times], dtype="datetime64[us]")
    out.slots = np.array(slots, dtype=np.int32)
    out.probabilities = np.array(probabilities, dtype=np.float64)
    out.rewards = np.array(values, dtype=np.float64)
    out.owner = np.array(owner, dtype=np.int64)
    return out


def candidates_of(decisions: pa.Table, decision_ids: Sequence[str]) -> dict[str, list[dict]]:
    """decisionId -> its candidates ([{offerId, features}]), parsed only for these decisions."""
    wanted = set(decision_ids)
    ids = decisions.column("decisionId").to_pylist()
    keep = np.fromiter((i in wanted for i in ids), dtype=bool, count=len(ids))
    picked = decisions.filter(pa.array(keep))
    return {d: orjson.loads(c) for d, c in zip(picked.column("decisionId").to_pylist(),
                                              picked.column("candidates").to_pylist())}


def projected(schema: pa.Schema, columns: Optional[Sequence[str]]) -> pa.Schema:
    """The schema of only these columns (all when None)."""
    return schema if columns is None else pa.schema([schema.field(c) for c in columns])


def select(table: pa.Table, columns: Optional[Sequence[str]]) -> pa.Table:
    return table if columns is None else table.select(list(columns))


def concat(parts: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    """The parts as one table (chunked: a column's text may exceed one array's 2 GiB)."""
    parts = [p for p in parts if p.num_rows]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def dedupe(decisions: pa.Table) -> pa.Table:
    """One row per decisionId (the archive and a not-yet-compacted hour may both hold it)."""
    ids = decisions.column("decisionId").to_pylist()
    seen: set[str] = set()
    keep = []
    for i in ids:
        keep.append(i not in seen)
        seen.add(i)
    return decisions if all(keep) else decisions.filter(pa.array(keep))
