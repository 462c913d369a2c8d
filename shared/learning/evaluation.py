"""Offline evaluation of a policy on logged decisions: IPS, self-normalized IPS and doubly robust.

Each logged event i (a decision's slot) has the shown action a_i, its logged probability p_i,
the reward r_i, and, for a deterministic target policy, the action t_i it would have shown.
With w_i = [t_i = a_i] / p_i and a reward model r^(x, a):

  IPS   = mean(w_i r_i)
  SNIPS = sum(w_i r_i) / sum(w_i)
  DR    = mean(r^(x_i, t_i) + w_i (r_i - r^(x_i, a_i)))   with w_i > max_weight dropped (below)

With many candidates, an explored action's weight is K / epsilon (hundreds), and the few
events where a new policy's choice was explored would decide the DR estimate by themselves.
So DR drops the correction of events whose weight exceeds `max_weight` and keeps the reward
model's value there (the SWITCH estimator of Wang, Agarwal and Dudik, 2017): a little bias
for much less variance, as long as the reward model is calibrated. IPS and SNIPS stay
unbiased and unclipped.

Intervals are bootstrap percentiles (95% by default) over resampled events. Comparing two
policies on the same events resamples them together, so the difference's interval accounts
for their correlation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

ESTIMATORS = ("ips", "snips", "dr")


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"estimate": round(self.estimate, 6), "low": round(self.low, 6), "high": round(self.high, 6)}

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Logged:
    """What evaluation needs of the logged events (arrays of equal length)."""

    rewards: np.ndarray
    probabilities: np.ndarray
    reward_of_logged: Optional[np.ndarray] = None  # r^(x_i, a_i); DR needs it

    def __len__(self) -> int:
        return len(self.rewards)


@dataclass(frozen=True)
class Target:
    """A deterministic policy on the logged events: whether it picks the logged action, and r^ of its pick."""

    matches: np.ndarray  # bool
    reward_of_choice: Optional[np.ndarray] = None  # r^(x_i, t_i)


MAX_WEIGHT = 20.0


def _terms(logged: Logged, target: Target, max_weight: float = MAX_WEIGHT
           ) -> dict[str, tuple[np.ndarray, Optional[np.ndarray]]]:
    """Per-event numerators (and SNIPS's denominators) of each estimator."""
    weights = target.matches.astype(np.float64) / np.maximum(logged.probabilities, 1e-12)
    terms = {"ips": (weights * logged.rewards, None), "snips": (weights * logged.rewards, weights)}
    if logged.reward_of_logged is not None and target.reward_of_choice is not None:
        switched = np.where(weights <= max_weight, weights, 0.0)
        terms["dr"] = (target.reward_of_choice + switched * (logged.rewards - logged.reward_of_logged), None)
    return terms


def _value(numerator: np.ndarray, denominator: Optional[np.ndarray], index: Optional[np.ndarray] = None) -> np.ndarray:
    """The estimate (or, with a (B, n) index of resamples, one estimate per resample)."""
    if index is None:
        top = numerator.sum()
        return np.asarray(top / denominator.sum() if denominator is not None and denominator.sum() > 0
                          else top / len(numerator) if denominator is None else 0.0)
    top = numerator[index].sum(axis=1)
    if denominator is None:
        return top / index.shape[1]
    bottom = denominator[index].sum(axis=1)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0)


def resamples(n: int, rounds: int, seed: int) -> np.ndarray:
    """Bootstrap indices: `rounds` resamples of n events."""
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n), dtype=np.int32)


def _interval(point: float, draws: np.ndarray, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(point), float(low), float(high))


def estimate(logged: Logged, target: Target, rounds: int = 500, level: float = 0.95, seed: int = 7,
             index: Optional[np.ndarray] = None) -> dict[str, Interval]:
    """Each estimator's value of `target` with its bootstrap interval."""
    if len(logged) == 0:
        return {}
    index = resamples(len(logged), rounds, seed) if index is None else index
    return {name: _interval(float(_value(num, den)), _value(num, den, index), level)
            for name, (num, den) in _terms(logged, target).items()}


def compare(logged: Logged, candidate: Target, current: Target, rounds: int = 500, level: float = 0.95,
            seed: int = 7) -> dict[str, Any]:
    """Both policies' estimates and the candidate-minus-current difference, resampled together."""
    if len(logged) == 0:
        return {"events": 0}
    index = resamples(len(logged), rounds, seed)
    ours, theirs = _terms(logged, candidate), _terms(logged, current)
    out: dict[str, Any] = {"events": len(logged), "candidate": {}, "current": {}, "difference": {}}
    for name in ours:
        if name not in theirs:
            continue
        (n1, d1), (n2, d2) = ours[name], theirs[name]
        p1, p2 = float(_value(n1, d1)), float(_value(n2, d2))
        r1, r2 = _value(n1, d1, index), _value(n2, d2, index)
        out["candidate"][name] = _interval(p1, r1, level)
        out["current"][name] = _interval(p2, r2, level)
        out["difference"][name] = _interval(p1 - p2, r1 - r2, level)
    return out
