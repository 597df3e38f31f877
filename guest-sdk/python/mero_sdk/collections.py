"""Typed CRDT collections backed by the node, as in the Rust SDK.

A collection is *detached* (made with its constructor, holding its contents
in memory until it is stored: returned from `@init` or put into a map) or
*attached* (a handle to state the node holds; every read and write is a host
call, nothing is cached across calls).

How concurrent writes merge (the host owns the rules):
- `LwwRegister`: the latest write wins (hybrid logical clock, then author).
- `UnorderedMap` keys and `UnorderedSet` elements: add-wins.
- `Vector`: push order; concurrent pushes all survive; `set` is LWW.
- `Counter`: every member's increments and decrements count.

Map values are collections, so maps nest:
`UnorderedMap[str, UnorderedMap[str, LwwRegister[int]]]`. Wrap plain values
in `LwwRegister`. Types come from the state class's annotations.

Encodings match the Rust SDK, so the same state reads the same in every
language: values are compact JSON, keys are `str` as UTF-8, `bytes` as is,
`bool` as one byte and `int` as a big-endian i64 with the sign bit flipped
(byte order is numeric order).
"""

from __future__ import annotations

import json
from typing import Any, Generic, Iterator, TypeVar, Union, get_args, get_origin

from ._host import backend, host

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

PAGE = 512


class SdkError(Exception):
    """A misuse of the SDK or undecodable stored data; fails the call."""


# ------------------------------------------------------------------ encoding


def encode(value: Any) -> bytes:
    """A value as stored: compact JSON, UTF-8, like serde_json."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def decode(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise SdkError(f"stored value does not decode: {e}") from None


def key_bytes(key: Any, ktype: Any = None) -> bytes:
    """A key's bytes (see the module doc)."""
    if isinstance(key, bool):
        return b"\x01" if key else b"\x00"
    if isinstance(key, int):
        if not -(1 << 63) <= key < (1 << 63):
            raise SdkError("an int key must fit in 64 bits")
        return ((key + (1 << 64)) % (1 << 64) ^ (1 << 63)).to_bytes(8, "big")
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    raise SdkError(f"{type(key).__name__} cannot be a key: use str, bytes, int or bool")


def key_from_bytes(data: bytes, ktype: Any) -> Any:
    if ktype is bytes:
        return data
    if ktype is bool:
        if data not in (b"\x00", b"\x01"):
            raise SdkError("stored key does not decode as bool")
        return data == b"\x01"
    if ktype is int:
        if len(data) != 8:
            raise SdkError("stored key does not decode as int")
        u = int.from_bytes(data, "big") ^ (1 << 63)
        return u - (1 << 64) if u >= (1 << 63) else u
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise SdkError("stored key does not decode as str") from None


_RUST = {str: "String", int: "i64", float: "f64", bool: "bool", bytes: "Vec<u8>", type(None): "()"}


def kind_of(hint: Any) -> str:
    """The type as the Rust SDK writes it in a schema, so equal layouts in
    different languages have equal schemas."""
    if hint in _RUST:
        return _RUST[hint]
    origin, args = get_origin(hint), get_args(hint)
    if origin in (list, tuple) and args:
        return f"Vec<{kind_of(args[0])}>"
    if origin is dict and len(args) == 2:
        return f"BTreeMap<{kind_of(args[0])},{kind_of(args[1])}>"
    if origin is Union and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return f"Option<{kind_of(inner)}>"
    if isinstance(origin, type) and issubclass(origin, Collection):
        return origin.__name__ + "<" + ",".join(kind_of(a) for a in args) + ">"
    if isinstance(hint, type) and issubclass(hint, Collection):
        return hint.__name__
    return getattr(hint, "__name__", str(hint))


# ---------------------------------------------------------------- locations


class Loc:
    """Where a collection lives: at the root under a name (`frozen`: as the
    state was before the running migration), or as the value at a key of a
    map."""

    def __init__(self, name: str | None = None, parent: Any = None, key: bytes = b"",
                 frozen: bool = False) -> None:
        self.name, self.parent, self.key, self.frozen = name, parent, key, frozen

    def open(self, resource: str) -> Any:
        """The host handle of kind `resource` (`register`, `map`, ...) here."""
        st = backend().storage
        if self.parent is not None:
            return getattr(self.parent, f"{resource}_at")(self.key)
        cls = {"register": st.Register, "map": st.Map, "set": st.Set,
               "vector": st.Vector, "counter": st.Counter}[resource]
        return cls.open_frozen(self.name) if self.frozen else cls.open(self.name)


