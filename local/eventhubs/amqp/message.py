"""AMQP message sections (AMQP 1.0 part 3).

A message on the wire is a sequence of described sections.  We keep sections
as raw bytes so bodies and properties reach consumers exactly as the sender
encoded them; only the sections we must read or rewrite are decoded.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

from .codec import DecodeError, decode, encode_into, encode_list_full, skip
from .types import Described

HEADER = 0x70
DELIVERY_ANNOTATIONS = 0x71
MESSAGE_ANNOTATIONS = 0x72
PROPERTIES = 0x73
APPLICATION_PROPERTIES = 0x74
DATA = 0x75
AMQP_SEQUENCE = 0x76
AMQP_VALUE = 0x77
FOOTER = 0x78

# Message format of a batch: each data section holds one complete encoded message.
BATCH_MESSAGE_FORMAT = 0x80013700

_SYMBOLIC_SECTIONS = {
    "amqp:header:list": HEADER,
    "amqp:delivery-annotations:map": DELIVERY_ANNOTATIONS,
    "amqp:message-annotations:map": MESSAGE_ANNOTATIONS,
    "amqp:properties:list": PROPERTIES,
    "amqp:application-properties:map": APPLICATION_PROPERTIES,
    "amqp:data:binary": DATA,
    "amqp:amqp-sequence:list": AMQP_SEQUENCE,
    "amqp:amqp-value:*": AMQP_VALUE,
    "amqp:footer:map": FOOTER,
}

PROPERTY_FIELDS = (
    "message_id", "user_id", "to", "subject", "reply_to", "correlation_id", "content_type",
    "content_encoding", "absolute_expiry_time", "creation_time", "group_id", "group_sequence",
    "reply_to_group_id",
)


def section_prefix(code: int) -> bytes:
    # Always the small-ulong descriptor form: the Azure SDK's decoder assumes it.
    return bytes((0x00, 0x53, code))


def split_sections(payload: Any) -> List[Tuple[int, memoryview]]:
    """Split a message into ``(section code, encoded section value)`` pairs."""
    buf = memoryview(payload)
    sections: List[Tuple[int, memoryview]] = []
    pos = 0
    while pos < len(buf):
        if buf[pos] != 0x00:
            raise DecodeError(f"message section at byte {pos} is not a described type")
        descriptor, value_pos = decode(buf, pos + 1)
        if isinstance(descriptor, str):
            code = _SYMBOLIC_SECTIONS.get(descriptor)
        else:
            code = int(descriptor)
        if code is None or not HEADER <= code <= FOOTER:
            raise DecodeError(f"unknown message section descriptor {descriptor!r}")
        end = skip(buf, value_pos)
        sections.append((code, buf[value_pos:end]))
        pos = end
    return sections


class Message:
    """A parsed message: raw sections plus lazy access to the ones we read."""

    __slots__ = ("sections", "_annotations")

    def __init__(self, sections: List[Tuple[int, memoryview]]) -> None:
        self.sections = sections
        self._annotations: Optional[Dict[Any, Any]] = None

    @classmethod
    def parse(cls, payload: Any) -> "Message":
        return cls(split_sections(payload))

    def _decoded(self, code: int) -> Any:
        for section_code, raw in self.sections:
            if section_code == code:
                return decode(raw, 0)[0]
        return None

    @property
    def annotations(self) -> Dict[Any, Any]:
        if self._annotations is None:
            value = self._decoded(MESSAGE_ANNOTATIONS)
            self._annotations = value if isinstance(value, dict) else {}
        return self._annotations

    @property
    def application_properties(self) -> Dict[Any, Any]:
        value = self._decoded(APPLICATION_PROPERTIES)
        return value if isinstance(value, dict) else {}

    @property
    def properties(self) -> Dict[str, Any]:
        value = self._decoded(PROPERTIES)
        if isinstance(value, Described):
            value = value.value
        if not isinstance(value, list):
            return {}
        return dict(zip(PROPERTY_FIELDS, value))

    @property
    def body_value(self) -> Any:
        return self._decoded(AMQP_VALUE)

    def data_sections(self) -> List[memoryview]:
        """The data sections' binary contents (for batch messages: the inner messages)."""
        result = []
        for code, raw in self.sections:
            if code == DATA:
                value = decode(raw, 0)[0]
                result.append(memoryview(value))
        return result

    def encode(self, annotations: Optional[Dict[Any, Any]] = None,
               delivery_annotations: Optional[Dict[Any, Any]] = None) -> Tuple[bytes, int]:
        """Re-encode for delivery.

        Incoming delivery annotations are dropped (they are hop-by-hop); message
        annotations are replaced by ``annotations`` when given.  Returns the bytes
        and the length of the header section prefix, so delivery annotations can
        later be spliced in after it without re-encoding.
        """
        out = bytearray()
        header_len = 0
        wrote_annotations = False
        for code, raw in self.sections:
            if code == HEADER:
                out += section_prefix(HEADER)
                out += raw
                header_len = len(out)
                if delivery_annotations:
                    _append_map_section(out, DELIVERY_ANNOTATIONS, delivery_annotations)
                continue
            if code == DELIVERY_ANNOTATIONS:
                continue
            if not wrote_annotations and code >= MESSAGE_ANNOTATIONS:
                if header_len == 0 and delivery_annotations:
                    _append_map_section(out, DELIVERY_ANNOTATIONS, delivery_annotations)
                wrote_annotations = True
                if annotations is not None:
                    if annotations:
                        _append_map_section(out, MESSAGE_ANNOTATIONS, annotations)
                    if code == MESSAGE_ANNOTATIONS:
                        continue
            out += section_prefix(code)
            out += raw
        if not wrote_annotations:
            if header_len == 0 and delivery_annotations:
                _append_map_section(out, DELIVERY_ANNOTATIONS, delivery_annotations)
            if annotations:
                _append_map_section(out, MESSAGE_ANNOTATIONS, annotations)
        return bytes(out), header_len


def _append_map_section(out: bytearray, code: int, value: Dict[Any, Any]) -> None:
    out += section_prefix(code)
    encode_into(out, value)


def insert_delivery_annotations(stored: bytes, header_len: int, annotations: Dict[Any, Any]) -> bytes:
    """Splice a delivery-annotations section into an encoded message after its header."""
    section = bytearray()
    _append_map_section(section, DELIVERY_ANNOTATIONS, annotations)
    return stored[:header_len] + bytes(section) + stored[header_len:]


def build_message(properties: Optional[Dict[str, Any]] = None,
                  application_properties: Optional[Dict[Any, Any]] = None,
                  value: Any = None, has_value: bool = False) -> bytes:
    """Encode a simple message (used for management and CBS replies)."""
    out = bytearray()
    if properties:
        fields = [properties.get(name) for name in PROPERTY_FIELDS]
        out += section_prefix(PROPERTIES)
        encode_list_full(out, fields)
    if application_properties is not None:
        _append_map_section(out, APPLICATION_PROPERTIES, application_properties)
    if has_value or value is not None:
        out += section_prefix(AMQP_VALUE)
        encode_into(out, value)
    return bytes(out)


def iter_batch(message: Message, message_format: int) -> Iterable[Message]:
    """The individual messages of a transfer: the inner ones for a batch, else itself."""
    if message_format == BATCH_MESSAGE_FORMAT:
        for inner in message.data_sections():
            yield Message.parse(inner)
    else:
        yield message


__all__ = [
    "BATCH_MESSAGE_FORMAT", "Message", "build_message", "insert_delivery_annotations", "iter_batch",
    "split_sections",
]
