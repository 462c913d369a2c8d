"""Rank and multi-slot rank: which action to show, the probability it had, and what to log.

A `Scorer` scores the actions in the context (higher is better), or answers None when no
model is served yet: then the baseline ranks, the request's order (Personalizer's baseline is
the first action; in a multi-slot request, each slot's baselineAction). The reward action is
drawn by the loop's exploration (epsilon-greedy or softmax, `shared.learning.explore`), so each
logged decision carries the probability offline evaluation and training need. In Apprentice and
LoggingOnly modes the baseline's choice is returned with probability 1, as Personalizer does.

The single-slot response ranks the reward action first, then the other candidates by score,
each with its probability of having been the reward action (they sum to 1), then the excluded
actions with probability 0. Multi-slot fills the slots in order, each from the actions that
are not excluded for it and not taken by an earlier slot, so a slot's probability is
conditional on the slots before it.
"""
from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from shared.learning.explore import SOFTMAX, Exploration, pick

from .features import action_features, merge
from .requests import MultiSlotRankRequest, RankRequest

Scorer = Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], tuple[Optional[Sequence[float]], str]]

ONLINE, APPRENTICE, LOGGING_ONLY = "Online", "Apprentice", "LoggingOnly"
LEARNING_MODES = (ONLINE, APPRENTICE, LOGGING_ONLY)
_BASELINE_POLICY = {APPRENTICE: "apprentice", LOGGING_ONLY: "logging-only"}


@dataclass(frozen=True)
class Ranked:
    response: dict[str, Any]  # the Personalizer response JSON
    data: dict[str, Any]  # the offerloop.personalizer.ranked event's data


def new_event_id() -> str:
    """An event id for a request that brought none (Personalizer generates one too)."""
    return uuid.uuid4().hex


def probabilities(scores: Sequence[float], exploration: Exploration) -> list[float]:
    """Each candidate's probability of being drawn by `explore.pick` for one slot."""
    k = len(scores)
    if exploration.policy == SOFTMAX:
        top = max(scores)
        weights = [math.exp(exploration.softmax_lambda * (s - top)) for s in scores]
        total = sum(weights)
        return [w / total for w in weights]
    best = max(range(k), key=lambda i: (scores[i], -i))
    return [exploration.epsilon / k + (1 - exploration.epsilon) * (i == best) for i in range(k)]


def _scored(score: Scorer, context: Mapping[str, Any],
            features: Sequence[Mapping[str, Any]]) -> tuple[Optional[list[float]], str]:
    scores, version = score(context, features)
    if scores is None:
        return None, version
    scores = [float(s) for s in scores]
    if len(scores) != len(features) or not all(math.isfinite(s) for s in scores):
        raise ValueError(f"the scorer must return one finite score per action ({len(features)}), got {scores!r}")
    return scores, version


def _check_mode(mode: str) -> None:
    if mode not in LEARNING_MODES:
        raise ValueError(f"learning mode must be one of {', '.join(LEARNING_MODES)}, got {mode!r}")


def _logged(mode: str, exploration: Exploration) -> dict[str, Any]:
    if mode == ONLINE:
        return exploration.logged()
    return {"policy": _BASELINE_POLICY[mode], "epsilon": 0.0}


def rank(request: RankRequest, score: Scorer, exploration: Exploration, rng: random.Random, event_id: str,
         mode: str = ONLINE) -> Ranked:
    """Choose the reward action among the request's non-excluded actions."""
    _check_mode(mode)
    candidates = request.candidates()
    context = merge(request.contextFeatures, "contextFeatures")
    features = [action_features(a) for a in candidates]
    scores, version = _scored(score, context, features)
    if scores is None:
        scores = [float(-i) for i in range(len(candidates))]  # the baseline: request order
    if mode == ONLINE:
        [(chosen, _)] = pick(scores, 1, exploration, rng)
        chances = probabilities(scores, exploration)
    else:
        chosen = 0  # the baseline's choice: the first action not excluded
        chances = [1.0] + [0.0] * (len(candidates) - 1)
    others = sorted((i for i in range(len(candidates)) if i != chosen), key=lambda i: (-scores[i], i))
    excluded = request.excluded()
    ranking = [{"id": candidates[i].id, "probability": chances[i]} for i in [chosen, *others]]
    ranking += [{"id": a.id, "probability": 0.0} for a in excluded]
    reward_action = candidates[chosen].id
    data: dict[str, Any] = {
        "decisionId": event_id,
        "context": context,
        "candidates": [{"offerId": a.id, "features": f} for a, f in zip(candidates, features)],
        "chosen": [{"offerId": reward_action, "slot": 0, "probability": chances[chosen]}],
        "modelVersion": version,
        "exploration": _logged(mode, exploration),
        "deferred": request.deferActivation,
    }
    if excluded:
        data["excluded"] = [a.id for a in excluded]
    response = {"ranking": ranking, "eventId": event_id, "rewardActionId": reward_action}
    return Ranked(response, data)


def rank_multislot(request: MultiSlotRankRequest, score: Scorer, exploration: Exploration, rng: random.Random,
                   event_id: str, mode: str = ONLINE) -> Ranked:
    """Fill each slot in order with an action not excluded for it and not shown in an earlier slot.

    The actions are scored once, in the shared context (slot features are logged, not scored).
    A slot left with no action (its exclusions and the earlier slots took them all) gets
    rewardActionId null and no chosen entry.
    """
    _check_mode(mode)
    actions = request.actions
    ids = [a.id for a in actions]
    context = merge(request.contextFeatures, "contextFeatures")
    features = [action_features(a) for a in actions]
    scores, version = _scored(score, context, features)
    taken: set[int] = set()
    slots, chosen_log = [], []
    for position, slot in enumerate(request.slots):
        excluded = set(slot.excludedActions)
        available = [j for j, a in enumerate(ids) if a not in excluded and j not in taken]
        if not available:
            slots.append({"id": slot.id, "rewardActionId": None})
            continue
        baseline = next((j for j in available if ids[j] == slot.baselineAction), available[0])
        if mode != ONLINE:
            chosen, probability = baseline, 1.0
        else:
            if scores is None:  # the baseline: the slot's baselineAction, then request order
                slot_scores = [1.0 if j == baseline else float(-j) for j in available]
            else:
                slot_scores = [scores[j] for j in available]
            [(k, probability)] = pick(slot_scores, 1, exploration, rng)
            chosen = available[k]
        taken.add(chosen)
        slots.append({"id": slot.id, "rewardActionId": ids[chosen]})
        chosen_log.append({"offerId": ids[chosen], "slot": position, "probability": probability, "slotId": slot.id})
    data = {
        "decisionId": event_id,
        "context": context,
        "candidates": [{"offerId": a, "features": f} for a, f in zip(ids, features)],
        "chosen": chosen_log,
        "modelVersion": version,
        "exploration": _logged(mode, exploration),
        "deferred": request.deferActivation,
        "slots": [{"id": s.id, "features": merge(s.features, f"slots[{i}].features"),
                   "baselineAction": s.baselineAction, "excludedActions": list(s.excludedActions)}
                  for i, s in enumerate(request.slots)],
    }
    return Ranked({"slots": slots, "eventId": event_id}, data)
