"""Personalizer's request bodies as pydantic models, validated as the service validates them.

Field names are the JSON's (camelCase). Unknown fields are ignored, as Personalizer ignores
them; wrong types are rejected (strict: "1" is not a number, 1 is not a string). Optional lists
sent as null count as empty, as the .NET and JavaScript clients may send them. Rules that
span fields (unique ids, what is excluded, slots against actions) are each model's
`problems()`, which `errors.parse` reports with the field errors. Codes and messages follow
Personalizer's own (its PersonalizerErrorCode and PersonalizerErrorMessages) where it has one.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any, ClassVar, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from .errors import detail

MAX_ACTIONS = 50  # "The set should not contain more than 50 actions."
MAX_SLOTS = 50
MAX_ID_LENGTH = 256  # eventId: "maxLength: 256"; action and slot ids alike
MAX_EVALUATION_POLICIES = 10  # "A maximum of 10 custom policies are allowed"
REWARD_RANGE = (-1.0, 1.0)  # "must be between -1 and 1"


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)


def _empty_if_none(value: Any) -> Any:
    return [] if value is None else value


def _feature_objects(value: Any) -> Any:
    """A list of feature objects: every item must be a JSON object."""
    value = _empty_if_none(value)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                kind = "null" if item is None else type(item).__name__
                raise PydanticCustomError(
                    "FeaturesNotInKeyValueFormat",
                    "Features are not in key value pair format: item {index} is {kind}, not an object",
                    {"index": i, "kind": kind})
    return value


def _id(value: str, what: str) -> str:
    if not value:
        raise PydanticCustomError("EmptyId", "{what} ids must not be empty", {"what": what})
    if len(value) > MAX_ID_LENGTH:
        raise PydanticCustomError("IdTooLong", "{what} ids must be at most {n} characters",
                                  {"what": what, "n": MAX_ID_LENGTH})
    return value


def _event_id(value: Optional[str]) -> Optional[str]:
    if value is not None:
        if value == "":
            raise PydanticCustomError("EmptyEventId", "EventId should be non-empty or null")
        if len(value) > MAX_ID_LENGTH:
            raise PydanticCustomError("EventIdTooLong", "EventId must be at most {n} characters",
                                      {"n": MAX_ID_LENGTH})
    return value


def _action_count(value: Any) -> Any:
    if isinstance(value, list) and not 1 <= len(value) <= MAX_ACTIONS:
        raise PydanticCustomError("ActionCountOutOfBounds",
                                  "Action count should be between 1 and {max}; got {count}",
                                  {"max": MAX_ACTIONS, "count": len(value)})
    return value


def _reward(value: float) -> float:
    low, high = REWARD_RANGE
    if not low <= value <= high:
        raise PydanticCustomError("RewardOutOfRange", "Reward value must be between -1 and 1 inclusive; got {value}",
                                  {"value": value})
    return value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _duplicates(ids: list[str]) -> list[str]:
    return [i for i, n in Counter(ids).items() if n > 1]


class RankableAction(_Body):
    id: str
    features: list[dict[str, Any]] = []

    _features = field_validator("features", mode="before")(_feature_objects)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _id(value, "Action")


class _Rank(_Body):
    """What single- and multi-slot rank requests share."""

    error_code: ClassVar[str] = "InvalidRankRequest"

    contextFeatures: list[dict[str, Any]] = []
    actions: list[RankableAction]
    eventId: Optional[str] = None
    deferActivation: bool = False

    _context = field_validator("contextFeatures", mode="before")(_feature_objects)
    _count = field_validator("actions", mode="before")(_action_count)
    _event = field_validator("eventId")(_event_id)

    @field_validator("deferActivation", mode="before")
    @classmethod
    def _defer_null(cls, value: Any) -> Any:
        return False if value is None else value

    def action_ids(self) -> list[str]:
        return [a.id for a in self.actions]

    def _action_problems(self) -> list[dict[str, Any]]:
        repeated = _duplicates(self.action_ids())
        if repeated:
            return [detail("DuplicateActionId", f"Action ids must be unique; repeated: {', '.join(repeated)}",
                           "actions")]
        return []


class RankRequest(_Rank):
    excludedActions: list[str] = []

    _excluded = field_validator("excludedActions", mode="before")(_empty_if_none)

    def problems(self) -> list[dict[str, Any]]:
        found = self._action_problems()
        if not self.candidates():
            found.append(detail("AllActionsExcluded",
                                "Every action is excluded; at least one action must be left to rank",
                                "excludedActions"))
        return found

    def candidates(self) -> list[RankableAction]:
        """The actions that may be chosen, in request order (the first is the baseline's choice)."""
        excluded = set(self.excludedActions)
        return [a for a in self.actions if a.id not in excluded]

    def excluded(self) -> list[RankableAction]:
        excluded = set(self.excludedActions)
        return [a for a in self.actions if a.id in excluded]


class SlotRequest(_Body):
    id: str
    features: list[dict[str, Any]] = []
    excludedActions: list[str] = []
    baselineAction: str

    _features = field_validator("features", mode="before")(_feature_objects)
    _excluded = field_validator("excludedActions", mode="before")(_empty_if_none)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _id(value, "Slot")


class MultiSlotRankRequest(_Rank):
    slots: list[SlotRequest]

    @field_validator("slots", mode="before")
    @classmethod
    def _slot_count(cls, value: Any) -> Any:
        if isinstance(value, list) and not 1 <= len(value) <= MAX_SLOTS:
            raise PydanticCustomError("MultiSlotsCountOutOfBounds",
                                      "Slots count should be between 1 and the number of actions (at most {max}); "
                                      "got {count}", {"max": MAX_SLOTS, "count": len(value)})
        return value

    def problems(self) -> list[dict[str, Any]]:
        found = self._action_problems()
        actions = set(self.action_ids())
        if len(self.slots) > len(self.actions):
            found.append(detail("MultiSlotsCountOutOfBounds",
                                f"Slots count should be between 1 and the number of actions; got {len(self.slots)} "
                                f"slots for {len(self.actions)} actions", "slots"))
        repeated = _duplicates([s.id for s in self.slots])
        if repeated:
            found.append(detail("MultiSlotInvalidSlotIds",
                                f"All slots must have unique, non-empty ids; repeated: {', '.join(repeated)}", "slots"))
        baselines = Counter(s.baselineAction for s in self.slots)
        for i, slot in enumerate(self.slots):
            at = f"slots[{i}]"
            if slot.baselineAction not in actions or baselines[slot.baselineAction] > 1:
                found.append(detail("InvalidBaselineActionId",
                                    "Each slot must contain a unique BaselineAction with an ID corresponding to an "
                                    f"element of Actions; got {slot.baselineAction!r}", f"{at}.baselineAction"))
            if slot.baselineAction in slot.excludedActions:
                found.append(detail("ExcludedBaselineAction", "BaselineAction cannot be part of ExcludedActions",
                                    f"{at}.excludedActions"))
            unknown = [a for a in slot.excludedActions if a not in actions]
            if unknown:
                found.append(detail("MultiSlotInvalidExcludedActions",
                                    "All excluded action ids must have a corresponding action id; unknown: "
                                    + ", ".join(unknown), f"{at}.excludedActions"))
        return found


class RewardRequest(_Body):
    error_code: ClassVar[str] = "InvalidRewardRequest"

    value: float

    _range = field_validator("value")(_reward)


class SlotReward(_Body):
    slotId: str
    value: float

    _range = field_validator("value")(_reward)

    @field_validator("slotId")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _id(value, "Slot")


class MultiSlotRewardRequest(_Body):
    error_code: ClassVar[str] = "InvalidRewardRequest"

    reward: list[SlotReward] = Field(min_length=1)


class PolicyContract(_Body):
    """A learning policy: {"name", "arguments"} (Personalizer's PolicyContract)."""

    error_code: ClassVar[str] = "InvalidPolicyContract"

    name: str
    arguments: str


class EvaluationRequest(_Body):
    """Create Offline Evaluation: {name, startTime, endTime, enablePolicyOptimization?, policies?}."""

    error_code: ClassVar[str] = "InvalidEvaluationContract"

    name: str = Field(min_length=1)
    startTime: datetime
    endTime: datetime
    enablePolicyOptimization: bool = False
    policies: list[PolicyContract] = []

    _policies = field_validator("policies", mode="before")(_empty_if_none)
    _times = field_validator("startTime", "endTime")(_utc)

    @field_validator("enablePolicyOptimization", mode="before")
    @classmethod
    def _optimization_null(cls, value: Any) -> Any:
        return False if value is None else value

    def problems(self) -> list[dict[str, Any]]:
        found = []
        if self.startTime >= self.endTime:
            found.append(detail("InvalidDateTimesInEvaluationContract", "startTime must be earlier than endTime",
                                "startTime"))
        if len(self.policies) > MAX_EVALUATION_POLICIES:
            found.append(detail("MaximumEvaluationCustomPoliciesExceeded",
                                f"A maximum of {MAX_EVALUATION_POLICIES} custom policies are allowed", "policies"))
        repeated = _duplicates([p.name for p in self.policies])
        if repeated:
            found.append(detail("DuplicateCustomPolicyNames",
                                f"Custom policy names should be unique; repeated: {', '.join(repeated)}", "policies"))
        return found

