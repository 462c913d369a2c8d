"""AMQP 1.0 performatives and the composite types used inside them.

Each class lists its fields in wire order with the AMQP type to coerce plain
Python values to.  Encoding always emits *every* field, including trailing
nulls: the spec allows trimming them, but the Azure SDK's pyamqp reads fields
by position (e.g. ``frame[11]`` of a transfer, ``frame[13]`` of an attach) and
fails on shortened lists.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple, Type

from .codec import FullList, encode_into
from .types import Described, Symbol, UByte, UInt, ULong, UShort, symbols


def _as(kind: type) -> Callable[[Any], Any]:
    return lambda v: v if type(v) is kind else kind(v)


def _string(v: Any) -> Any:
    return v.decode("utf-8") if isinstance(v, bytes) else v


def _symbol(v: Any) -> Any:
    return Symbol(v.decode("ascii") if isinstance(v, bytes) else v)


def _composite(v: Any) -> Any:
    # Nested composites (source, target, error, delivery states) describe themselves.
    return v.described() if isinstance(v, Composite) else v


def _same(v: Any) -> Any:
    return v


_uint, _ushort, _ubyte, _ulong = _as(UInt), _as(UShort), _as(UByte), _as(ULong)

Field = Tuple[str, Callable[[Any], Any]]


class Composite:
    """Base for described list types; subclasses set CODE and FIELDS."""

    CODE: ClassVar[int] = 0
    FIELDS: ClassVar[Tuple[Field, ...]] = ()
    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names = [name for name, _ in self.FIELDS]
        for name in names:
            object.__setattr__(self, name, None)
        for name, value in zip(names, args):
            object.__setattr__(self, name, value)
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            object.__setattr__(self, name, value)

    @classmethod
    def from_fields(cls, values: List[Any]) -> "Composite":
        # Extra trailing fields from a newer peer are ignored; missing ones are null.
        return cls(*values[: len(cls.FIELDS)])

    def field_values(self) -> List[Any]:
        values = []
        for name, coerce in self.FIELDS:
            value = getattr(self, name)
            values.append(None if value is None else coerce(value))
        return values

    def described(self) -> Described:
        return Described(ULong(self.CODE), FullList(self.field_values()))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name, _ in self.FIELDS if getattr(self, name) is not None
        )
        return f"{type(self).__name__}({shown})"


def encode_composite(out: bytearray, composite: Composite) -> None:
    encode_into(out, composite.described())


def _define(name: str, code: int, fields: List[Field]) -> Type[Composite]:
    cls = type(name, (Composite,), {"CODE": code, "FIELDS": tuple(fields), "__slots__": tuple(n for n, _ in fields)})
    return cls  # type: ignore[return-value]


# Transport performatives -----------------------------------------------------

Open = _define("Open", 0x10, [
    ("container_id", _string), ("hostname", _string), ("max_frame_size", _uint), ("channel_max", _ushort),
    ("idle_timeout", _uint), ("outgoing_locales", symbols), ("incoming_locales", symbols),
    ("offered_capabilities", symbols), ("desired_capabilities", symbols), ("properties", _same),
])
Begin = _define("Begin", 0x11, [
    ("remote_channel", _ushort), ("next_outgoing_id", _uint), ("incoming_window", _uint),
    ("outgoing_window", _uint), ("handle_max", _uint), ("offered_capabilities", symbols),
    ("desired_capabilities", symbols), ("properties", _same),
])
Attach = _define("Attach", 0x12, [
    ("name", _string), ("handle", _uint), ("role", bool), ("snd_settle_mode", _ubyte),
    ("rcv_settle_mode", _ubyte), ("source", _composite), ("target", _composite), ("unsettled", _same),
    ("incomplete_unsettled", bool), ("initial_delivery_count", _uint), ("max_message_size", _ulong),
    ("offered_capabilities", symbols), ("desired_capabilities", symbols), ("properties", _same),
])
Flow = _define("Flow", 0x13, [
    ("next_incoming_id", _uint), ("incoming_window", _uint), ("next_outgoing_id", _uint),
    ("outgoing_window", _uint), ("handle", _uint), ("delivery_count", _uint), ("link_credit", _uint),
    ("available", _uint), ("drain", bool), ("echo", bool), ("properties", _same),
])
Transfer = _define("Transfer", 0x14, [
    ("handle", _uint), ("delivery_id", _uint), ("delivery_tag", bytes), ("message_format", _uint),
    ("settled", bool), ("more", bool), ("rcv_settle_mode", _ubyte), ("state", _composite),
    ("resume", bool), ("aborted", bool), ("batchable", bool),
])
Disposition = _define("Disposition", 0x15, [
    ("role", bool), ("first", _uint), ("last", _uint), ("settled", bool), ("state", _composite),
    ("batchable", bool),
])
Detach = _define("Detach", 0x16, [("handle", _uint), ("closed", bool), ("error", _composite)])
End = _define("End", 0x17, [("error", _composite)])
Close = _define("Close", 0x18, [("error", _composite)])

# SASL ------------------------------------------------------------------------

SaslMechanisms = _define("SaslMechanisms", 0x40, [("sasl_server_mechanisms", symbols)])
SaslInit = _define("SaslInit", 0x41, [("mechanism", _symbol), ("initial_response", bytes), ("hostname", _string)])
SaslChallenge = _define("SaslChallenge", 0x42, [("challenge", bytes)])
SaslResponse = _define("SaslResponse", 0x43, [("response", bytes)])
SaslOutcome = _define("SaslOutcome", 0x44, [("code", _ubyte), ("additional_data", bytes)])

# Composite types used inside performatives -----------------------------------

Error = _define("Error", 0x1D, [("condition", _symbol), ("description", _string), ("info", _same)])
Source = _define("Source", 0x28, [
    ("address", _string), ("durable", _uint), ("expiry_policy", _symbol), ("timeout", _uint),
    ("dynamic", bool), ("dynamic_node_properties", _same), ("distribution_mode", _symbol),
    ("filter", _same), ("default_outcome", _composite), ("outcomes", symbols), ("capabilities", symbols),
])
Target = _define("Target", 0x29, [
    ("address", _string), ("durable", _uint), ("expiry_policy", _symbol), ("timeout", _uint),
    ("dynamic", bool), ("dynamic_node_properties", _same), ("capabilities", symbols),
])
Received = _define("Received", 0x23, [("section_number", _uint), ("section_offset", _ulong)])
Accepted = _define("Accepted", 0x24, [])
Rejected = _define("Rejected", 0x25, [("error", _composite)])
Released = _define("Released", 0x26, [])
Modified = _define("Modified", 0x27, [
    ("delivery_failed", bool), ("undeliverable_here", bool), ("message_annotations", _same),
])

PERFORMATIVES: Dict[int, Type[Composite]] = {
    cls.CODE: cls
    for cls in (Open, Begin, Attach, Flow, Transfer, Disposition, Detach, End, Close,
                SaslMechanisms, SaslInit, SaslChallenge, SaslResponse, SaslOutcome)
}
COMPOSITES: Dict[int, Type[Composite]] = {
    cls.CODE: cls for cls in (Error, Source, Target, Received, Accepted, Rejected, Released, Modified)
}
# Descriptors may also be sent as symbols; map the ones we care about.
SYMBOLIC_DESCRIPTORS: Dict[str, int] = {
    "amqp:open:list": 0x10, "amqp:begin:list": 0x11, "amqp:attach:list": 0x12, "amqp:flow:list": 0x13,
    "amqp:transfer:list": 0x14, "amqp:disposition:list": 0x15, "amqp:detach:list": 0x16,
    "amqp:end:list": 0x17, "amqp:close:list": 0x18, "amqp:error:list": 0x1D,
    "amqp:source:list": 0x28, "amqp:target:list": 0x29, "amqp:received:list": 0x23,
    "amqp:accepted:list": 0x24, "amqp:rejected:list": 0x25, "amqp:released:list": 0x26,
    "amqp:modified:list": 0x27, "amqp:sasl-mechanisms:list": 0x40, "amqp:sasl-init:list": 0x41,
    "amqp:sasl-challenge:list": 0x42, "amqp:sasl-response:list": 0x43, "amqp:sasl-outcome:list": 0x44,
}


def descriptor_code(descriptor: Any) -> Optional[int]:
    if isinstance(descriptor, int) and not isinstance(descriptor, bool):
        return int(descriptor)
    if isinstance(descriptor, str):
        return SYMBOLIC_DESCRIPTORS.get(descriptor)
    return None


def to_composite(value: Any) -> Any:
    """Turn a decoded Described into its Composite class, when known."""
    if isinstance(value, Described):
        cls = COMPOSITES.get(descriptor_code(value.descriptor) or -1)
        if cls is not None and isinstance(value.value, list):
            return cls.from_fields(value.value)
    return value
