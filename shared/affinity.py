"""Product affinity: item-item co-occurrence similarity, in the manner of SAR and Mahout.

From who interacted with what (views, carts, purchases, or ratings), with sparse matrices:

  occurrence  B[u, i] = 1 when user u interacted with item i at all
  co-occurrence  C = Bᵀ B: C[i, j] users who interacted with both i and j; C[i, i] = the
              users of i (its popularity)
  similarity  S[i, j] = C[i, j] / (C[i, i] · C[j, j]^β) for i ≠ j, 0 on the diagonal. β = 1
              is SAR's "lift"; β = 0 is P(j | i), which favours popular items; the default
              β = 0.5 lies between (a popularity-penalised conditional probability, the
              item-item step of RP3β). Pairs with fewer than `min_cooccurrence` users are dropped.
  user affinity  A[u, i] = Σ over u's events on i of weight(event) · 2^(-age / half-life),
              the age measured to `now` (SAR's time-decayed affinity)
  scores      A · S: item j scores by how similar it is to what the user liked, recently.

`Affinity` is the fitted result; `Related` is what the service stores and serves: the top-n
most similar items of every item (one row per item, so a lookup is one read), and the
cold-start lists (the most liked items per user segment and overall). `personal` turns a
shopper's recent views into their product affinity with it.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
from scipy import sparse

VIEW, CART, PURCHASE = "view", "cart", "purchase"
DEFAULT_WEIGHTS = {VIEW: 1.0, CART: 3.0, PURCHASE: 5.0}  # as the profile's category affinity weighs them
GLOBAL = ""  # the key of the global cold-start list among the segments'
KEY_PREFIX = "offerloop:affinity:"  # Redis: <prefix>segment:<segment> and <prefix>global (affinity_job)
FORMAT = 1


class AffinityError(ValueError):
    """A stored table that cannot be read."""


@dataclass(frozen=True)
class AffinityParams:
    half_life_days: float = 30.0  # user affinity halves in this time (SAR's time-decay coefficient); 0: no decay
    popularity_penalty: float = 0.5  # β above
    min_cooccurrence: int = 1  # SAR's threshold
    neighbours: int = 20  # related items kept per item in `Related`
    coldstart_items: int = 50  # items in each cold-start list

    def __post_init__(self) -> None:
        if not (self.half_life_days >= 0 and math.isfinite(self.half_life_days)):
            raise ValueError("half_life_days must be a finite number >= 0")
        if not 0 <= self.popularity_penalty <= 2:
            raise ValueError("popularity_penalty must be between 0 and 2")
        if self.min_cooccurrence < 1 or self.neighbours < 1 or self.coldstart_items < 1:
            raise ValueError("min_cooccurrence, neighbours and coldstart_items must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Interactions:
    """Who interacted with what, when (seconds since the epoch) and how much; one entry per event."""

    users: np.ndarray  # labels (str), one per event
    items: np.ndarray
    weights: np.ndarray  # float
    times: np.ndarray  # float seconds

    def __post_init__(self) -> None:
        sizes = {len(self.users), len(self.items), len(self.weights), len(self.times)}
        if len(sizes) != 1:
            raise ValueError("users, items, weights and times must have one entry per event")

    @classmethod
    def of(cls, records: Iterable[tuple[str, str, float, float]]) -> "Interactions":
        rows = list(records)
        columns = list(zip(*rows)) if rows else [(), (), (), ()]
        return cls(np.array(columns[0], dtype=object), np.array(columns[1], dtype=object),
                   np.array(columns[2], dtype=np.float64), np.array(columns[3], dtype=np.float64))


@dataclass
class Affinity:
    """The fitted matrices, with the labels of their rows and columns."""

    users: np.ndarray  # row labels of `affinity`
    items: np.ndarray  # row and column labels of `similarity`, column labels of `affinity`
    affinity: sparse.csr_matrix  # users x items, time-decayed
    similarity: sparse.csr_matrix  # items x items, zero diagonal
    params: AffinityParams

    def user_index(self) -> dict[str, int]:
        return {str(u): i for i, u in enumerate(self.users)}

    def scores(self, rows: Sequence[int]) -> np.ndarray:
        """Dense scores (A · S) of these users over every item."""
        return np.asarray((self.affinity[np.asarray(rows, dtype=np.int64)] @ self.similarity).todense())

    def recommend(self, rows: Sequence[int], k: int, exclude_seen: bool = True,
                  chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The top k item indices per user, best first, and their scores (-inf for seen items a short
        list had to include); k is at most the number of items."""
        rows = np.asarray(rows, dtype=np.int64)
        k = min(k, len(self.items))
        top = np.zeros((len(rows), k), dtype=np.int64)
        best = np.full((len(rows), k), -np.inf)
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            scores = self.scores(part)
            if exclude_seen:
                seen = self.affinity[part]
                scores[np.repeat(np.arange(len(part)), np.diff(seen.indptr)), seen.indices] = -np.inf
            top[start:start + len(part)], best[start:start + len(part)] = _top(scores, k)
        return top, best

    def related(self, segments: Optional[Mapping[str, str]] = None, version: str = "") -> "Related":
        """The stored form: top neighbours per item and the cold-start lists (user -> segment)."""
        keep = self.params.neighbours
        similarity = self.similarity
        indptr, indices, scores = [0], [], []
        for i in range(similarity.shape[0]):
            cols = similarity.indices[similarity.indptr[i]:similarity.indptr[i + 1]]
            vals = similarity.data[similarity.indptr[i]:similarity.indptr[i + 1]]
            if len(cols) > keep:
                pick = np.argpartition(-vals, keep - 1)[:keep]
                cols, vals = cols[pick], vals[pick]
            order = np.lexsort((cols, -vals))
            indices.append(cols[order])
            scores.append(vals[order])
            indptr.append(indptr[-1] + len(cols))
        return Related(items=[str(i) for i in self.items],
                       indptr=np.asarray(indptr, dtype=np.int64),
                       indices=np.concatenate(indices).astype(np.int32) if indices else np.zeros(0, np.int32),
                       scores=np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32),
                       coldstart=self.coldstart(segments or {}), params=self.params, version=version)

    def coldstart(self, segments: Mapping[str, str]) -> dict[str, list[tuple[str, float]]]:
        """The most liked items per segment (users -> segment) and overall (under GLOBAL), best first,
        scores summing to 1. Each user's affinity row counts as a share, so one busy user cannot fill a list."""
        affinity = self.affinity.tocsr(copy=True)
        totals = np.asarray(affinity.sum(axis=1)).ravel()
        affinity = sparse.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)) @ affinity
        labels = np.array([segments.get(str(u), "") for u in self.users], dtype=object)
        lists: dict[str, list[tuple[str, float]]] = {}
        for segment in [GLOBAL] + sorted({s for s in labels if s}):
            mask = np.ones(len(labels), dtype=bool) if segment == GLOBAL else labels == segment
            liked = np.asarray(affinity[mask].sum(axis=0)).ravel()
            lists[segment] = _ranked(self.items, liked, self.params.coldstart_items)
        return lists


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    return top, np.take_along_axis(values, order, axis=1)