def _split(hint: Any) -> tuple[type, tuple[Any, ...]]:
    origin = get_origin(hint) or hint
    if not (isinstance(origin, type) and issubclass(origin, Collection)):
        raise SdkError(f"{kind_of(hint)} is not a collection: state fields and map values "
                       "must be SDK collections (wrap plain values in LwwRegister)")
    return origin, get_args(hint)


def attach(hint: Any, loc: Loc) -> Any:
    cls, args = _split(hint)
    return cls._attach(args, loc)


class Collection:
    """Base of the collections."""

    _args: tuple[Any, ...] = ()

    @classmethod
    def _attach(cls, args: tuple[Any, ...], loc: Loc) -> Any:
        raise NotImplementedError

    def _store(self, args: tuple[Any, ...], loc: Loc) -> None:
        raise NotImplementedError

    @classmethod
    def _get_in(cls, args: tuple[Any, ...], m: Any, key: bytes) -> Any:
        if not host(m.contains, key):
            return None
        return cls._attach(args, Loc(parent=m, key=key))

    def _put_in(self, args: tuple[Any, ...], m: Any, key: bytes) -> None:
        # A replaced nested collection starts empty.
        host(m.remove, key)
        host(m.insert_key, key)
        self._store(args, Loc(parent=m, key=key))


def _detached() -> SdkError:
    return SdkError("this collection is not stored yet: only insertions are possible "
                    "before it is part of the state")


# ---------------------------------------------------------------- register

_UNSET = object()


class LwwRegister(Collection, Generic[T]):
    """A last-writer-wins register holding one JSON value."""

    def __init__(self, value: Any = _UNSET) -> None:
        self._value: bytes | None = None if value is _UNSET else encode(value)
        self._handle: Any = None
        self._in: tuple[Any, bytes] | None = None

    @classmethod
    def _attach(cls, args: tuple[Any, ...], loc: Loc) -> LwwRegister[Any]:
        r: LwwRegister[Any] = cls()
        r._handle = loc.open("register")
        return r

    def _raw(self) -> bytes | None:
        if self._handle is not None:
            return host(self._handle.get)
        return self._value

    def get(self) -> Any:
        """The value, or None if never set or cleared."""
        raw = self._raw()
        return None if raw is None else decode(raw)

    def set(self, value: Any) -> None:
        """Replaces the value."""
        data = encode(value)
        if self._in is not None:
            host(self._in[0].put_register, self._in[1], data)
            self._value = data
        elif self._handle is not None:
            host(self._handle.set, data)
        else:
            self._value = data

    def clear(self) -> None:
        """Removes the value."""
        if self._in is not None:
            host(self._in[0].register_at(self._in[1]).clear)
            self._value = None
        elif self._handle is not None:
            host(self._handle.clear)
        else:
            self._value = None

    def _store(self, args: tuple[Any, ...], loc: Loc) -> None:
        raw = self._raw()
        if raw is not None:
            host(loc.open("register").set, raw)

    @classmethod
    def _get_in(cls, args: tuple[Any, ...], m: Any, key: bytes) -> LwwRegister[Any] | None:
        # One host call for the common map-of-registers case.
        raw = host(m.get_register, key)
        if raw is None:
            return None
        r: LwwRegister[Any] = cls()
        r._value, r._in = raw, (m, key)
        return r

    def _put_in(self, args: tuple[Any, ...], m: Any, key: bytes) -> None:
        raw = self._raw()
        if raw is None:
            host(m.insert_key, key)
        else:
            host(m.put_register, key, raw)


# --------------------------------------------------------------------- map


