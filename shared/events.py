"""offerloop's events: CloudEvents 1.0 JSON whose `data` has a versioned schema per type.

The envelope is CloudEvents (`azure.core.messaging.CloudEvent`): `specversion, id, source,
type, time, subject (= userId), data`, plus `dataschema` naming the data's schema version
(`urn:offerloop:<type>:<version>`; version 1 when absent). Every event of a user is sent
with the userId as partition key, so one user's events stay in order in one partition.

Validation happens at the edges (the events API, the ingest function) with pydantic
models, one per type and version; an `InvalidEvent` names each bad field.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Union

from azure.core.messaging import CloudEvent
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PRODUCT_VIEWED = "offerloop.product.viewed"
CART_ADDED = "offerloop.cart.added"
PRODUCT_PURCHASED = "offerloop.product.purchased"
OFFER_SHOWN = "offerloop.offer.shown"
OFFER_CLICKED = "offerloop.offer.clicked"
REWARD_RECEIVED = "offerloop.reward.received"
# The Personalizer-compatible API's loop (functions/personalizer.py): its decisions, rewards and
# activations. Their subject is the loop ("personalizer"), not a shopper; they feed no shopper projection.
PERSONALIZER_RANKED = "offerloop.personalizer.ranked"
PERSONALIZER_REWARDED = "offerloop.personalizer.rewarded"
PERSONALIZER_ACTIVATED = "offerloop.personalizer.activated"
PERSONALIZER_TYPES = (PERSONALIZER_RANKED, PERSONALIZER_REWARDED, PERSONALIZER_ACTIVATED)

# What a website may post to /api/events; offer.shown is emitted by the offers function only.
WEBSITE_TYPES = (PRODUCT_VIEWED, CART_ADDED, PRODUCT_PURCHASED, OFFER_CLICKED, REWARD_RECEIVED)

SPECVERSION = "1.0"
OFFERS_SOURCE = "/offerloop/offers"
PERSONALIZER_SOURCE = "/offerloop/personalizer"
MAX_ID_LENGTH = 128
Id = Field(min_length=1, max_length=MAX_ID_LENGTH)


class _Data(BaseModel):
    # Unknown fields are kept (a newer website may send more), wrong types are not.
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class ProductViewedV1(_Data):
    productId: str = Id
    category: str = Id
    price: Optional[float] = Field(default=None, ge=0)
    device: Optional[str] = None


class CartAddedV1(_Data):
    productId: str = Id
    category: str = Id
    price: float = Field(ge=0)
    quantity: int = Field(default=1, ge=1, le=1000)


class ProductPurchasedV1(_Data):
    productId: str = Id
    category: str = Id
    price: float = Field(ge=0)
    quantity: int = Field(default=1, ge=1, le=1000)
    orderId: Optional[str] = None


class OfferClickedV1(_Data):
    offerId: str = Id
    decisionId: str = Id  # the id of the offer.shown event the click answers


class RewardReceivedV1(_Data):
    decisionId: str = Id
    value: float = Field(ge=-1, le=1)
    offerId: Optional[str] = None


class Candidate(_Data):
    offerId: str = Id
    features: dict[str, Any]


class Chosen(_Data):
    offerId: str = Id
    slot: int = Field(ge=0)
    probability: float = Field(ge=0, le=1)  # of showing this offer in this slot, under the policy
    slotId: Optional[str] = None  # a Personalizer multi-slot decision's slot id


class Exploration(_Data):
    policy: str  # "greedy", "epsilon-greedy", "softmax", …
    epsilon: float = Field(default=0, ge=0, le=1)


class OfferShownV1(_Data):
    decisionId: str = Id
    context: dict[str, Any]  # the context features, as the model saw them
    candidates: list[Candidate]  # every eligible offer with its features
    chosen: list[Chosen]
    modelVersion: str
    exploration: Exploration
    coldStart: bool = False


PersonalizerId = Field(min_length=1, max_length=256)  # Personalizer's event and action ids


class PersonalizerAction(Candidate):
    offerId: str = PersonalizerId  # the action id


class PersonalizerChosen(Chosen):
    offerId: str = PersonalizerId


class PersonalizerRankedV1(_Data):
    """A Personalizer rank or multi-slot rank: the actions are the candidates (`offerId` is the action id)."""

    decisionId: str = PersonalizerId  # the Personalizer eventId
    context: dict[str, Any]
    candidates: list[PersonalizerAction]
    chosen: list[PersonalizerChosen]
    modelVersion: str
    exploration: Exploration
    deferred: bool = False  # deferActivation: not learned from until activated
    excluded: list[str] = Field(default_factory=list)
    slots: Optional[list[dict[str, Any]]] = None  # multi-slot: [{id, features, baselineAction, excludedActions}]


class PersonalizerRewardedV1(_Data):
    decisionId: str = PersonalizerId
    value: float = Field(ge=-1, le=1)
    slotId: Optional[str] = None  # multi-slot: the slot the reward is for (none: the first slot)


class PersonalizerActivatedV1(_Data):
    decisionId: str = PersonalizerId


SCHEMAS: dict[tuple[str, int], type[_Data]] = {
    (PRODUCT_VIEWED, 1): ProductViewedV1,
    (CART_ADDED, 1): CartAddedV1,
    (PRODUCT_PURCHASED, 1): ProductPurchasedV1,
    (OFFER_SHOWN, 1): OfferShownV1,
    (OFFER_CLICKED, 1): OfferClickedV1,
    (REWARD_RECEIVED, 1): RewardReceivedV1,
    (PERSONALIZER_RANKED, 1): PersonalizerRankedV1,
    (PERSONALIZER_REWARDED, 1): PersonalizerRewardedV1,
    (PERSONALIZER_ACTIVATED, 1): PersonalizerActivatedV1,
}
Data = Union[ProductViewedV1, CartAddedV1, ProductPurchasedV1, OfferShownV1, OfferClickedV1, RewardReceivedV1,
             PersonalizerRankedV1, PersonalizerRewardedV1, PersonalizerActivatedV1]


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path: "type", "subject", "data.productId", "data.chosen.0.probability"
    message: str


class InvalidEvent(Exception):
    """An event that is not a valid offerloop event; `errors` names each bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    source: str
    user_id: str  # the CloudEvent subject
    time: datetime
    schema_version: int
    data: Data

    def to_dict(self) -> dict[str, Any]:
        """The CloudEvents 1.0 JSON form (structured mode)."""
        return {
            "specversion": SPECVERSION, "id": self.id, "source": self.source, "type": self.type,
            "time": self.time.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
            "subject": self.user_id, "dataschema": schema_uri(self.type, self.schema_version),
            "datacontenttype": "application/json", "data": self.data.model_dump(mode="json", exclude_none=True),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def schema_uri(event_type: str, version: int) -> str:
    return f"urn:offerloop:{event_type.removeprefix('offerloop.')}:{version}"


def _schema_version(event_type: str, dataschema: Any) -> int:
    if dataschema in (None, ""):
        return 1
    prefix = schema_uri(event_type, 0)[:-1]
    if isinstance(dataschema, str) and dataschema.startswith(prefix) and dataschema[len(prefix):].isdigit():
        return int(dataschema[len(prefix):])
    raise InvalidEvent([FieldError("dataschema", f"expected {prefix}<version>, got {dataschema!r}")])


def _envelope_errors(raw: Mapping[str, Any], allowed_types: tuple[str, ...]) -> list[FieldError]:
    errors = []
    if raw.get("specversion") != SPECVERSION:
        errors.append(FieldError("specversion", f"must be {SPECVERSION!r}"))
    for name in ("id", "source", "subject"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append(FieldError(name, "required, a non-empty string"
                                     + (" (the userId)" if name == "subject" else "")))
        elif len(value) > (MAX_ID_LENGTH if name != "source" else 1024):
            errors.append(FieldError(name, "too long"))
    if raw.get("type") not in allowed_types:
        errors.append(FieldError("type", f"unknown event type {raw.get('type')!r}; "
                                         f"expected one of {', '.join(allowed_types)}"))
    if "data_base64" in raw or not isinstance(raw.get("data"), dict):
        errors.append(FieldError("data", "required, a JSON object"))
    return errors


_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def _rfc3339(value: Any) -> Optional[datetime]:
    # Not CloudEvent.from_dict's parser: azure-core 1.41 keeps only the first digit of a
    # "+hh:mm" offset's hours, so "07:00+02:00" would become 07:00 UTC.
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _RFC3339.fullmatch(value.upper()):
        raise ValueError(value)
    return datetime.fromisoformat(value.upper())


def parse(raw: Any, allowed_types: tuple[str, ...] = tuple(t for t, _ in SCHEMAS),
          now: Optional[datetime] = None) -> Event:
    """Validate one CloudEvent (a decoded JSON value) and return it typed.

    A missing `time` is set to `now` (the moment the event was accepted). Raises
    InvalidEvent naming every bad field.
    """
    if not isinstance(raw, Mapping):
        raise InvalidEvent([FieldError("", "an event must be a JSON object")])
    errors = _envelope_errors(raw, allowed_types)
    if errors:
        raise InvalidEvent(errors)
    try:
        time = _rfc3339(raw.get("time"))
    except ValueError:
        raise InvalidEvent([FieldError("time", "not an RFC 3339 timestamp (e.g. 2026-11-22T05:00:00Z)")]) from None
    try:
        cloud = CloudEvent.from_dict({k: v for k, v in raw.items() if k != "time"})
    except ValueError as error:  # left after the envelope checks: an extension attribute's name
        raise InvalidEvent([FieldError("", str(error))]) from None
    version = _schema_version(cloud.type, cloud.dataschema)
    model = SCHEMAS.get((cloud.type, version))
    if model is None:
        raise InvalidEvent([FieldError("dataschema", f"unknown version {version} of {cloud.type}")])
    try:
        data = model.model_validate(cloud.data)
    except ValidationError as error:
        raise InvalidEvent([
            FieldError(".".join(["data", *map(str, e["loc"])]), e["msg"]) for e in error.errors()
        ]) from None
    time = time or now or datetime.now(timezone.utc)
    if time.tzinfo is None:
        time = time.replace(tzinfo=timezone.utc)
    return Event(id=cloud.id, type=cloud.type, source=cloud.source, user_id=cloud.subject,
                 time=time, schema_version=version, data=data)


def new(event_type: str, user_id: str, data: Data, *, source: str, id: Optional[str] = None,
        time: Optional[datetime] = None) -> Event:
    """A new event of this app's making (e.g. offer.shown), with a fresh uuid and the current time."""
    cloud = CloudEvent(source=source, type=event_type, subject=user_id, id=id,
                       time=time or datetime.now(timezone.utc))
    version = max(v for t, v in SCHEMAS if t == event_type)
    return Event(id=cloud.id, type=event_type, source=source, user_id=user_id, time=cloud.time,
                 schema_version=version, data=data)
