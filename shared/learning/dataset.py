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
without one, for the first slot; a personalizer.rewarded is its value for its slot (by slot
id), or the first slot. Only rewards that arrive within the reward wait time of the
decision count; several are aggregated as the earliest, the sum or the average; a decision
with none gets the default reward. A deferred decision (Personalizer's deferActivation) is
learned from only once a personalizer.activated event for it is in the window.

Two loops log decisions: the offers function (offer.shown, loop "offers") and the
Personalizer-compatible API (personalizer.ranked, loop "personalizer"); `for_loop` keeps one. Decisions younger than the wait time are still pending and are left
out. Training reads only the compact columns; the candidates are parsed only for the
held-out decisions that evaluation scores.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .. import events as ev

EARLIEST, SUM, AVERAGE = "earliest", "sum", "average"
AGGREGATIONS = (EARLIEST, SUM, AVERAGE)
REWARD_TYPES = (ev.OFFER_CLICKED, ev.REWARD_RECEIVED, ev.PERSONALIZER_REWARDED)
OFFERS, PERSONALIZER = "offers", "personalizer"
LOOPS = {ev.OFFER_SHOWN: OFFERS, ev.PERSONALIZER_RANKED: PERSONALIZER}  # decision event type -> loop

_TIME = pa.timestamp("us", tz="UTC")
EVENTS_SCHEMA = pa.schema([
    ("id", pa.string()), ("type", pa.string()), ("source", pa.string()), ("userId", pa.string()),
    ("time", _TIME), ("partition", pa.string()), ("sequence", pa.int64()), ("enqueuedTime", _TIME),
    ("dataschema", pa.string()), ("decisionId", pa.string()), ("offerId", pa.string()),
    ("productId", pa.string()), ("category", pa.string()), ("price", pa.float64()), ("value", pa.float64()),
    ("data", pa.string()), ("slotId", pa.string()),
])
DECISIONS_SCHEMA = pa.schema([
    ("decisionId", pa.string()), ("userId", pa.string()), ("time", _TIME), ("modelVersion", pa.string()),
    ("explorationPolicy", pa.string()), ("epsilon", pa.float64()), ("coldStart", pa.bool_()),
    ("candidateCount", pa.int32()), ("chosenOfferId", pa.string()), ("probability", pa.float64()),
    ("context", pa.string()), ("chosen", pa.string()), ("chosenFeatures", pa.string()), ("candidates", pa.string()),
    ("loop", pa.string()), ("deferred", pa.bool_()),
])
TRAINING_COLUMNS = ("decisionId", "time", "context", "chosen", "chosenFeatures")
LOOP_COLUMNS = ("loop", "deferred")  # which loop a decision is of; whether it waits for activation
REWARD_COLUMNS = ("id", "type", "decisionId", "offerId", "value", "time", "slotId")
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
                            ("value", _number(data.get("value"))), ("data", _json(data)),
                            ("slotId", data.get("slotId"))):
            rows[name].append(value)
        loop = LOOPS.get(event.get("type"))
        if loop is not None:
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
                                ("chosen", _json([_chosen(c) for c in chosen])),
                                ("chosenFeatures", _json([by_id.get(c.get("offerId"), {}) for c in chosen])),
                                ("candidates", _json(candidates)), ("loop", loop),
                                ("deferred", bool(data.get("deferred", False)))):
                shown[name].append(value)
    return (pa.Table.from_pydict(rows, schema=EVENTS_SCHEMA), pa.Table.from_pydict(shown, schema=DECISIONS_SCHEMA))


