"""Partition-key hashing.

Uses Bob Jenkins' lookup3 ``hashlittle2`` over the key's UTF-8 bytes, folded to
a signed 16-bit value, exactly like the Azure SDKs' client-side
``PartitionResolver`` (which mirrors the service).  What matters here is that
the mapping is stable across restarts and processes, unlike Python's ``hash()``.
"""
from __future__ import annotations

from typing import Tuple

_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def _mix(a: int, b: int, c: int) -> Tuple[int, int, int]:
    a = (a - c) & _MASK; a ^= _rot(c, 4); c = (c + b) & _MASK
    b = (b - a) & _MASK; b ^= _rot(a, 6); a = (a + c) & _MASK
    c = (c - b) & _MASK; c ^= _rot(b, 8); b = (b + a) & _MASK
    a = (a - c) & _MASK; a ^= _rot(c, 16); c = (c + b) & _MASK
    b = (b - a) & _MASK; b ^= _rot(a, 19); a = (a + c) & _MASK
    c = (c - b) & _MASK; c ^= _rot(b, 4); b = (b + a) & _MASK
    return a, b, c


def _final(a: int, b: int, c: int) -> Tuple[int, int, int]:
    c ^= b; c = (c - _rot(b, 14)) & _MASK
    a ^= c; a = (a - _rot(c, 11)) & _MASK
    b ^= a; b = (b - _rot(a, 25)) & _MASK
    c ^= b; c = (c - _rot(b, 16)) & _MASK
    a ^= c; a = (a - _rot(c, 4)) & _MASK
    b ^= a; b = (b - _rot(a, 14)) & _MASK
    c ^= b; c = (c - _rot(b, 24)) & _MASK
    return a, b, c


def hashlittle2(data: bytes, pc: int = 0, pb: int = 0) -> Tuple[int, int]:
    """lookup3 hashlittle2; returns (c, b) as the C function leaves them in (*pc, *pb)."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + pc) & _MASK
    c = (c + pb) & _MASK
    k = 0
    while length > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & _MASK
        a, b, c = _mix(a, b, c)
        length -= 12
        k += 12
    if length == 0:
        return c, b
    tail = data[k:k + length] + b"\x00" * (12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    a, b, c = _final(a, b, c)
    return c, b


def partition_for_key(key: str, partition_count: int) -> int:
    c, b = hashlittle2(key.encode("utf-8"))
    folded = (c ^ b) & 0xFFFF
    if folded >= 0x8000:
        folded -= 0x10000  # C# casts to short
    return abs(folded) % partition_count
