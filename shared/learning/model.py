"""The offer ranker's model: P(click | context, action) as a logistic regression over hashed features.

Fitting scales each column by its largest absolute value (MaxAbsScaler's scaling: hashed columns
mix counts, prices and one-hot indicators) and fits scikit-learn's L2-regularized
LogisticRegression (L-BFGS) over the sparse rows. The scaling is folded into the fitted
weights, so the model is one weight vector and an intercept, scoring is a sparse
dot product and the stored model is plain arrays: `to_bytes` writes a NumPy .npz
(`allow_pickle=False`, so loading a model never runs code from the blob) with the feature
configuration as JSON beside the weights.
"""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .features import Encoder, FeatureSpace, dot_for

FORMAT = "offerloop-linear-1"


class ModelError(Exception):
    """A stored model that cannot be used (corrupt, another format, inconsistent arrays)."""


@dataclass(frozen=True)
class FitOptions:
    c: float = 0.01  # inverse L2 strength: strong, the hashed space is wide and clicks are few
    max_iter: int = 150
    seed: int = 7

    def to_dict(self) -> dict[str, Any]:
        return {"C": self.c, "maxIter": self.max_iter, "seed": self.seed}


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))


@dataclass
class LinearModel:
    version: str
    space: FeatureSpace
    weights: np.ndarray  # float32, one per hashed column, scaling folded in
    intercept: float
    meta: dict[str, Any] = field(default_factory=dict)
    _encoder: Optional[Encoder] = field(default=None, repr=False, compare=False)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder(self.space)
        return self._encoder

    def predict(self, rows: sparse.csr_matrix) -> np.ndarray:
        """P(click) of each row."""
        return _sigmoid(rows @ self.weights + self.intercept)

    def score(self, context: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """P(click) of each action in this context (the logged JSON features): `predict` of their
        rows, summed straight from the features' entries (no sparse matrix to build per request)."""
        if not actions:
            return np.zeros(0)
        return _sigmoid(dot_for(self.space, self.encoder, self.weights, context, actions) + self.intercept)

    def to_bytes(self) -> bytes:
        header = json.dumps({"format": FORMAT, "version": self.version, "space": self.space.to_dict(),
                             "intercept": self.intercept, "meta": self.meta})
        nonzero = np.flatnonzero(self.weights).astype(np.int32)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, header=np.frombuffer(header.encode("utf-8"), dtype=np.uint8),
                            columns=nonzero, weights=self.weights[nonzero].astype(np.float32))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "LinearModel":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                header = json.loads(arrays["header"].tobytes().decode("utf-8"))
                columns, values = arrays["columns"], arrays["weights"]
            if header.get("format") != FORMAT:
                raise ModelError(f"unknown model format {header.get('format')!r}; expected {FORMAT}")
            space = FeatureSpace.from_dict(header["space"])
            if columns.shape != values.shape or (columns.size and (columns.min() < 0 or columns.max() >= space.width)):
                raise ModelError("weights do not fit the feature space")
            weights = np.zeros(space.width, dtype=np.float32)
            weights[columns] = values
            intercept = float(header["intercept"])
            if not np.isfinite(weights).all() or not np.isfinite(intercept):
                raise ModelError("weights are not finite")
            return cls(str(header["version"]), space, weights, intercept, dict(header.get("meta") or {}))
        except ModelError:
            raise
        except Exception as error:  # zip, npz, JSON or key errors: all mean "not a usable model"
            raise ModelError(f"not a readable model: {type(error).__name__}: {error}") from None


@dataclass
class Prepared:
    """Rows ready for fitting, shared by the fits on them: only the columns some row uses (the
    solver's vectors shrink from the hashed width to the features actually seen; unused columns
    would get weight 0 anyway under L2), each scaled by its largest absolute value (MaxAbsScaler's
    scaling, computed here in one pass over the non-zeros)."""

    scaled: sparse.csr_matrix
    used: np.ndarray
    scale: np.ndarray  # float64 per used column, zeros made 1
    width: int


def prepare(rows: sparse.csr_matrix) -> Prepared:
    """The rows' used columns, scaled (see Prepared): O(non-zeros), without a sort or a copy of the
    hashed width per row."""
    rows = sparse.csr_matrix(rows)
    used = np.flatnonzero(np.bincount(rows.indices, minlength=rows.shape[1]))
    position = np.zeros(rows.shape[1], dtype=rows.indices.dtype)
    position[used] = np.arange(len(used))
    indices = position[rows.indices]
    # in the rows' own precision, as the scaler computes it
    scale = np.zeros(len(used), dtype=rows.dtype)
    np.maximum.at(scale, indices, np.abs(rows.data))
    scale[scale == 0] = 1
    data = rows.data * (1 / scale)[indices]
    scaled = sparse.csr_matrix((data, indices, rows.indptr.copy()), shape=(rows.shape[0], len(used)))
    return Prepared(scaled, used, scale.astype(np.float64), rows.shape[1])


def fit(rows: sparse.csr_matrix, rewards: np.ndarray, options: FitOptions = FitOptions(),
        weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, float]:
    """Fit P(reward > 0) on the rows; returns (weights with the scaling folded in, intercept)."""
    return fit_prepared(prepare(rows), rewards, options, weights)


def fit_prepared(prepared: Prepared, rewards: np.ndarray, options: FitOptions = FitOptions(),
                 weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, float]:
    """`fit` on prepared rows."""
    labels = (np.asarray(rewards) > 0).astype(np.int8)
    rows = prepared.scaled
    if rows.shape[0] == 0 or labels.min() == labels.max():
        # nothing to tell the actions apart: a constant model at the observed rate
        rate = float(labels.mean()) if rows.shape[0] else 0.0
        rate = min(max(rate, 1e-4), 1 - 1e-4)
        return np.zeros(prepared.width, dtype=np.float32), float(np.log(rate / (1 - rate)))
    classifier = LogisticRegression(C=options.c, max_iter=options.max_iter, random_state=options.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the last iterate is still a usable model
        classifier.fit(rows, labels, sample_weight=weights)
    folded = np.zeros(prepared.width, dtype=np.float32)
    folded[prepared.used] = classifier.coef_.ravel() / prepared.scale
    return folded, float(classifier.intercept_[0])