def _ranked(labels: np.ndarray, values: np.ndarray, n: int) -> list[tuple[str, float]]:
    positive = np.flatnonzero(values > 0)
    order = positive[np.lexsort((positive, -values[positive]))][:n]
    total = float(values[order].sum()) or 1.0
    return [(str(labels[i]), round(float(values[i]) / total, 6)) for i in order]


def decay(ages_seconds: np.ndarray, half_life_days: float) -> np.ndarray:
    if half_life_days <= 0:
        return np.ones_like(ages_seconds, dtype=np.float64)
    return np.exp2(-np.maximum(ages_seconds, 0.0) / (half_life_days * 86400.0))


def fit(interactions: Interactions, params: AffinityParams = AffinityParams(),
        now: Optional[float] = None) -> Affinity:
    """Fit the similarity and the users' affinities (see the module doc); `now` defaults to the newest event."""
    users, user_codes = np.unique(interactions.users.astype(str), return_inverse=True)
    items, item_codes = np.unique(interactions.items.astype(str), return_inverse=True)
    shape = (len(users), len(items))
    times = np.asarray(interactions.times, dtype=np.float64)
    now = float(times.max()) if now is None and len(times) else float(now or 0.0)
    weights = np.asarray(interactions.weights, dtype=np.float64) * decay(now - times, params.half_life_days)
    affinity = sparse.csr_matrix((weights, (user_codes, item_codes)), shape=shape)  # repeats add up
    affinity.sum_duplicates()
    occurrence = affinity.copy()
    occurrence.data = np.ones_like(occurrence.data, dtype=np.float32)
    return Affinity(users, items, affinity, similarity(occurrence, params), params)


def similarity(occurrence: sparse.csr_matrix, params: AffinityParams) -> sparse.csr_matrix:
    """S from the binary users x items occurrence matrix."""
    cooccurrence = (occurrence.T @ occurrence).tocsr().astype(np.float64)
    counts = cooccurrence.diagonal()
    cooccurrence.setdiag(0)
    cooccurrence.eliminate_zeros()
    if params.min_cooccurrence > 1:
        cooccurrence.data[cooccurrence.data < params.min_cooccurrence] = 0
        cooccurrence.eliminate_zeros()
    rows = np.repeat(np.arange(cooccurrence.shape[0]), np.diff(cooccurrence.indptr))
    scale = counts[rows] * np.power(counts[cooccurrence.indices], params.popularity_penalty)
    result = cooccurrence.copy()
    result.data = (cooccurrence.data / scale).astype(np.float32)
    return result


