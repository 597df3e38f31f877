"""The kv-store in Python: exactly the Rust kv-store's methods, JSON and
events (apps/kv-store/src/lib.rs), on the same state layout."""

from __future__ import annotations

from mero_sdk import AppError, StorageError, emit, event, export, init, mutate, state, view
from mero_sdk.collections import LwwRegister, UnorderedMap


@event
class Inserted:
    key: str
    value: str


@event
class Updated:
    key: str
    value: str


@event
class Removed:
    key: str


@event
class Cleared:
    pass


@state(package="kv-store-py", version="0.1.0")
class KvStore:
    items: UnorderedMap[str, LwwRegister[str]]

    @init
    def init() -> KvStore:
        return KvStore(items=UnorderedMap())

    @mutate
    def set(self, key: str, value: str) -> None:
        """Sets `key` to `value`."""
        if self.items.insert_value(key, value) is not None:
            emit(Updated(key, value))
        else:
            emit(Inserted(key, value))

    @mutate
    def update_if_exists(self, key: str, value: str) -> bool:
        """Sets `key` to `value` only if it exists; returns whether it did."""
        if not self.items.contains(key):
            return False
        self.items.insert_value(key, value)
        emit(Updated(key, value))
        return True

    @mutate
    def get_or_insert(self, key: str, value: str) -> str:
        """The value of `key`, inserting `value` first if absent."""
        existing = self.items.get_value(key)
        if existing is not None:
            return existing
        self.items.insert_value(key, value)
        emit(Inserted(key, value))
        return value

    @view
    def entries(self) -> dict[str, str]:
        """Every key with its value."""
        return dict(self.items.values())

    @view
    def len(self) -> int:
        """Number of keys."""
        return self.items.len()

    @view
    def get(self, key: str) -> str | None:
        """The value of `key`, or null."""
        return self.items.get_value(key)

    @view
    def get_unchecked(self, key: str) -> str:
        """The value of `key`; an error if absent."""
        value = self.items.get_value(key)
        if value is None:
            raise AppError(f"key not found: {key}")
        return value

    @view
    def get_result(self, key: str) -> str:
        """The value of `key`; `{"kind":"NotFound","data":key}` if absent."""
        try:
            value = self.items.get_value(key)
        except StorageError as e:
            raise AppError({"kind": "Storage", "data": e.describe()}) from None
        if value is None:
            raise AppError({"kind": "NotFound", "data": key})
        return value

    @mutate
    def remove(self, key: str) -> str | None:
        """Removes `key`; returns its old value, or null."""
        old = self.items.get_value(key)
        if old is not None:
            self.items.remove(key)
            emit(Removed(key))
        return old

    @mutate
    def clear(self) -> None:
        """Removes every key."""
        self.items.clear()
        emit(Cleared())


App = export(KvStore)