class UnorderedMap(Collection, Generic[K, V]):
    """A map from keys to nested collections; iteration is in key byte order."""

    def __init__(self, items: dict[Any, Any] | None = None) -> None:
        self._items: dict[bytes, tuple[Any, Any]] = {}
        self._handle: Any = None
        for k, v in (items or {}).items():
            self.insert(k, v)

    @classmethod
    def _attach(cls, args: tuple[Any, ...], loc: Loc) -> UnorderedMap[Any, Any]:
        m: UnorderedMap[Any, Any] = cls()
        m._args, m._handle = args, loc.open("map")
        return m

    def _types(self) -> tuple[Any, Any]:
        if len(self._args) != 2:
            raise SdkError("declare the map's types: UnorderedMap[K, V]")
        return self._args[0], self._args[1]

    def _attached(self) -> Any:
        if self._handle is None:
            raise _detached()
        return self._handle

    def insert(self, key: Any, value: Collection) -> None:
        """Makes `value` (a collection) the value at `key`, replacing what was there."""
        k = key_bytes(key)
        if self._handle is None:
            self._items[k] = (key, value)
            return
        cls, args = _split(self._types()[1])
        value._put_in(args, self._handle, k)

    def get(self, key: Any) -> Any:
        """The collection at `key`, or None."""
        cls, args = _split(self._types()[1])
        return cls._get_in(args, self._attached(), key_bytes(key))

    def entry(self, key: Any) -> Any:
        """The collection at `key`, inserting `key` first if absent."""
        m, k = self._attached(), key_bytes(key)
        if not host(m.contains, k):
            host(m.insert_key, k)
        return attach(self._types()[1], Loc(parent=m, key=k))

    def contains(self, key: Any) -> bool:
        k = key_bytes(key)
        if self._handle is None:
            return k in self._items
        return host(self._handle.contains, k)

    def __contains__(self, key: Any) -> bool:
        return self.contains(key)

    def remove(self, key: Any) -> bool:
        """Removes `key` and clears its value; whether it was present."""
        k = key_bytes(key)
        if self._handle is None:
            return self._items.pop(k, None) is not None
        return host(self._handle.remove, k)

    def len(self) -> int:
        if self._handle is None:
            return len(self._items)
        return host(self._handle.len)

    def __len__(self) -> int:
        return self.len()

    def _key_pages(self) -> Iterator[bytes]:
        m, after = self._attached(), None
        while True:
            page = host(m.keys, after, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1]

    def keys(self) -> list[Any]:
        """Every key, in byte order."""
        kt = self._types()[0]
        return [key_from_bytes(k, kt) for k in self._key_pages()]

    def entries(self) -> list[tuple[Any, Any]]:
        """Every key with its collection, in key byte order."""
        kt, vt = self._types()
        m = self._attached()
        return [(key_from_bytes(k, kt), attach(vt, Loc(parent=m, key=k)))
                for k in self._key_pages()]

    def clear(self) -> None:
        if self._handle is None:
            self._items.clear()
        else:
            host(self._handle.clear)

    # Maps of registers: one host call each.

    def insert_value(self, key: Any, value: Any) -> Any:
        """Sets the register at `key` to `value`; returns the old value or None."""
        k = key_bytes(key)
        if self._handle is None:
            old = self._items.get(k)
            self._items[k] = (key, LwwRegister(value))
            return old[1].get() if old else None
        old_raw = host(self._handle.put_register, k, encode(value))
        return None if old_raw is None else decode(old_raw)

    def get_value(self, key: Any) -> Any:
        """The value of the register at `key`, or None."""
        raw = host(self._attached().get_register, key_bytes(key))
        return None if raw is None else decode(raw)

    def values(self) -> list[tuple[Any, Any]]:
        """Every key with its register's value, in key byte order."""
        kt, m = self._types()[0], self._attached()
        out: list[tuple[Any, Any]] = []
        after = None
        while True:
            page = host(m.register_entries, after, PAGE)
            out.extend((key_from_bytes(k, kt), decode(v)) for k, v in page)
            if len(page) < PAGE:
                return out
            after = page[-1][0]

    def _store(self, args: tuple[Any, ...], loc: Loc) -> None:
        m = loc.open("map")
        cls, vargs = _split(args[1]) if len(args) == 2 else (None, ())
        for k, (_, v) in self._items.items():
            if cls is None:
                raise SdkError("declare the map's types: UnorderedMap[K, V]")
            v._put_in(vargs, m, k)


# --------------------------------------------------------------------- set


