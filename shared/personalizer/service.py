"""The Personalizer-compatible API's operations over offerloop's "personalizer" learning loop.

Each operation takes the request's bytes and the loop's ports, and returns the response JSON
(or raises `PersonalizerError`); functions/personalizer.py maps them to HTTP.

  rank / multi-slot rank   the loop's current model scores the actions (the baseline, the
                           request's order, before the first promotion), the stored exploration
                           explores; the decision is logged as personalizer.ranked
  reward / activate        personalizer.rewarded / personalizer.activated, sent before the 204
  configuration, policy    the stored LoopSettings (shared/personalizer_store.py), which the
                           loop's serving and retrain read

The events' subject is the loop (`SUBJECT`), not a shopper, and they are sent without a
partition key: the service spreads them over the partitions, and each send is one batch
however many decisions it carries. Their order does not matter: the retrain joins a decision's
rewards and activation by its id.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional, Sequence

from .. import events as ev
from ..learning.explore import Serving
from . import configuration, errors, ranking
from .configuration import LoopSettings
from .requests import MultiSlotRankRequest, MultiSlotRewardRequest, RankRequest, RewardRequest

BASELINE = "baseline"  # the model version a decision records before the loop's first promotion
SUBJECT = "personalizer"
MAX_EVENT_ID = 256


@dataclass
class Ports:
    settings: Callable[[], LoopSettings]
    save_settings: Callable[[LoopSettings], LoopSettings]
    serving: Callable[[], Serving]  # the loop's current model (None: the baseline)
    publish: Callable[[ev.Event], None]  # rank decisions: buffered, sent in the background
    send: Callable[[Sequence[ev.Event]], None]  # rewards and activations: sent before answering
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))


def _event(kind: str, event_id: str, data: Mapping[str, Any], now: datetime) -> ev.Event:
    model = ev.SCHEMAS[(kind, 1)]
    return ev.new(kind, SUBJECT, model.model_validate(dict(data)), source=ev.PERSONALIZER_SOURCE, time=now)


def _scorer(serving: Serving) -> ranking.Scorer:
    def score(context: Mapping[str, Any], actions: Sequence[Mapping[str, Any]]):
        if serving.model is None:
            return None, BASELINE
        return serving.model.score(context, actions).tolist(), serving.model.version
    return score


def _mode(settings: LoopSettings, serving: Serving) -> str:
    """Apprentice mode lasts until the loop's model graduates (agrees with the baseline often enough)."""
    if settings.learning_mode == "Apprentice" and not serving.apprentice:
        return "Online"
    return settings.learning_mode


def _event_id(requested: Optional[str]) -> str:
    return requested if requested else ranking.new_event_id()


def rank(body: bytes, ports: Ports) -> dict[str, Any]:
    request = errors.parse(RankRequest, body)
    return _ranked(request, ports, ranking.rank)


def rank_multislot(body: bytes, ports: Ports) -> dict[str, Any]:
    request = errors.parse(MultiSlotRankRequest, body)
    return _ranked(request, ports, ranking.rank_multislot)


def _ranked(request, ports: Ports, how) -> dict[str, Any]:
    settings, serving = ports.settings(), ports.serving()
    event_id = _event_id(request.eventId)
    # seeded by the eventId, as Personalizer seeds its exploration: the same event ranks the same
    rng = random.Random(event_id)
    ranked = how(request, _scorer(serving), settings.exploration(), rng, event_id, _mode(settings, serving))
    ports.publish(_event(ev.PERSONALIZER_RANKED, event_id, ranked.data, ports.clock()))
    return ranked.response


def _checked_id(event_id: str) -> str:
    if not event_id or len(event_id) > MAX_EVENT_ID:
        raise errors.bad_request(f"the eventId must be 1 to {MAX_EVENT_ID} characters", "InvalidEventIdToActivate")
    return event_id


def reward(event_id: str, body: bytes, ports: Ports) -> None:
    event_id = _checked_id(event_id)
    request = errors.parse(RewardRequest, body)
    ports.send([_event(ev.PERSONALIZER_REWARDED, event_id, {"decisionId": event_id, "value": request.value},
                       ports.clock())])


def reward_multislot(event_id: str, body: bytes, ports: Ports) -> None:
    event_id = _checked_id(event_id)
    request = errors.parse(MultiSlotRewardRequest, body)
    now = ports.clock()
    ports.send([_event(ev.PERSONALIZER_REWARDED, event_id,
                       {"decisionId": event_id, "value": r.value, "slotId": r.slotId}, now) for r in request.reward])


def activate(event_id: str, ports: Ports) -> None:
    event_id = _checked_id(event_id)
    ports.send([_event(ev.PERSONALIZER_ACTIVATED, event_id, {"decisionId": event_id}, ports.clock())])


def service_configuration(ports: Ports) -> dict[str, Any]:
    return configuration.service_json(ports.settings())


def update_service_configuration(body: bytes, ports: Ports) -> dict[str, Any]:
    updated = configuration.apply_service(ports.settings(), body, ports.clock())
    return configuration.service_json(ports.save_settings(updated))


def policy(ports: Ports) -> dict[str, Any]:
    return configuration.policy_json(ports.settings())


def update_policy(body: bytes, ports: Ports) -> dict[str, Any]:
    updated = configuration.apply_policy(ports.settings(), body, ports.clock())
    return configuration.policy_json(ports.save_settings(updated))


def reset_policy(ports: Ports) -> dict[str, Any]:
    updated = configuration.reset_policy(ports.settings(), ports.clock())
    return configuration.policy_json(ports.save_settings(updated))
