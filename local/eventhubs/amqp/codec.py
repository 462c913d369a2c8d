"""Encoder/decoder for the AMQP 1.0 type system (OASIS AMQP 1.0, part 1).

``encode(value)`` picks the wire type from the Python type (see ``types.py``);
it always uses the most compact constructor because peers must accept all of
them.  ``decode(buf, pos)`` returns ``(value, next_pos)``.  ``skip(buf, pos)``
finds the end of an encoded value without building it, which lets message
sections be split and stored as raw bytes.
"""
from __future__ import annotations

import struct
import uuid
from typing import Any, Callable, Dict, List, Tuple

from .types import (
    Array,
    Byte,
    Char,
    Decimal32,
    Decimal64,
    Decimal128,
    Described,
    Float,
    Int,
    Long,
    Short,
    Symbol,
    Timestamp,
    UByte,
    UInt,
    ULong,
    UShort,
)


class DecodeError(ValueError):
    """The bytes are not a valid AMQP encoding."""


_U8 = struct.Struct(">B")
_I8 = struct.Struct(">b")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_U32_PAIR = struct.Struct(">II")


# --------------------------------------------------------------------------- encode


def encode(value: Any) -> bytes:
    out = bytearray()
    encode_into(out, value)
    return bytes(out)


def encode_into(out: bytearray, value: Any) -> None:
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        encoder = _encoder_for_subclass(value)
    encoder(out, value)


def _encoder_for_subclass(value: Any) -> Callable[[bytearray, Any], None]:
    for base, encoder in _FALLBACK_ENCODERS:
        if isinstance(value, base):
            return encoder
    raise TypeError(f"cannot AMQP-encode {type(value).__name__}: {value!r}")


def _enc_null(out: bytearray, _: Any) -> None:
    out.append(0x40)


def _enc_bool(out: bytearray, value: bool) -> None:
    out.append(0x41 if value else 0x42)


def _enc_ubyte(out: bytearray, value: int) -> None:
    out.append(0x50)
    out.append(value)


def _enc_ushort(out: bytearray, value: int) -> None:
    out.append(0x60)
    out += _U16.pack(value)


def _enc_uint(out: bytearray, value: int) -> None:
    if value == 0:
        out.append(0x43)
    elif value < 256:
        out.append(0x52)
        out.append(value)
    else:
        out.append(0x70)
        out += _U32.pack(value)


def _enc_ulong(out: bytearray, value: int) -> None:
    if value == 0:
        out.append(0x44)
    elif value < 256:
        out.append(0x53)
        out.append(value)
    else:
        out.append(0x80)
        out += _U64.pack(value)


def _enc_byte(out: bytearray, value: int) -> None:
    out.append(0x51)
    out += _I8.pack(value)


def _enc_short(out: bytearray, value: int) -> None:
    out.append(0x61)
    out += _I16.pack(value)


def _enc_int(out: bytearray, value: int) -> None:
    if -128 <= value <= 127:
        out.append(0x54)
        out += _I8.pack(value)
    else:
        out.append(0x71)
        out += _I32.pack(value)


def _enc_long(out: bytearray, value: int) -> None:
    if -128 <= value <= 127:
        out.append(0x55)
        out += _I8.pack(value)
    else:
        out.append(0x81)
        out += _I64.pack(value)


def _enc_timestamp(out: bytearray, value: int) -> None:
    out.append(0x83)
    out += _I64.pack(value)


def _enc_float(out: bytearray, value: float) -> None:
    out.append(0x72)
    out += _F32.pack(value)


def _enc_double(out: bytearray, value: float) -> None:
    out.append(0x82)
    out += _F64.pack(value)


def _enc_char(out: bytearray, value: str) -> None:
    out.append(0x73)
    out += _U32.pack(ord(value))


def _enc_uuid(out: bytearray, value: uuid.UUID) -> None:
    out.append(0x98)
    out += value.bytes


def _enc_decimal32(out: bytearray, value: bytes) -> None:
    out.append(0x74)
    out += value


def _enc_decimal64(out: bytearray, value: bytes) -> None:
    out.append(0x84)
    out += value


def _enc_decimal128(out: bytearray, value: bytes) -> None:
    out.append(0x94)
    out += value


