"""Features for the learned ranker: Personalizer-style namespaced dictionaries, hashed to a fixed width.

A decision logs its context features and every candidate's action features as nested JSON
objects (offer.shown). They become model inputs by Personalizer's documented rules:

  - each top-level key is a namespace; nested objects are flattened into it ("a.b");
  - a string is one-hot: the feature "key=value" with value 1;
  - a number is a number; true is 1 and false is left out;
  - a list of strings is one one-hot feature per string; a list of numbers "key[i]";
  - names starting with "_" are ignored, and so is the `diagnostics` namespace (how a
    decision was served, not who the shopper is).

Derived features (`FeatureSpace.derived`) are computed from the same logged JSON, so training
and serving agree: the context gets the hour of day as a point on a circle (`clock`), and
each action gets how it matches the context (`match`): the shopper's interest in the offer's
category (and its log), whether the offer's category is the page's, how much of the
shopper's recent viewing went to the brands of the offer's products, and the shopper's own
click rate on the offer (`history`: shown and clicked counts, shrunk toward 10%).

Every (namespace, feature) name is hashed with scikit-learn's FeatureHasher into
2**bits columns (2^16 by default). Each (context namespace, action namespace) pair listed in `interactions`
adds the products of their features, at the column that mixes the two columns' hashes, as
Vowpal Wabbit's quadratic features do; "*" stands for every namespace. One row per
(decision, action): the context's features, the action's, and their interactions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import FeatureHasher

Flat = list[tuple[str, str, float]]  # (namespace, name, value)

IGNORED_NAMESPACES = frozenset({"diagnostics"})
CLOCK, MATCH = "clock", "match"
PRIOR_CLICKS, PRIOR_SHOWS = 0.5, 5.0  # ownCtr's shrinkage: as if 5 earlier impressions at a 10% rate
_MIX = np.uint64(0x9E3779B97F4A7C15)  # the golden-ratio multiplier: spreads a column over the space


@dataclass(frozen=True)
class FeatureSpace:
    """How features become columns; saved with every model (its 'feature configuration')."""

    bits: int = 16  # 65,536 columns: a few thousand names and their pairs, and L-BFGS stays quick
    interactions: tuple[tuple[str, str], ...] = (("user", "offer"),)
    derived: bool = True

    @property
    def width(self) -> int:
        return 1 << self.bits

    def to_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "interactions": [list(p) for p in self.interactions], "derived": self.derived}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "FeatureSpace":
        bits = raw.get("bits", 16)
        if not isinstance(bits, int) or not 8 <= bits <= 26:
            raise ValueError(f"feature bits must be an integer from 8 to 26, got {bits!r}")
        pairs = tuple((str(a), str(b)) for a, b in raw.get("interactions", ()))
        return cls(bits=bits, interactions=pairs, derived=bool(raw.get("derived", True)))


def _add(out: Flat, namespace: str, name: str, value: Any) -> None:
    kind = type(value)
    if kind is str:
        out.append((namespace, f"{name}={value}", 1.0))
    elif kind is bool:
        if value:
            out.append((namespace, name, 1.0))
    elif kind is int or kind is float:
        if value and math.isfinite(value):
            out.append((namespace, name, float(value)))
    elif kind is dict or isinstance(value, Mapping):
        for key, inner in value.items():
            key = str(key)
            if not key.startswith("_"):
                _add(out, namespace, f"{name}.{key}" if name else key, inner)
    elif kind is list or kind is tuple:
        for i, item in enumerate(value):
            if type(item) is str:
                out.append((namespace, f"{name}={item}", 1.0))
            else:
                _add(out, namespace, f"{name}[{i}]", item)
    elif isinstance(value, (int, float)):  # numpy and other number types
        _add(out, namespace, name, float(value))
    # None and anything else carries no feature


def flatten(features: Mapping[str, Any]) -> Flat:
    """A namespaced feature object as (namespace, name, value) triples, by the rules above."""
    out: Flat = []
    append = out.append
    for namespace, value in features.items():
        namespace = str(namespace)
        if namespace[:1] == "_" or namespace in IGNORED_NAMESPACES:
            continue
        if type(value) is not dict:
            if isinstance(value, Mapping):
                _add(out, namespace, "", value)
            else:
                _add(out, namespace, namespace, value)
            continue
        # the usual shape, a namespace of scalars, without a call per feature
        for key, inner in value.items():
            kind = type(inner)
            if kind is str:
                append((namespace, f"{key}={inner}", 1.0))
            elif kind is float or kind is int:
                if inner and key[:1] != "_" and math.isfinite(inner):
                    append((namespace, key, float(inner)))
                continue
            else:
                _add(out, namespace, "", {key: inner})
                continue
            if key[:1] == "_":
                out.pop()
    return out


def context_flat(context: Mapping[str, Any], space: FeatureSpace) -> Flat:
    out = flatten(context)
    if space.derived:
        hour = (context.get("time") or {}).get("hour")
        if isinstance(hour, (int, float)) and not isinstance(hour, bool):
            angle = 2 * math.pi * float(hour) / 24
            out.append((CLOCK, "sin", math.sin(angle) or 1e-9))
            out.append((CLOCK, "cos", math.cos(angle) or 1e-9))
    return out


def action_flat(action: Mapping[str, Any], context: Mapping[str, Any], space: FeatureSpace) -> Flat:
    out = flatten(action)
    if space.derived:
        offer = action.get("offer") or {}
        category = offer.get("category")
        if isinstance(category, str):
            interest = (context.get("interest") or {}).get(category)
            if isinstance(interest, (int, float)) and interest > 0:
                out.append((MATCH, "categoryInterest", float(interest)))
                out.append((MATCH, "logInterest", math.log(float(interest)) - 1e-9))
            else:
                out.append((MATCH, "noInterest", 1.0))
            page = (context.get("page") or {}).get("category")
            if page == category:
                out.append((MATCH, "pageCategory", 1.0))
        history = action.get("history") or {}
        seen, clicks = history.get("shown"), history.get("clicked") or 0
        if isinstance(seen, (int, float)) and seen > 0:
            # the shopper's own click rate on this offer, shrunk toward a typical rate
            out.append((MATCH, "ownCtr", (clicks + PRIOR_CLICKS) / (seen + PRIOR_SHOWS)))
        else:
            out.append((MATCH, "neverShown", 1.0))
        brands = offer.get("brands")
        if isinstance(brands, list) and brands:
            seen = context.get("brands") or {}
            shares = [seen.get(b) for b in brands]
            known = [v for v in shares if isinstance(v, (int, float)) and v > 0]
            if known:
                out.append((MATCH, "brandShare", sum(known) / len(brands)))
                out.append((MATCH, "brandSeen", len(known) / len(brands)))
            else:
                out.append((MATCH, "brandUnseen", 1.0))
    return out


class Encoder:
    """Turns flattened features into sparse rows of one FeatureSpace (hashes cached per name)."""

    def __init__(self, space: FeatureSpace):
        self.space = space
        self._hasher = FeatureHasher(n_features=space.width, input_type="string", alternate_sign=False)
        self._columns: dict[tuple[str, str], int] = {}
        self._namespaces: dict[str, int] = {}

    def _arrays(self, flats: Sequence[Flat]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Columns, values, namespace codes and row numbers of flattened rows, hashing new names."""
        keys = [(ns, name) for flat in flats for ns, name, _ in flat]
        columns_of, codes = self._columns, self._namespaces
        missing = [k for k in set(keys) if k not in columns_of]
        if missing:
            hashed = self._hasher.transform([[f"{ns}^{name}"] for ns, name in missing]).tocsr()
            for key, column in zip(missing, hashed.indices):
                columns_of[key] = int(column)
                codes.setdefault(key[0], len(codes))
        total = len(keys)
        columns = np.fromiter(map(columns_of.__getitem__, keys), dtype=np.int64, count=total)
        spaces = np.fromiter((codes[ns] for ns, _ in keys), dtype=np.int32, count=total)
        values = np.fromiter((v for flat in flats for _, _, v in flat), dtype=np.float32, count=total)
        counts = np.fromiter(map(len, flats), dtype=np.int64, count=len(flats))
        return columns, values, spaces, np.repeat(np.arange(len(flats), dtype=np.int64), counts)

    def _sides(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Which namespaces take part in interactions as context, as action, and which pairs do."""
        names = list(self._namespaces)
        pairs = self.space.interactions
        left = np.array([any(a in ("*", n) for a, _ in pairs) for n in names], dtype=bool)
        right = np.array([any(b in ("*", n) for _, b in pairs) for n in names], dtype=bool)
        table = np.array([[any(a in ("*", c) and b in ("*", x) for a, b in pairs) for x in names] for c in names],
                         dtype=bool).reshape(len(names), len(names))
        return left, right, table

    def columns_of(self, namespace: str, names: Sequence[str]) -> tuple[np.ndarray, int]:
        """The columns of these names in one namespace (hashing new ones), and the namespace's code."""
        columns_of = self._columns
        missing = [(namespace, n) for n in dict.fromkeys(names) if (namespace, n) not in columns_of]
        if missing:
            hashed = self._hasher.transform([[f"{ns}^{name}"] for ns, name in missing]).tocsr()
            for key, column in zip(missing, hashed.indices):
                columns_of[key] = int(column)
        code = self._namespaces.setdefault(namespace, len(self._namespaces))
        return np.fromiter((columns_of[(namespace, n)] for n in names), dtype=np.int64, count=len(names)), code

    def encode(self, contexts: Sequence[Flat], actions: Sequence[Flat], owner: Sequence[int]) -> sparse.csr_matrix:
        """One row per action; `owner[i]` is the index in `contexts` of action i's decision."""
        return self.encode_arrays(self._arrays(contexts), self._arrays(actions), len(contexts), owner)

    def encode_arrays(self, context: tuple[np.ndarray, ...], action: tuple[np.ndarray, ...], n_contexts: int,
                      owner: Sequence[int]) -> sparse.csr_matrix:
        """`encode` from the features' (columns, values, namespace codes, rows) arrays, each row's
        features contiguous: the contexts' (rows index contexts) and the actions' (one row per action)."""
        rows, cols, vals, n_rows = self._entries(context, action, n_contexts, owner)
        matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(n_rows, self.space.width), dtype=np.float32)
        matrix.sum_duplicates()
        return matrix

    def dot(self, weights: np.ndarray, contexts: Sequence[Flat], actions: Sequence[Flat],
            owner: Sequence[int]) -> np.ndarray:
        """Each row's weighted sum, rows @ weights, without building the rows: what serving needs."""
        rows, cols, vals, n_rows = self._entries(self._arrays(contexts), self._arrays(actions), len(contexts), owner)
        return np.bincount(rows, weights=weights[cols].astype(np.float64) * vals, minlength=n_rows)

    def _entries(self, context: tuple[np.ndarray, ...], action: tuple[np.ndarray, ...], n_contexts: int,
                 owner: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The rows' (row, column, value) entries, a column possibly repeated within a row (summed)."""
        c_cols, c_vals, c_ns, c_row = context
        a_cols, a_vals, a_ns, a_row = action
        owner = np.asarray(owner, dtype=np.int64)
        n_rows = len(owner)
        rows = np.arange(n_rows, dtype=np.int64)
        c_count = np.bincount(c_row, minlength=n_contexts)
        c_start = np.cumsum(c_count) - c_count
        # the decision's context features, repeated for each of its actions
        c_take = _ranges(c_start[owner], c_count[owner])
        parts_rows = [np.repeat(rows, c_count[owner]), a_row]
        parts_cols = [c_cols[c_take], a_cols]
        parts_vals = [c_vals[c_take], a_vals]
        if self.space.interactions and len(a_cols) and len(c_cols):
            left, right, table = self._sides()
            # only features of interacting namespaces pair up
            c_keep = np.flatnonzero(left[c_ns])
            a_keep = np.flatnonzero(right[a_ns])
            lc = np.bincount(c_row[c_keep], minlength=n_contexts)
            ls = np.cumsum(lc) - lc
            ra = np.bincount(a_row[a_keep], minlength=n_rows)
            rs = np.cumsum(ra) - ra
            pairs = lc[owner] * ra
            pair_row = np.repeat(rows, pairs)
            position = np.arange(int(pairs.sum()), dtype=np.int64) - np.repeat(np.cumsum(pairs) - pairs, pairs)
            width = np.maximum(np.repeat(ra, pairs), 1)
            ci = c_keep[np.repeat(ls[owner], pairs) + position // width]
            ai = a_keep[np.repeat(rs, pairs) + position % width]
            del position, width
            keep = table[c_ns[ci], a_ns[ai]]
            ci, ai, pair_row = ci[keep], ai[keep], pair_row[keep]
            with np.errstate(over="ignore"):
                mixed = ((c_cols[ci] * self.space.width + a_cols[ai]).astype(np.uint64) * _MIX) \
                    >> np.uint64(64 - self.space.bits)
            parts_rows.append(pair_row)
            parts_cols.append(mixed.astype(np.int64))
            parts_vals.append(c_vals[ci] * a_vals[ai])
        return np.concatenate(parts_rows), np.concatenate(parts_cols), np.concatenate(parts_vals), n_rows


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of range(start, start + count) for each pair."""
    total = int(counts.sum())
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets


def rows_of(encoder: Encoder, contexts: Sequence[Mapping[str, Any]], actions: Sequence[Mapping[str, Any]],
            owner: Sequence[int]) -> sparse.csr_matrix:
    """One row per action, in the encoder's space: action i shown in the context `contexts[owner[i]]`
    (logged JSON features, flattened with the derived ones, then hashed)."""
    space = encoder.space
    flats = [action_flat(a, contexts[k], space) for a, k in zip(actions, np.asarray(owner).tolist())]
    return encoder.encode([context_flat(c, space) for c in contexts], flats, owner)


def rows_for(space: FeatureSpace, encoder: Encoder, context: Mapping[str, Any],
             actions: Iterable[Mapping[str, Any]]) -> sparse.csr_matrix:
    """The rows of one decision's actions (serving: one context, every candidate)."""
    actions = list(actions)
    return rows_of(encoder, [context], actions, [0] * len(actions))


def dot_for(space: FeatureSpace, encoder: Encoder, weights: np.ndarray, context: Mapping[str, Any],
            actions: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """rows_for(...) @ weights, without building the rows (serving: one context, every candidate)."""
    actions = list(actions)
    flats = [action_flat(a, context, space) for a in actions]
    return encoder.dot(weights, [context_flat(context, space)], flats, [0] * len(actions))