def _chosen(chosen: Mapping[str, Any]) -> dict[str, Any]:
    """A chosen offer as the decisions table keeps it (a multi-slot decision's slot id too)."""
    kept = {k: chosen.get(k) for k in ("offerId", "slot", "probability")}
    if chosen.get("slotId") is not None:
        kept["slotId"] = chosen["slotId"]
    return kept


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
    """One row per (decision, slot) whose reward is settled, oldest first. The settled decisions
    themselves stay an Arrow table (`decisions`, row `owner[i]` for example i) whose JSON is
    parsed only when features are built, a slice at a time (`contexts`, `logged`)."""

    decision_ids: list[str]
    times: np.ndarray  # datetime64[us]
    offer_ids: list[str]
    slots: np.ndarray
    probabilities: np.ndarray
    rewards: np.ndarray
    owner: np.ndarray  # index into `decisions` per row (a decision's slots share a context)
    positions: np.ndarray  # the row's index among its decision's chosen offers
    decisions: pa.Table  # the settled decisions, in the rows' order
    pending: int = 0  # decisions left out: younger than the reward wait time
    rewarded: int = 0  # rows that got a reward (not the default)

    def __len__(self) -> int:
        return len(self.rewards)

    def contexts(self, owners: Sequence[int]) -> list[dict]:
        """The logged context of each of these decisions (indices into `decisions`)."""
        return [orjson.loads(t) for t in self.context_texts(owners).to_pylist()]

    def context_texts(self, owners: Sequence[int]) -> pa.Array:
        """The same contexts' JSON text."""
        return _texts(self.decisions.column("context"), np.asarray(owners, dtype=np.int64))

    def logged(self, start: int, stop: int) -> "Logged":
        """The JSON text behind rows start..stop-1 (see `Logged`)."""
        distinct, local = np.unique(self.owner[start:stop], return_inverse=True)
        return Logged(_texts(self.decisions.column("context"), distinct),
                      _texts(self.decisions.column("chosenFeatures"), distinct),
                      local.reshape(-1).astype(np.int64), self.positions[start:stop].copy())


@dataclass
class Logged:
    """Some rows' logged features, unparsed: small to send to another process. Row i shows the
    offer at `positions[i]` of `chosen_features[local[i]]` in the context `contexts[local[i]]`."""

    contexts: pa.Array  # JSON objects
    chosen_features: pa.Array  # JSON lists of the shown offers' features (null: none)
    local: np.ndarray
    positions: np.ndarray

    def parsed(self) -> tuple[list[dict], list[dict]]:
        """(the contexts, each row's action features)."""
        return parse_logged(self.contexts, self.chosen_features, self.local, self.positions)


def parse_logged(contexts: pa.Array, lists: pa.Array, local: np.ndarray, positions: np.ndarray,
                 field: Optional[str] = None) -> tuple[list[dict], list[dict]]:
    """Logged JSON text parsed: (the contexts, each row's action: the object at positions[i] of the
    list lists[local[i]] ({} past its end or for a null list), or that object's `field` ({} when null))."""
    parsed_lists = [orjson.loads(t or "[]") for t in lists.to_pylist()]
    actions = [items[p] if p < len(items) else {} for items, p in
               zip((parsed_lists[k] for k in np.asarray(local).tolist()), np.asarray(positions).tolist())]
    if field is not None:
        actions = [a.get(field) or {} for a in actions]
    return [orjson.loads(t) for t in contexts.to_pylist()], actions


def _texts(column: pa.ChunkedArray, indices: np.ndarray) -> pa.Array:
    """These rows as an array with buffers of its own, so it pickles small: an ascending contiguous
    run is sliced (looking rows up across a big column's chunks costs far more)."""
    if not len(indices):
        return pa.array([], type=column.type)
    if np.all(np.diff(indices) == 1):
        part = column.slice(int(indices[0]), len(indices))
    else:
        part = column.take(pa.array(np.asarray(indices, dtype=np.int64)))
    return pa.concat_arrays(part.chunks)  # a copy: a slice would pickle its whole parent buffer


