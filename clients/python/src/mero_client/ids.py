"""Id encodings, as the node uses them: application ids, context ids, public
keys and hashes in base58; namespace, group and account ids in 64-char hex.
"""

from __future__ import annotations

import re

from .errors import InvalidArgumentError

__all__ = [
    "b58encode",
    "b58decode",
    "check_b58_id",
    "check_hex_id",
    "hex_to_b58",
]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet) of `data`."""
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_ALPHABET[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """The bytes of a base58 string; `ValueError` if it is not one."""
    n = 0
    for c in text:
        if c not in _INDEX:
            raise ValueError(f"{c!r} is not a base58 character")
        n = n * 58 + _INDEX[c]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + body


def check_b58_id(value: str, what: str) -> str:
    """`value` if it is a base58 32-byte id, else `InvalidArgumentError`
    (a `ValueError`), as upstream rejects it before sending."""
    if not isinstance(value, str):
        raise InvalidArgumentError(
            "InvalidArgument", f"Invalid {what}: expected a string, got {type(value).__name__}"
        )
    try:
        raw = b58decode(value)
    except ValueError as e:
        raise InvalidArgumentError("InvalidArgument", f"Invalid {what} '{value}': {e}") from None
    if len(raw) != 32:
        raise InvalidArgumentError(
            "InvalidArgument", f"Invalid {what} '{value}': {len(raw)} bytes, expected 32"
        )
    return value


def check_hex_id(value: str, what: str) -> str:
    """`value` if it is 64 hex characters, else `InvalidArgumentError`."""
    if not isinstance(value, str) or not _HEX64.match(value):
        raise InvalidArgumentError(
            "InvalidArgument",
            f"Invalid {what} '{value}': expected 64 hex characters (32 bytes)",
        )
    return value


def hex_to_b58(value: str) -> str:
    """A 32-byte hex digest as base58 (upstream takes `hash` in hex; the node
    reads base58)."""
    return b58encode(bytes.fromhex(check_hex_id(value, "hash")))