class UnorderedSet(Collection, Generic[T]):
    """An add-wins set of keys (str, bytes, int or bool)."""

    def __init__(self, items: Any = ()) -> None:
        self._items: dict[bytes, Any] = {key_bytes(i): i for i in items}
        self._handle: Any = None

    @classmethod
    def _attach(cls, args: tuple[Any, ...], loc: Loc) -> UnorderedSet[Any]:
        s: UnorderedSet[Any] = cls()
        s._args, s._handle = args, loc.open("set")
        return s

    def insert(self, value: Any) -> bool:
        """Adds `value`; whether it was absent."""
        k = key_bytes(value)
        if self._handle is None:
            new = k not in self._items
            self._items[k] = value
            return new
        return host(self._handle.insert, k)

    def remove(self, value: Any) -> bool:
        k = key_bytes(value)
        if self._handle is None:
            return self._items.pop(k, None) is not None
        return host(self._handle.remove, k)

    def contains(self, value: Any) -> bool:
        k = key_bytes(value)
        if self._handle is None:
            return k in self._items
        return host(self._handle.contains, k)

    def __contains__(self, value: Any) -> bool:
        return self.contains(value)

    def len(self) -> int:
        return len(self._items) if self._handle is None else host(self._handle.len)

    def __len__(self) -> int:
        return self.len()

    def elements(self) -> list[Any]:
        """Every element, in byte order."""
        if self._handle is None:
            return [self._items[k] for k in sorted(self._items)]
        t = self._args[0] if self._args else str
        out: list[Any] = []
        after = None
        while True:
            page = host(self._handle.elements, after, PAGE)
            out.extend(key_from_bytes(e, t) for e in page)
            if len(page) < PAGE:
                return out
            after = page[-1]

    def clear(self) -> None:
        if self._handle is None:
            self._items.clear()
        else:
            host(self._handle.clear)

    def _store(self, args: tuple[Any, ...], loc: Loc) -> None:
        s = loc.open("set")
        for k in self._items:
            host(s.insert, k)


# ------------------------------------------------------------------ vector


class Vector(Collection, Generic[T]):
    """A replicated list of JSON values, ordered by when they were pushed."""

    def __init__(self, items: Any = ()) -> None:
        self._items: list[bytes] = [encode(i) for i in items]
        self._handle: Any = None

    @classmethod
    def _attach(cls, args: tuple[Any, ...], loc: Loc) -> Vector[Any]:
        v: Vector[Any] = cls()
        v._handle = loc.open("vector")
        return v

    def _attached(self) -> Any:
        if self._handle is None:
            raise _detached()
        return self._handle

    def push(self, value: Any) -> None:
        if self._handle is None:
            self._items.append(encode(value))
        else:
            host(self._handle.push, encode(value))

    def get(self, index: int) -> Any:
        """The element at `index`, or None past the end."""
        raw = host(self._attached().get, index)
        return None if raw is None else decode(raw)

    def set(self, index: int, value: Any) -> Any:
        """Replaces the element at `index`; returns the old one."""
        return decode(host(self._attached().set, index, encode(value)))

    def remove(self, index: int) -> Any:
        return decode(host(self._attached().remove, index))

    def pop(self) -> Any:
        raw = host(self._attached().pop)
        return None if raw is None else decode(raw)

    def len(self) -> int:
        return len(self._items) if self._handle is None else host(self._handle.len)

    def __len__(self) -> int:
        return self.len()

    def items(self) -> list[Any]:
        """Every element, in order."""
        if self._handle is None:
            return [decode(b) for b in self._items]
        out: list[Any] = []
        while True:
            page = host(self._handle.range, len(out), PAGE)
            out.extend(decode(b) for b in page)
            if len(page) < PAGE:
                return out

    def clear(self) -> None:
        if self._handle is None:
            self._items.clear()
        else:
            host(self._handle.clear)

    def _store(self, args: tuple[Any, ...], loc: Loc) -> None:
        v = loc.open("vector")
        for b in self._items:
            host(v.push, b)


# ----------------------------------------------------------------- counter


class Counter(Collection):
    """A counter every member can increment and decrement."""

    def __init__(self, value: int = 0) -> None:
        self._value = value
        self._handle: Any = None

    @classmethod
    def _attach(cls, args: tuple[Any, ...], loc: Loc) -> Counter:
        c = cls()
        c._handle = loc.open("counter")
        return c

    def value(self) -> int:
        return self._value if self._handle is None else host(self._handle.value)

    def increment(self, by: int = 1) -> int:
        """Adds `by`; returns the new value."""
        if self._handle is None:
            self._value += by
            return self._value
        return host(self._handle.increment, by)

    def decrement(self, by: int = 1) -> int:
        if self._handle is None:
            self._value -= by
            return self._value
        return host(self._handle.decrement, by)

    def _store(self, args: tuple[Any, ...], loc: Loc) -> None:
        c = loc.open("counter")
        if self._value > 0:
            host(c.increment, self._value)
        elif self._value < 0:
            host(c.decrement, -self._value)