def reward_events(events: pa.Table) -> pa.Table:
    """The reward-carrying events (offer.clicked: 1; reward.received: its value, 0 without one) as
    decisionId, offerId (null: the decision's first slot), time and amount."""
    picked = events.filter(pc.is_in(events.column("type"), value_set=pa.array(REWARD_TYPES, pa.string())))
    picked = picked.filter(pc.and_(pc.is_valid(picked.column("decisionId")), pc.is_valid(picked.column("time"))))
    clicked = pc.equal(picked.column("type"), ev.OFFER_CLICKED)
    amount = pc.if_else(clicked, 1.0, pc.fill_null(picked.column("value").cast(pa.float64()), 0.0))
    slot = picked.column("slotId") if "slotId" in picked.column_names else pa.nulls(picked.num_rows, pa.string())
    return pa.table({"decisionId": picked.column("decisionId"), "offerId": picked.column("offerId"),
                     "time": picked.column("time"), "amount": amount, "slotId": slot})


def activations(events: pa.Table) -> pa.Table:
    """The activated decisions (personalizer.activated): decisionId and the time of the first activation."""
    picked = events.filter(pc.equal(events.column("type"), ev.PERSONALIZER_ACTIVATED))
    picked = picked.filter(pc.and_(pc.is_valid(picked.column("decisionId")), pc.is_valid(picked.column("time"))))
    first = picked.group_by("decisionId").aggregate([("time", "min")])
    return pa.table({"decisionId": first.column("decisionId"), "time": first.column("time_min")})


def for_loop(decisions: pa.Table, loop: str) -> pa.Table:
    """The decisions of one loop (a decision logged before loops were told apart is the offers loop's)."""
    if "loop" not in decisions.column_names:
        return decisions if loop == OFFERS else decisions.slice(0, 0)
    column = pc.fill_null(decisions.column("loop"), OFFERS)
    return decisions.filter(pc.equal(column, loop))


def _inactive(decisions: pa.Table, activated: Optional[pa.Table]) -> pa.Table:
    """Deferred decisions never activated are left out: Personalizer does not learn from them."""
    if "deferred" not in decisions.column_names:
        return decisions
    deferred = pc.fill_null(decisions.column("deferred"), False)
    if not pc.any(deferred).as_py():
        return decisions
    ids = activated.column("decisionId") if activated is not None else pa.array([], pa.string())
    keep = pc.or_(pc.invert(deferred), pc.is_in(decisions.column("decisionId"), value_set=ids))
    return decisions.filter(keep)


def examples(decisions: pa.Table, rewards: pa.Table, rules: RewardRules, as_of: datetime,
             activated: Optional[pa.Table] = None) -> Examples:
    """Join decisions with their rewards (`reward_events`; see the module doc); decisions after
    `as_of - wait` are pending, deferred ones not `activated` are left out. Only the small
    `chosen` column is parsed here."""
    decisions = _inactive(decisions, activated)
    decisions = decisions.select([c for c in TRAINING_COLUMNS if c in decisions.column_names])
    order = pc.sort_indices(decisions.select(["time", "decisionId"]),
                            sort_keys=[("time", "ascending"), ("decisionId", "ascending")]).to_numpy()
    if np.any(order[1:] < order[:-1]):  # the archive is mostly in order already: no copy then
        decisions = decisions.take(order)
    wait = np.timedelta64(int(rules.wait_seconds * 1e6), "us")
    cutoff = np.datetime64((as_of - timedelta(seconds=rules.wait_seconds)).astimezone(timezone.utc)
                           .replace(tzinfo=None), "us")
    decision_times = _datetimes(decisions.column("time"))
    settled = int(np.searchsorted(decision_times, cutoff, side="right"))  # sorted by time: a prefix is settled
    kept = decisions.slice(0, settled)
    owner, positions, offer_ids, slots, probabilities, slot_ids = [], [], [], [], [], []
    for index, text in enumerate(kept.column("chosen").to_pylist()):
        for position, slot in enumerate(orjson.loads(text) if text else ()):
            owner.append(index)
            positions.append(position)
            offer_ids.append(slot.get("offerId"))
            slot_ids.append(slot.get("slotId"))
            slots.append(int(slot.get("slot", position)))
            probabilities.append(float(slot.get("probability") or 0.0))
    owner_array = np.array(owner, dtype=np.int64)
    ids = np.array(kept.column("decisionId").to_pylist(), dtype=object)
    out = Examples(ids[owner_array].tolist(), decision_times[:settled][owner_array], offer_ids,
                   np.array(slots, dtype=np.int32), np.array(probabilities, dtype=np.float64),
                   np.full(len(owner), float(rules.default)), owner_array,
                   np.array(positions, dtype=np.int32), kept, pending=decisions.num_rows - settled)
    found, amount = _rewarded(out, slot_ids, rewards, wait, rules.aggregation)
    out.rewards[found] = np.clip(amount, -1.0, 1.0)
    out.rewarded = len(found)
    return out