def _enc_variable(small: int, large: int) -> Callable[[bytearray, bytes], None]:
    def encode_bytes(out: bytearray, data: bytes) -> None:
        if len(data) < 256:
            out.append(small)
            out.append(len(data))
        else:
            out.append(large)
            out += _U32.pack(len(data))
        out += data

    return encode_bytes


_enc_vbin = _enc_variable(0xA0, 0xB0)
_enc_str_bytes = _enc_variable(0xA1, 0xB1)
_enc_sym_bytes = _enc_variable(0xA3, 0xB3)


def _enc_binary(out: bytearray, value: bytes) -> None:
    _enc_vbin(out, bytes(value))


def _enc_string(out: bytearray, value: str) -> None:
    _enc_str_bytes(out, value.encode("utf-8"))


def _enc_symbol(out: bytearray, value: str) -> None:
    _enc_sym_bytes(out, value.encode("ascii"))


def _enc_compound(out: bytearray, small: int, large: int, count: int, body: bytes) -> None:
    # size counts the count field too; the 8-bit form needs both to fit in a byte.
    if len(body) + 1 < 256 and count < 256:
        out.append(small)
        out.append(len(body) + 1)
        out.append(count)
    else:
        out.append(large)
        out += _U32_PAIR.pack(len(body) + 4, count)
    out += body


def _enc_list(out: bytearray, value: list) -> None:
    if not value:
        out.append(0x45)
        return
    body = bytearray()
    for item in value:
        encode_into(body, item)
    _enc_compound(out, 0xC0, 0xD0, len(value), body)


class FullList(list):
    """A list that is never encoded with the list0 shortcut.

    The Azure SDK's pyamqp reads performative bodies assuming a list8/list32
    constructor, so frame bodies (and nested composites) use this.
    """


def encode_list_full(out: bytearray, value: list) -> None:
    body = bytearray()
    for item in value:
        encode_into(body, item)
    _enc_compound(out, 0xC0, 0xD0, len(value), body)


def _enc_map(out: bytearray, value: dict) -> None:
    body = bytearray()
    for key, item in value.items():
        encode_into(body, key)
        encode_into(body, item)
    _enc_compound(out, 0xC1, 0xD1, len(value) * 2, body)


def _enc_described(out: bytearray, value: Described) -> None:
    out.append(0x00)
    encode_into(out, value.descriptor)
    encode_into(out, value.value)


# Array elements share one constructor, so each element type has a fixed-width
# (non-compact) form here: (constructor, element encoder without constructor).
def _arr_fixed(code: int, packer: struct.Struct) -> Tuple[int, Callable[[bytearray, Any], None]]:
    return code, lambda out, v: out.extend(packer.pack(v))


_ARRAY_FIXED: Dict[type, Tuple[int, Callable[[bytearray, Any], None]]] = {
    UByte: _arr_fixed(0x50, _U8),
    UShort: _arr_fixed(0x60, _U16),
    UInt: _arr_fixed(0x70, _U32),
    ULong: _arr_fixed(0x80, _U64),
    Byte: _arr_fixed(0x51, _I8),
    Short: _arr_fixed(0x61, _I16),
    Int: _arr_fixed(0x71, _I32),
    Long: _arr_fixed(0x81, _I64),
    int: _arr_fixed(0x81, _I64),
    Timestamp: _arr_fixed(0x83, _I64),
    Float: _arr_fixed(0x72, _F32),
    float: _arr_fixed(0x82, _F64),
    bool: (0x56, lambda out, v: out.append(1 if v else 0)),
    uuid.UUID: (0x98, lambda out, v: out.extend(v.bytes)),
}
_ARRAY_VARIABLE: Dict[type, Tuple[int, int, Callable[[Any], bytes]]] = {
    Symbol: (0xA3, 0xB3, lambda v: v.encode("ascii")),
    str: (0xA1, 0xB1, lambda v: v.encode("utf-8")),
    bytes: (0xA0, 0xB0, bytes),
}


