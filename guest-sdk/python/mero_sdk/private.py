"""Node-local storage: never replicated, never part of the state hash. Use
it for secrets and per-node data. Writes commit with the call."""

from __future__ import annotations

import json
from typing import Any

from ._host import backend, host


def read(key: bytes) -> bytes | None:
    """The raw value stored under `key`."""
    return host(backend().private_storage.read, key)


def write(key: bytes, value: bytes) -> None:
    """Stores `value` under `key`."""
    host(backend().private_storage.write, key, value)


def remove(key: bytes) -> bool:
    """Removes `key`; whether it was there."""
    return host(backend().private_storage.remove, key)


def get(key: str) -> Any:
    """Reads a JSON value (None if absent)."""
    raw = read(key.encode())
    return None if raw is None else json.loads(raw)


def set(key: str, value: Any) -> None:
    """Stores a value as JSON."""
    write(key.encode(), json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