def _rewarded(out: Examples, slot_ids: Sequence[Optional[str]], rewards: pa.Table, wait: np.timedelta64,
              aggregation: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows that got rewards within the wait time, and their aggregated amounts."""
    rows = pa.table({"row": pa.array(np.arange(len(out), dtype=np.int64)),
                     "decisionId": pa.array(out.decision_ids, pa.string()),
                     "offer": pa.array(out.offer_ids, pa.string()), "position": pa.array(out.positions),
                     "slot": pa.array(slot_ids, pa.string())})
    if "slotId" not in rewards.column_names:
        rewards = rewards.append_column("slotId", pa.nulls(rewards.num_rows, pa.string()))
    rewards = rewards.select(["decisionId", "offerId", "time", "amount", "slotId"]) \
        .rename_columns(["decisionId", "rewardOffer", "rewardTime", "amount", "rewardSlot"])
    joined = rows.join(rewards, keys="decisionId", join_type="inner")
    if joined.num_rows == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    row = joined.column("row").to_numpy()
    at = _datetimes(joined.column("rewardTime"))
    decided = out.times[row]
    own = pc.fill_null(pc.equal(joined.column("offer"), joined.column("rewardOffer")), False).to_numpy(
        zero_copy_only=False)
    slot = pc.fill_null(pc.equal(joined.column("slot"), joined.column("rewardSlot")), False).to_numpy(
        zero_copy_only=False)
    unaddressed = pc.and_(pc.is_null(joined.column("rewardOffer")), pc.is_null(joined.column("rewardSlot")))
    first_slot = unaddressed.to_numpy(zero_copy_only=False) & (joined.column("position").to_numpy() == 0)
    keep = (own | slot | first_slot) & (decided <= at) & (at <= decided + wait)
    row, at, amount = row[keep], at[keep], joined.column("amount").to_numpy()[keep]
    if aggregation == EARLIEST:
        order = np.lexsort((amount, at, row))  # by row, then time (then the smaller amount on a tie)
        row, amount = row[order], amount[order]
        first = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else np.zeros(0, np.int64)
        return row[first], amount[first]
    found = np.unique(row)
    total = np.bincount(row, weights=amount, minlength=len(out))[found]
    if aggregation == AVERAGE:
        return found, total / np.bincount(row, minlength=len(out))[found]
    return found, total


def _datetimes(column: pa.ChunkedArray) -> np.ndarray:
    """A UTC timestamp column as naive datetime64[us]."""
    return column.cast(pa.timestamp("us")).to_numpy().astype("datetime64[us]")


def candidate_texts(decisions: pa.Table, decision_ids: Sequence[str]) -> dict[str, str]:
    """decisionId -> its candidates' JSON text ([{offerId, features}]), for these decisions."""
    picked = decisions.filter(pc.is_in(decisions.column("decisionId"), value_set=pa.array(list(decision_ids),
                                                                                          type=pa.string())))
    return {d: c for d, c in zip(picked.column("decisionId").to_pylist(), picked.column("candidates").to_pylist())
            if c is not None}


def candidates_of(decisions: pa.Table, decision_ids: Sequence[str]) -> dict[str, list[dict]]:
    """decisionId -> its candidates ([{offerId, features}]), parsed only for these decisions."""
    return {d: orjson.loads(c) for d, c in candidate_texts(decisions, decision_ids).items()}


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