def _enc_array(out: bytearray, value: Array) -> None:
    etype = value.element_type
    body = bytearray()
    if etype in _ARRAY_FIXED:
        code, enc = _ARRAY_FIXED[etype]
        body.append(code)
        for item in value:
            enc(body, item)
    elif etype in _ARRAY_VARIABLE:
        small, large, to_bytes = _ARRAY_VARIABLE[etype]
        raw = [to_bytes(item) for item in value]
        wide = any(len(r) > 255 for r in raw)
        body.append(large if wide else small)
        for r in raw:
            body += _U32.pack(len(r)) if wide else bytes((len(r),))
            body += r
    elif etype in (list, dict):
        # Compound elements always use the 32-bit form so they share a constructor.
        body.append(0xD0 if etype is list else 0xD1)
        for item in value:
            tmp = bytearray()
            (_enc_list_wide if etype is list else _enc_map_wide)(tmp, item)
            body += tmp[1:]
    else:
        raise TypeError(f"unsupported AMQP array element type {etype.__name__}")
    # size counts count + body; count is the number of elements.
    if len(body) + 1 < 256 and len(value) < 256:
        out.append(0xE0)
        out.append(len(body) + 1)
        out.append(len(value))
    else:
        out.append(0xF0)
        out += _U32_PAIR.pack(len(body) + 4, len(value))
    out += body


def _enc_list_wide(out: bytearray, value: list) -> None:
    body = bytearray()
    for item in value:
        encode_into(body, item)
    out.append(0xD0)
    out += _U32_PAIR.pack(len(body) + 4, len(value))
    out += body


def _enc_map_wide(out: bytearray, value: dict) -> None:
    body = bytearray()
    for key, item in value.items():
        encode_into(body, key)
        encode_into(body, item)
    out.append(0xD1)
    out += _U32_PAIR.pack(len(body) + 4, len(value) * 2)
    out += body


_ENCODERS: Dict[type, Callable[[bytearray, Any], None]] = {
    type(None): _enc_null,
    bool: _enc_bool,
    UByte: _enc_ubyte,
    UShort: _enc_ushort,
    UInt: _enc_uint,
    ULong: _enc_ulong,
    Byte: _enc_byte,
    Short: _enc_short,
    Int: _enc_int,
    Long: _enc_long,
    int: _enc_long,
    Timestamp: _enc_timestamp,
    Float: _enc_float,
    float: _enc_double,
    Char: _enc_char,
    uuid.UUID: _enc_uuid,
    Decimal32: _enc_decimal32,
    Decimal64: _enc_decimal64,
    Decimal128: _enc_decimal128,
    bytes: _enc_binary,
    bytearray: _enc_binary,
    memoryview: _enc_binary,
    str: _enc_string,
    Symbol: _enc_symbol,
    list: _enc_list,
    tuple: _enc_list,
    dict: _enc_map,
    Described: _enc_described,
    Array: _enc_array,
    FullList: encode_list_full,
}
_FALLBACK_ENCODERS = [
    (Array, _enc_array),
    (Symbol, _enc_symbol),
    (str, _enc_string),
    (bool, _enc_bool),
    (int, _enc_long),
    (float, _enc_double),
    (bytes, _enc_binary),
    (dict, _enc_map),
    (list, _enc_list),
    (tuple, _enc_list),
]


# --------------------------------------------------------------------------- decode

Decoder = Callable[[memoryview, int], Tuple[Any, int]]


def decode(buf: Any, pos: int = 0) -> Tuple[Any, int]:
    """Decode one value at ``pos``; return it and the position after it."""
    if not isinstance(buf, memoryview):
        buf = memoryview(buf)
    try:
        return _DECODERS[buf[pos]](buf, pos + 1)
    except (IndexError, struct.error, KeyError, TypeError) as exc:
        raise DecodeError(f"malformed AMQP value at byte {pos}: {exc!r}") from None


def _fixed(width: int, convert: Callable[[memoryview], Any]) -> Decoder:
    def dec(buf: memoryview, pos: int) -> Tuple[Any, int]:
        end = pos + width
        if end > len(buf):
            raise IndexError("truncated value")
        return convert(buf[pos:end]), end

    return dec


def _const(value: Any) -> Decoder:
    return lambda buf, pos: (value() if callable(value) else value, pos)


def _unpack(packer: struct.Struct, wrap: type) -> Callable[[memoryview], Any]:
    return lambda b: wrap(packer.unpack(b)[0])


