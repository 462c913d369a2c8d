"""AMQP frame layout: an 8-byte header (size, data offset, type, channel), a
performative body and, for transfers, the message payload after it."""
from __future__ import annotations

import struct
from typing import Optional, Tuple

from .codec import DecodeError, decode
from .performatives import PERFORMATIVES, Composite, descriptor_code, encode_composite, to_composite
from .types import Described

FRAME_HEADER = struct.Struct(">IBBH")
AMQP_FRAME = 0
SASL_FRAME = 1

PROTOCOL_AMQP = b"AMQP\x00\x01\x00\x00"
PROTOCOL_SASL = b"AMQP\x03\x01\x00\x00"
PROTOCOL_TLS = b"AMQP\x02\x01\x00\x00"

MIN_MAX_FRAME_SIZE = 512
EMPTY_FRAME = FRAME_HEADER.pack(8, 2, AMQP_FRAME, 0)


class FramingError(Exception):
    """The peer sent something that is not a valid frame."""


def encode_frame(channel: int, performative: Optional[Composite], payload: bytes = b"",
                 frame_type: int = AMQP_FRAME) -> bytes:
    body = bytearray(FRAME_HEADER.size)
    if performative is not None:
        encode_composite(body, performative)
    body += payload
    FRAME_HEADER.pack_into(body, 0, len(body), 2, frame_type, channel)
    return bytes(body)


def performative_size(performative: Composite) -> int:
    """Bytes a frame carrying only this performative needs (header included)."""
    body = bytearray()
    encode_composite(body, performative)
    return FRAME_HEADER.size + len(body)


def decode_frame_body(body: memoryview) -> Tuple[Optional[Composite], memoryview]:
    """Decode a frame body into its performative and the remaining payload bytes."""
    if len(body) == 0:
        return None, body
    try:
        value, end = decode(body, 0)
    except DecodeError as exc:
        raise FramingError(str(exc)) from None
    if not isinstance(value, Described) or not isinstance(value.value, list):
        raise FramingError("frame body is not a described list")
    cls = PERFORMATIVES.get(descriptor_code(value.descriptor) or -1)
    if cls is None:
        raise FramingError(f"unknown performative {value.descriptor!r}")
    fields = [to_composite(v) for v in value.value]
    return cls.from_fields(fields), body[end:]
