"""An in-memory host for unit tests of apps and of the SDK, outside any
component. It keeps the WIT's semantics that app code can observe: views
cannot write, a failing call changes nothing and emits nothing, maps nest,
a removed key clears what was under it.

    host = FakeHost().install()
    ctx = host.context_of(KvStore)          # runs init
    ctx.call("set", key="a", value="b")
    assert ctx.call("get", key="a") == "b"
    assert host.events[-1] == ("Inserted", {"key": "a", "value": "b"})
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from . import _host
from .app import CallError, Dispatcher


class Err(Exception):
    """What the fake raises for a storage-error, like componentize-py's Err."""

    def __init__(self, case: str, detail: str = "") -> None:
        super().__init__(case)
        self.case, self.detail = case, detail


class _Store:
    def __init__(self) -> None:
        self.registers: dict[tuple[Any, ...], bytes] = {}
        self.keys: dict[tuple[Any, ...], set[bytes]] = {}
        self.sets: dict[tuple[Any, ...], set[bytes]] = {}
        self.vectors: dict[tuple[Any, ...], list[bytes]] = {}
        self.counters: dict[tuple[Any, ...], int] = {}
        self.private: dict[bytes, bytes] = {}


class FakeHost:
    """The fake host; `install()` makes the SDK use it."""

    def __init__(self) -> None:
        self.store = _Store()
        self.read_only = False
        self.violation = False
        self.events: list[tuple[str, Any]] = []
        self.logs: list[str] = []
        self.now = 1_700_000_000_000
        # Blobs stay when a call fails, as on a node.
        self.blobs: dict[bytes, bytes] = {}
        # The executing member's proven chain accounts: dicts of `chain`,
        # `account`, `verified_on_chain`.
        self.chain_identities: list[dict] = []
        # Attestations about them: dicts with the WIT record's fields.
        self.chain_attestations: list[dict] = []

    def install(self) -> FakeHost:
        _host.set_backend(_host.Backend(
            _Storage(self), _Private(self), _Events(self), _Context(self), Err,
            lambda e: _host.StorageError(e.case, e.detail, None), _Blobs(self),
        ))
        return self

    def put_blob(self, data: bytes) -> bytes:
        """Stores a blob as the node would; returns its id (32 bytes)."""
        blob_id = hashlib.sha256(data).digest()
        self.blobs[blob_id] = bytes(data)
        return blob_id

    def write(self) -> None:
        if self.read_only:
            # The node fails the whole call afterwards, even if the app
            # swallowed the error (see the WIT `storage-error`).
            self.violation = True
            raise Err("read-only")

    def clear_under(self, path: tuple[Any, ...]) -> None:
        """Clears every collection at or below `path`."""
        s = self.store
        for table in (s.registers, s.keys, s.sets, s.vectors, s.counters):
            for p in [p for p in table if p[: len(path)] == path]:
                del table[p]  # type: ignore[attr-defined]

    def context_of(self, cls: type, args: dict[str, Any] | None = None) -> FakeContext:
        """A context of the app `cls`, initialised with `args`."""
        ctx = FakeContext(self, Dispatcher(cls))
        ctx.transact(lambda: ctx.d.init(json.dumps(args or {})), read_only=False)
        return ctx


class FakeContext:
    """Calls an app like the node does: views read-only, each call atomic."""

    def __init__(self, host: FakeHost, d: Dispatcher) -> None:
        self.host, self.d = host, d

    def transact(self, f: Any, read_only: bool) -> Any:
        saved, events = copy.deepcopy(self.host.store), len(self.host.events)
        self.host.read_only, self.host.violation = read_only, False
        try:
            out = f()
            if self.host.violation:
                raise CallError("storage", _host.StorageError("read-only", ""))
            return out
        except BaseException:
            self.host.store = saved
            del self.host.events[events:]
            raise
        finally:
            self.host.read_only = False

    def call(self, method: str, **args: Any) -> Any:
        """Calls `method`; returns its decoded JSON result or raises CallError."""
        mutating = dict(self.d.describe()["methods"]).get(method, False)
        out = self.transact(lambda: self.d.call(method, json.dumps(args)), read_only=not mutating)
        return json.loads(out)

    def call_raw(self, method: str, args_json: str) -> str:
        mutating = dict(self.d.describe()["methods"]).get(method, False)
        return self.transact(lambda: self.d.call(method, args_json), read_only=not mutating)


