"""Python representations of AMQP 1.0 types.

Plain Python values map to the "natural" AMQP type (int -> long, str -> string,
bytes -> binary, float -> double, list -> list, dict -> map).  Where AMQP needs a
narrower or different type the value is wrapped in one of the subclasses below.
They subclass the builtin so callers can compare, hash and do arithmetic with
them as usual, while the encoder still knows which wire type to emit.  The
decoder returns these wrappers too, so decode -> encode round-trips exactly.
"""
from __future__ import annotations

from typing import Any


class UByte(int):
    __slots__ = ()


class UShort(int):
    __slots__ = ()


class UInt(int):
    __slots__ = ()


class ULong(int):
    __slots__ = ()


class Byte(int):
    __slots__ = ()


class Short(int):
    __slots__ = ()


class Int(int):
    __slots__ = ()


class Long(int):
    __slots__ = ()


class Timestamp(int):
    """Milliseconds since the Unix epoch."""

    __slots__ = ()


class Float(float):
    """32-bit IEEE float (a plain float encodes as a 64-bit double)."""

    __slots__ = ()


class Symbol(str):
    """ASCII symbolic constant; hashes/compares like the equal str."""

    __slots__ = ()


class Char(str):
    """A single UTF-32 character."""

    __slots__ = ()


class Decimal32(bytes):
    """Opaque IEEE 754 decimal32; carried, never interpreted."""


class Decimal64(bytes):
    """Opaque IEEE 754 decimal64; carried, never interpreted."""


class Decimal128(bytes):
    """Opaque IEEE 754 decimal128; carried, never interpreted."""


class Described:
    """A described type: a descriptor (usually a ULong code or a Symbol) plus a value."""

    __slots__ = ("descriptor", "value")

    def __init__(self, descriptor: Any, value: Any) -> None:
        self.descriptor = descriptor
        self.value = value

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Described)
            and self.descriptor == other.descriptor
            and self.value == other.value
        )

    def __hash__(self) -> int:
        return hash(self.descriptor)

    def __repr__(self) -> str:
        return f"Described({self.descriptor!r}, {self.value!r})"


class Array(list):
    """A homogeneous AMQP array.

    ``element_type`` is one of the wrapper classes (or str/bytes/int/bool/...) and
    decides the single constructor shared by all elements.
    """

    def __init__(self, items: Any = (), element_type: type = Symbol) -> None:
        super().__init__(items)
        self.element_type = element_type

    def __repr__(self) -> str:
        return f"Array({list(self)!r}, {self.element_type.__name__})"


def symbols(values: Any) -> Array | None:
    """Wrap a list of strings as an array of symbols (the 'multiple symbol' fields)."""
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        values = [values]
    return Array([Symbol(v.decode() if isinstance(v, bytes) else v) for v in values], Symbol)
