"""Blobs: content-addressed files the node keeps beside the state, which an
app references by id. An id is the SHA-256 of the blob's bytes, written as
the node's HTTP API writes it (base58): keep it in state as a string and
pass on the `blob_id` a client got from
`PUT /admin-api/blobs?context_id=<CONTEXT>`. A call reads the blobs of its
context (uploaded with its id, made by `create` in it, or fetched for it);
a node that lacks one fetches it from the members that hold it. A blob
still arriving when the call nears its deadline fails the read with a
StorageError saying so, and a later call reads it."""

from __future__ import annotations

from ._host import backend, host
from .collections import SdkError

MAX_READ = 1 << 20
"""Most bytes one `read` returns."""

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def to_base58(data: bytes) -> str:
    """Bytes as base58 (Bitcoin's alphabet, as the node writes ids)."""
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _ALPHABET[r] + out
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out


def id_bytes(blob_id: str | bytes) -> bytes:
    """A blob id (base58 string, or its 32 bytes) as 32 bytes; SdkError for
    anything else."""
    if isinstance(blob_id, (bytes, bytearray)):
        raw = bytes(blob_id)
    elif isinstance(blob_id, str):
        n = 0
        for c in blob_id:
            d = _ALPHABET.find(c)
            if d < 0:
                raise SdkError(f"a blob id is base58: {c!r} is not a base58 digit")
            n = n * 58 + d
        body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
        zeros = len(blob_id) - len(blob_id.lstrip("1"))
        raw = b"\0" * zeros + body
    else:
        raise SdkError("a blob id is a base58 string")
    if len(raw) != 32:
        raise SdkError(f"a blob id is 32 bytes, not {len(raw)}")
    return raw


def size(blob_id: str | bytes) -> int | None:
    """The size of the blob in bytes, or None if neither this node nor a
    connected member holds it for the context."""
    return host(backend().blobs.size, id_bytes(blob_id))


def read(blob_id: str | bytes, offset: int = 0, length: int = MAX_READ) -> bytes | None:
    """Up to `length` bytes from `offset` (fewer at its end, at most
    MAX_READ), or None as for `size`."""
    return host(backend().blobs.read, id_bytes(blob_id), offset, length)


def read_all(blob_id: str | bytes) -> bytes | None:
    """The whole blob, read piece by piece, or None as for `size`: for
    blobs of a few MiB (it is held in the call's memory)."""
    total = size(blob_id)
    if total is None:
        return None
    out = bytearray()
    while len(out) < total:
        part = read(blob_id, len(out), MAX_READ)
        if not part:
            raise SdkError(f"blob {blob_id!r} ended at {len(out)} of its {total} bytes")
        out += part
    return bytes(out)


def create(data: bytes | str) -> str:
    """Stores `data` (bytes, or a string as UTF-8) as a blob on this node
    and returns its id (base58); only in a mutating method. It is stored at
    once: a call that then fails leaves it on the node, unreferenced."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return to_base58(bytes(host(backend().blobs.create, raw)))


__all__ = ["MAX_READ", "create", "id_bytes", "read", "read_all", "size", "to_base58"]