# The four interfaces, over the FakeHost's store.


class _Handle:
    def __init__(self, host: FakeHost, path: tuple[Any, ...], frozen: bool = False) -> None:
        self.h, self.path, self.frozen = host, path, frozen

    def w(self) -> None:
        if self.frozen:
            raise Err("read-only")
        self.h.write()



class _Storage:
    def __init__(self, host: FakeHost) -> None:
        def opener(cls: type) -> type:
            class Bound(cls):  # type: ignore[misc, valid-type]
                @classmethod
                def open(k, name: str) -> Any:
                    return cls(host, (name,))

                @classmethod
                def open_frozen(k, name: str) -> Any:
                    return cls(host, (name,), True)
            return Bound

        self.Register = opener(_Register)
        self.Map = opener(_Map)
        self.Set = opener(_Set)
        self.Vector = opener(_Vector)
        self.Counter = opener(_Counter)


class _Register(_Handle):
    def get(self) -> bytes | None:
        return self.h.store.registers.get(self.path)

    def set(self, value: bytes) -> None:
        self.w()
        self.h.store.registers[self.path] = bytes(value)

    def clear(self) -> None:
        self.w()
        self.h.store.registers.pop(self.path, None)


class _Map(_Handle):
    def _keys(self) -> set[bytes]:
        return self.h.store.keys.setdefault(self.path, set())

    def contains(self, key: bytes) -> bool:
        return key in self._keys()

    def insert_key(self, key: bytes) -> bool:
        self.w()
        new = key not in self._keys()
        self._keys().add(key)
        return new

    def remove(self, key: bytes) -> bool:
        self.w()
        present = key in self._keys()
        self._keys().discard(key)
        self.h.clear_under(self.path + (key,))
        return present

    def len(self) -> int:
        return len(self._keys())

    def keys(self, after: bytes | None, limit: int) -> list[bytes]:
        ks = sorted(k for k in self._keys() if after is None or k > after)
        return ks[:limit]

    def clear(self) -> None:
        for k in list(self._keys()):
            self.remove(k)

    def get_register(self, key: bytes) -> bytes | None:
        if key not in self._keys():
            return None
        return self.h.store.registers.get(self.path + (key,))

    def put_register(self, key: bytes, value: bytes) -> bytes | None:
        self.w()
        old = self.get_register(key)
        self._keys().add(key)
        self.h.store.registers[self.path + (key,)] = bytes(value)
        return old

    def register_entries(self, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        out = []
        for k in self.keys(after, 1 << 31):
            v = self.h.store.registers.get(self.path + (k,))
            if v is not None:
                out.append((k, v))
            if len(out) == limit:
                break
        return out

    def _at(self, cls: type, key: bytes) -> Any:
        return cls(self.h, self.path + (key,), self.frozen)

    def register_at(self, key: bytes) -> Any:
        return self._at(_Register, key)

    def map_at(self, key: bytes) -> Any:
        return self._at(_Map, key)

    def set_at(self, key: bytes) -> Any:
        return self._at(_Set, key)

    def vector_at(self, key: bytes) -> Any:
        return self._at(_Vector, key)

    def counter_at(self, key: bytes) -> Any:
        return self._at(_Counter, key)


class _Set(_Handle):
    def _s(self) -> set[bytes]:
        return self.h.store.sets.setdefault(self.path, set())

    def contains(self, e: bytes) -> bool:
        return e in self._s()

    def insert(self, e: bytes) -> bool:
        self.w()
        new = e not in self._s()
        self._s().add(bytes(e))
        return new

    def remove(self, e: bytes) -> bool:
        self.w()
        present = e in self._s()
        self._s().discard(e)
        return present

    def len(self) -> int:
        return len(self._s())

    def elements(self, after: bytes | None, limit: int) -> list[bytes]:
        return sorted(e for e in self._s() if after is None or e > after)[:limit]

    def clear(self) -> None:
        self.w()
        self._s().clear()


class _Vector(_Handle):
    def _v(self) -> list[bytes]:
        return self.h.store.vectors.setdefault(self.path, [])

    def len(self) -> int:
        return len(self._v())

    def get(self, i: int) -> bytes | None:
        return self._v()[i] if i < len(self._v()) else None

    def push(self, value: bytes) -> None:
        self.w()
        self._v().append(bytes(value))

    def _check(self, i: int) -> None:
        if i >= len(self._v()):
            raise Err("out-of-range", f"index {i}, length {len(self._v())}")

    def set(self, i: int, value: bytes) -> bytes:
        self.w()
        self._check(i)
        old, self._v()[i] = self._v()[i], bytes(value)
        return old

    def remove(self, i: int) -> bytes:
        self.w()
        self._check(i)
        return self._v().pop(i)

    def pop(self) -> bytes | None:
        self.w()
        return self._v().pop() if self._v() else None

    def range(self, start: int, limit: int) -> list[bytes]:
        return self._v()[start:start + limit]

    def clear(self) -> None:
        self.w()
        self._v().clear()


class _Counter(_Handle):
    def value(self) -> int:
        return self.h.store.counters.get(self.path, 0)

    def increment(self, by: int) -> int:
        self.w()
        self.h.store.counters[self.path] = self.value() + by
        return self.value()

    def decrement(self, by: int) -> int:
        self.w()
        self.h.store.counters[self.path] = self.value() - by
        return self.value()


class _Private:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def read(self, key: bytes) -> bytes | None:
        return self.h.store.private.get(key)

    def write(self, key: bytes, value: bytes) -> None:
        self.h.write()
        self.h.store.private[bytes(key)] = bytes(value)

    def remove(self, key: bytes) -> bool:
        self.h.write()
        return self.h.store.private.pop(key, None) is not None


class _Events:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def emit(self, kind: str, data: bytes) -> None:
        self.h.write()
        self.h.events.append((kind, json.loads(data)))


class _Blobs:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def size(self, blob_id: bytes) -> int | None:
        b = self.h.blobs.get(bytes(blob_id))
        return None if b is None else len(b)

    def read(self, blob_id: bytes, offset: int, length: int) -> bytes | None:
        b = self.h.blobs.get(bytes(blob_id))
        if b is None:
            return None
        if offset > len(b):
            raise Err("out-of-range", f"offset {offset} is past the end")
        return b[offset:offset + min(length, 1 << 20)]

    def create(self, data: bytes) -> bytes:
        self.h.write()
        return self.h.put_blob(bytes(data))


class _Context:
    def __init__(self, host: FakeHost) -> None:
        self.h = host

    def context_id(self) -> bytes:
        return bytes(32)

    def executor_id(self) -> bytes:
        return bytes(range(32))

    def app_version(self) -> str:
        return "0.1.0"

    def chain_identities(self) -> list:
        from types import SimpleNamespace

        return [SimpleNamespace(**i) for i in self.h.chain_identities]

    def chain_attestations(self) -> list:
        from types import SimpleNamespace

        return [SimpleNamespace(**a) for a in self.h.chain_attestations]

    def now_millis(self) -> int:
        return self.h.now

    def log(self, level: Any, message: str) -> None:
        self.h.logs.append(message)


__all__ = ["CallError", "Err", "FakeContext", "FakeHost"]