@dataclass
class Related:
    """The stored table: each item's neighbours (CSR rows over `items`) and the cold-start lists."""

    items: list[str]
    indptr: np.ndarray
    indices: np.ndarray
    scores: np.ndarray
    coldstart: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    params: AffinityParams = AffinityParams()
    version: str = ""
    _index: Optional[dict[str, int]] = field(default=None, repr=False)

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {item: i for i, item in enumerate(self.items)}
        return self._index

    def __contains__(self, item: str) -> bool:
        return item in self.index

    def of(self, item: str, n: int = 10) -> list[tuple[str, float]]:
        """The item's most similar items, best first (empty for an unknown item)."""
        row = self.index.get(item)
        if row is None:
            return []
        start, stop = int(self.indptr[row]), int(self.indptr[row + 1])
        stop = min(stop, start + n)
        return [(self.items[j], float(s)) for j, s in zip(self.indices[start:stop].tolist(),
                                                          self.scores[start:stop].tolist())]

    def personal(self, history: Iterable[tuple[str, float]], n: int = 20,
                 exclude_seen: bool = True) -> list[tuple[str, float]]:
        """A shopper's product affinity: Σ weight x similarity over their (item, weight) history,
        the top n items, scores as shares of the top n's sum."""
        totals: dict[str, float] = {}
        seen = set()
        for item, weight in history:
            seen.add(item)
            for other, score in self.of(item, self.params.neighbours):
                totals[other] = totals.get(other, 0.0) + weight * score
        if exclude_seen:
            for item in seen:
                totals.pop(item, None)
        top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        total = sum(v for _, v in top) or 1.0
        return [(item, round(v / total, 6)) for item, v in top if v > 0]

    def to_bytes(self) -> bytes:
        meta = {"format": FORMAT, "params": self.params.to_dict(), "version": self.version,
                "coldstart": {k: [[i, s] for i, s in v] for k, v in self.coldstart.items()}}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, items=np.array(self.items, dtype=str), indptr=self.indptr,
                            indices=self.indices, scores=self.scores, meta=np.array(json.dumps(meta)))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Related":
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                if meta.get("format") != FORMAT:
                    raise AffinityError(f"unknown related-products format {meta.get('format')!r}")
                items = [str(i) for i in npz["items"].tolist()]
                indptr, indices, scores = npz["indptr"], npz["indices"], npz["scores"]
        except AffinityError:
            raise
        except Exception as error:  # a truncated or foreign blob
            raise AffinityError(f"related-products table unreadable: {type(error).__name__}: {error}") from error
        if len(indptr) != len(items) + 1 or len(indices) != len(scores) or int(indptr[-1]) != len(indices) \
                or (len(indices) and (indices.min() < 0 or indices.max() >= len(items))):
            raise AffinityError("related-products table is inconsistent")
        coldstart = {k: [(str(i), float(s)) for i, s in v] for k, v in meta.get("coldstart", {}).items()}
        return cls(items, indptr, indices, scores, coldstart, AffinityParams(**meta["params"]), meta.get("version", ""))


MAX_RELATED = 50


def coldstart_list(table: Optional[Related], segment: Optional[str]) -> list[tuple[str, float]]:
    """A segment's cold-start product list from the table (the global one for an unknown segment)."""
    lists = table.coldstart if table is not None else {}
    return lists.get(segment or GLOBAL) or lists.get(GLOBAL, [])


def related_products(table: Optional[Related], product_id: str, category: Optional[str],
                     describe: Callable[[str], Optional[Mapping[str, Any]]], n: int) -> list[dict[str, Any]]:
    """The GET /api/products/{id}/related answer's items: the product's most similar products
    ("basis": "similar"), then, when there are fewer than n, the most liked products of its category
    ("basis": "popular", score 0). `describe(id)` gives a product's catalog fields (None: not in
    the catalog any more, left out)."""
    if table is None:
        return []
    picked: list[tuple[str, float, str, Mapping[str, Any]]] = []
    for item, score in table.of(product_id, n):
        fields = describe(item)
        if fields is not None:
            picked.append((item, score, "similar", fields))
    if len(picked) < n and category is not None:
        taken = {product_id} | {item for item, *_ in picked}
        for item, _ in table.coldstart.get(GLOBAL, []):
            if len(picked) >= n:
                break
            fields = describe(item) if item not in taken else None
            if fields is not None and fields.get("category") == category:
                picked.append((item, 0.0, "popular", fields))
                taken.add(item)
    return [{"productId": item, "score": round(score, 6), "basis": basis, **fields}
            for item, score, basis, fields in picked]