def _variable(len_width: int, convert: Callable[[memoryview], Any]) -> Decoder:
    packer = _U8 if len_width == 1 else _U32

    def dec(buf: memoryview, pos: int) -> Tuple[Any, int]:
        (length,) = packer.unpack_from(buf, pos)
        start = pos + len_width
        end = start + length
        if end > len(buf):
            raise IndexError("truncated value")
        return convert(buf[start:end]), end

    return dec


def _dec_list(len_width: int) -> Decoder:
    def dec(buf: memoryview, pos: int) -> Tuple[Any, int]:
        if len_width == 1:
            size, count = buf[pos], buf[pos + 1]
        else:
            size, count = _U32_PAIR.unpack_from(buf, pos)
        end = pos + len_width + size
        if end > len(buf):
            raise IndexError("truncated list")
        p = pos + 2 * len_width
        items: List[Any] = []
        for _ in range(count):
            item, p = _DECODERS[buf[p]](buf, p + 1)
            items.append(item)
        return items, end

    return dec


def _dec_map(len_width: int) -> Decoder:
    def dec(buf: memoryview, pos: int) -> Tuple[Any, int]:
        if len_width == 1:
            size, count = buf[pos], buf[pos + 1]
        else:
            size, count = _U32_PAIR.unpack_from(buf, pos)
        end = pos + len_width + size
        if end > len(buf):
            raise IndexError("truncated map")
        p = pos + 2 * len_width
        result: Dict[Any, Any] = {}
        for _ in range(count // 2):
            key, p = _DECODERS[buf[p]](buf, p + 1)
            value, p = _DECODERS[buf[p]](buf, p + 1)
            result[_hashable(key)] = value
        return result, end

    return dec


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return tuple(sorted((repr(k), repr(v)) for k, v in key.items()))
    return key


_ELEMENT_TYPES: Dict[int, type] = {
    0x50: UByte, 0x60: UShort, 0x70: UInt, 0x52: UInt, 0x43: UInt, 0x80: ULong, 0x53: ULong,
    0x44: ULong, 0x51: Byte, 0x61: Short, 0x71: Int, 0x54: Int, 0x81: Long, 0x55: Long,
    0x83: Timestamp, 0x72: Float, 0x82: float, 0x56: bool, 0x41: bool, 0x42: bool,
    0x98: uuid.UUID, 0xA0: bytes, 0xB0: bytes, 0xA1: str, 0xB1: str, 0xA3: Symbol, 0xB3: Symbol,
    0xC0: list, 0xD0: list, 0x45: list, 0xC1: dict, 0xD1: dict,
}


def _dec_array(len_width: int) -> Decoder:
    def dec(buf: memoryview, pos: int) -> Tuple[Any, int]:
        if len_width == 1:
            size, count = buf[pos], buf[pos + 1]
        else:
            size, count = _U32_PAIR.unpack_from(buf, pos)
        end = pos + len_width + size
        if end > len(buf):
            raise IndexError("truncated array")
        p = pos + 2 * len_width
        if count == 0:
            # An empty array may still carry an element constructor; it is ignored.
            return Array([], Symbol), end
        constructor = buf[p]
        p += 1
        descriptor = None
        if constructor == 0x00:
            descriptor, p = _DECODERS[buf[p]](buf, p + 1)
            constructor = buf[p]
            p += 1
        element = _DECODERS[constructor]
        items: List[Any] = []
        for _ in range(count):
            item, p = element(buf, p)
            items.append(item if descriptor is None else Described(descriptor, item))
        return Array(items, _ELEMENT_TYPES.get(constructor, Symbol)), end

    return dec


def _dec_described(buf: memoryview, pos: int) -> Tuple[Any, int]:
    descriptor, pos = _DECODERS[buf[pos]](buf, pos + 1)
    value, pos = _DECODERS[buf[pos]](buf, pos + 1)
    return Described(descriptor, value), pos


def _dec_bool_byte(b: memoryview) -> bool:
    if b[0] > 1:
        raise DecodeError("invalid boolean byte")
    return b[0] == 1


_DECODERS: Dict[int, Decoder] = {
    0x00: _dec_described,
    0x40: _const(None),
    0x41: _const(True),
    0x42: _const(False),
    0x43: _const(UInt(0)),
    0x44: _const(ULong(0)),
    0x45: _const(list),
    0x56: _fixed(1, _dec_bool_byte),
    0x50: _fixed(1, lambda b: UByte(b[0])),
    0x51: _fixed(1, _unpack(_I8, Byte)),
    0x52: _fixed(1, lambda b: UInt(b[0])),
    0x53: _fixed(1, lambda b: ULong(b[0])),
    0x54: _fixed(1, _unpack(_I8, Int)),
    0x55: _fixed(1, _unpack(_I8, Long)),
    0x60: _fixed(2, _unpack(_U16, UShort)),
    0x61: _fixed(2, _unpack(_I16, Short)),
    0x70: _fixed(4, _unpack(_U32, UInt)),
    0x71: _fixed(4, _unpack(_I32, Int)),
    0x72: _fixed(4, _unpack(_F32, Float)),
    0x73: _fixed(4, lambda b: Char(chr(_U32.unpack(b)[0]))),
    0x74: _fixed(4, lambda b: Decimal32(b.tobytes())),
    0x80: _fixed(8, _unpack(_U64, ULong)),
    0x81: _fixed(8, _unpack(_I64, Long)),
    0x82: _fixed(8, _unpack(_F64, float)),
    0x83: _fixed(8, _unpack(_I64, Timestamp)),
    0x84: _fixed(8, lambda b: Decimal64(b.tobytes())),
    0x94: _fixed(16, lambda b: Decimal128(b.tobytes())),
    0x98: _fixed(16, lambda b: uuid.UUID(bytes=b.tobytes())),
    0xA0: _variable(1, lambda b: b.tobytes()),
    0xA1: _variable(1, lambda b: str(b, "utf-8")),
    0xA3: _variable(1, lambda b: Symbol(str(b, "ascii"))),
    0xB0: _variable(4, lambda b: b.tobytes()),
    0xB1: _variable(4, lambda b: str(b, "utf-8")),
    0xB3: _variable(4, lambda b: Symbol(str(b, "ascii"))),
    0xC0: _dec_list(1),
    0xC1: _dec_map(1),
    0xD0: _dec_list(4),
    0xD1: _dec_map(4),
    0xE0: _dec_array(1),
    0xF0: _dec_array(4),
}


# --------------------------------------------------------------------------- skip

_FIXED_WIDTH = {
    0x40: 0, 0x41: 0, 0x42: 0, 0x43: 0, 0x44: 0, 0x45: 0,
    0x50: 1, 0x51: 1, 0x52: 1, 0x53: 1, 0x54: 1, 0x55: 1, 0x56: 1,
    0x60: 2, 0x61: 2,
    0x70: 4, 0x71: 4, 0x72: 4, 0x73: 4, 0x74: 4,
    0x80: 8, 0x81: 8, 0x82: 8, 0x83: 8, 0x84: 8,
    0x94: 16, 0x98: 16,
}
_ONE_BYTE_SIZE = {0xA0, 0xA1, 0xA3, 0xC0, 0xC1, 0xE0}
_FOUR_BYTE_SIZE = {0xB0, 0xB1, 0xB3, 0xD0, 0xD1, 0xF0}


def skip(buf: Any, pos: int) -> int:
    """Return the position just after the value encoded at ``pos``."""
    try:
        constructor = buf[pos]
        pos += 1
        if constructor == 0x00:
            pos = skip(buf, pos)
            return skip(buf, pos)
        width = _FIXED_WIDTH.get(constructor)
        if width is not None:
            end = pos + width
        elif constructor in _ONE_BYTE_SIZE:
            end = pos + 1 + buf[pos]
        elif constructor in _FOUR_BYTE_SIZE:
            end = pos + 4 + _U32.unpack_from(buf, pos)[0]
        else:
            raise DecodeError(f"unknown AMQP constructor 0x{constructor:02x} at byte {pos - 1}")
    except (IndexError, struct.error) as exc:
        raise DecodeError(f"truncated AMQP value: {exc!r}") from None
    if end > len(buf):
        raise DecodeError("truncated AMQP value")
    return end
