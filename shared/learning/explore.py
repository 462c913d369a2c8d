"""Exploration: which candidates a decision shows, and the probability each had.

Epsilon-greedy (the default, 20% as in Azure Personalizer): in each slot, with probability
1 - epsilon the best-scored remaining candidate, else one drawn uniformly from the remaining
K; the shown one had probability (1 - epsilon) x [it is the best] + epsilon / K. Softmax: the
remaining candidates are drawn with probability proportional to exp(lambda x score). Slots
are filled in order, each from the candidates left after the earlier slots, so a slot's
logged probability is conditional on the offers above it.

`LearnedChooser` is the offers service's chooser (`policy.Chooser`): it ranks by the current
model's P(click) when a model is being served, otherwise by the baseline's scores, and
explores either way, so the logs always carry the propensities offline evaluation needs.
In apprentice mode, until the learned policy agrees with the baseline often enough, the
baseline is shown without exploration, as Personalizer's apprentice mode did.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import policy
from .model import LinearModel

EPSILON_GREEDY, SOFTMAX, APPRENTICE = "epsilon-greedy", "softmax", "apprentice"
POLICIES = (EPSILON_GREEDY, SOFTMAX)


@dataclass(frozen=True)
class Exploration:
    policy: str = EPSILON_GREEDY
    epsilon: float = 0.2
    softmax_lambda: float = 50.0  # softmax: scores are probabilities, so 0.1 apart is e^5 more likely

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"exploration policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError("the exploration percentage must be from 0 to 100")
        if not self.softmax_lambda > 0:
            raise ValueError("the softmax lambda must be positive")

    def logged(self) -> dict[str, Any]:
        """What offer.shown records of this setting."""
        if self.policy == SOFTMAX:
            return {"policy": SOFTMAX, "epsilon": 0.0, "lambda": self.softmax_lambda}
        return {"policy": EPSILON_GREEDY, "epsilon": self.epsilon}


def pick(scores: Sequence[float], n: int, exploration: Exploration, rng: random.Random) -> list[tuple[int, float]]:
    """(candidate index, probability) for each of min(n, K) slots; ties go to the earlier candidate."""
    remaining = list(range(len(scores)))
    chosen: list[tuple[int, float]] = []
    for _ in range(min(n, len(remaining))):
        k = len(remaining)
        if exploration.policy == SOFTMAX:
            top = max(scores[i] for i in remaining)
            weights = [math.exp(exploration.softmax_lambda * (scores[i] - top)) for i in remaining]
            total = sum(weights)
            draw, at = rng.random() * total, 0
            while at < k - 1 and draw >= weights[at]:
                draw -= weights[at]
                at += 1
            index, probability = remaining[at], weights[at] / total
        else:
            best = max(remaining, key=lambda i: (scores[i], -i))
            if rng.random() < exploration.epsilon:
                index = remaining[rng.randrange(k)]
            else:
                index = best
            probability = exploration.epsilon / k + (1 - exploration.epsilon) * (index == best)
        chosen.append((index, probability))
        remaining.remove(index)
    return chosen


@dataclass(frozen=True)
class Serving:
    """What the offers function serves right now."""

    model: Optional[LinearModel]  # None: the baseline's scores rank
    apprentice: bool = False  # True: the baseline, greedy, until the learner graduates
    status: Optional[str] = None  # why the model is not served (for health), None when it is


def baseline_scores(candidates: Sequence[policy.Scored]) -> list[float]:
    """The baseline ranks candidates best first; its order as scores."""
    return [float(-i) for i in range(len(candidates))]


class LearnedChooser:
    """policy.Chooser over whatever `serving()` says: a model, the baseline, or apprentice mode."""

    def __init__(self, serving: Callable[[], Serving], exploration: Callable[[], Exploration],
                 rng: Optional[random.Random] = None):
        self._serving, self._exploration = serving, exploration
        self._rng = rng or random.Random()

    def __call__(self, context: policy.Context, candidates: Sequence[policy.Scored], n: int) -> policy.Choice:
        serving = self._serving()
        if serving.apprentice or not candidates:
            choice = policy.greedy(context, candidates, n)
            if serving.apprentice:
                return policy.Choice(choice.chosen, choice.model_version, {"policy": APPRENTICE, "epsilon": 0.0})
            return choice
        exploration = self._exploration()
        scores, version = self.scores(context, candidates, serving)
        picked = pick(scores, n, exploration, self._rng)
        return policy.Choice([(candidates[i], p) for i, p in picked], version, exploration.logged())

    def scores(self, context: policy.Context, candidates: Sequence[policy.Scored],
               serving: Optional[Serving] = None) -> tuple[list[float], str]:
        """The greedy policy's score of each candidate (higher is better) and the version that scored."""
        return _scores(serving or self._serving(), context, candidates)


def _scores(serving: Serving, context: policy.Context, candidates: Sequence[policy.Scored]) -> tuple[list[float], str]:
    if serving.model is None:
        return baseline_scores(candidates), policy.MODEL_VERSION
    return serving.model.score(context.features, [s.features for s in candidates]).tolist(), serving.model.version


def greedy_index(scores: np.ndarray, excluded: Sequence[int] = ()) -> int:
    """The best-scored candidate not excluded; ties go to the earlier one."""
    masked = np.array(scores, dtype=np.float64)
    if len(excluded):
        masked[list(excluded)] = -np.inf
    return int(np.argmax(masked))
