"""The host the SDK talks to: the WIT bindings inside a component, or a fake.

Inside a component built by componentize-py the generated `wit_world`
package exists and is used. Outside one (unit tests, `python -m unittest`)
it does not; `mero_sdk.testing.FakeHost.install()` puts an in-memory host
in its place. Everything else in the SDK reaches the host only through
`backend()`.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")


class StorageError(Exception):
    """A storage, private-storage or events operation failed.

    `case` is the WIT `storage-error` case (`read-only`, `too-large`,
    `limit-exceeded`, `out-of-range`, `other`); `raw` is the host's own value,
    handed back unchanged when the error leaves the app.
    """

    def __init__(self, case: str, detail: str, raw: Any = None) -> None:
        super().__init__(f"{case}: {detail}" if detail else case)
        self.case = case
        self.detail = detail
        self.raw = raw

    def describe(self) -> str:
        """The same words the Rust SDK uses for this error."""
        if self.case == "read-only":
            return "read-only: a view cannot change state"
        if self.case == "other":
            return self.detail
        return f"{self.case.replace('-', ' ')}: {self.detail}"


class Backend:
    """What the SDK needs from a host: the imported interfaces and a way to
    recognise their errors."""

    def __init__(self, storage: Any, private_storage: Any, events: Any, context: Any,
                 err_type: type[BaseException], to_error: Callable[[Any], StorageError],
                 blobs: Any = None) -> None:
        self.storage = storage
        self.private_storage = private_storage
        self.events = events
        self.context = context
        self.err_type = err_type
        self.to_error = to_error
        self.blobs = blobs


_CASES = {
    "StorageError_ReadOnly": "read-only",
    "StorageError_TooLarge": "too-large",
    "StorageError_LimitExceeded": "limit-exceeded",
    "StorageError_OutOfRange": "out-of-range",
    "StorageError_Other": "other",
}


def _wit_error(value: Any) -> StorageError:
    case = _CASES.get(type(value).__name__, "other")
    detail = getattr(value, "value", "")
    return StorageError(case, detail if isinstance(detail, str) else "", value)


_import_error = ""


def _wit_backend() -> Backend | None:
    global _import_error
    try:
        from componentize_py_types import Err  # type: ignore[import-not-found]
        from wit_world.imports import (  # type: ignore[import-not-found]
            blobs,
            context,
            events,
            private_storage,
            storage,
        )
    except ImportError as e:
        _import_error = str(e)
        return None
    return Backend(storage, private_storage, events, context, Err, lambda e: _wit_error(e.value),
                   blobs)


# Imported when the SDK is: componentize-py snapshots the app after importing
# it, and a module first imported at call time is not in the component.
_backend: Backend | None = _wit_backend()


def backend() -> Backend:
    """The host in use; the WIT bindings unless a fake was installed."""
    global _backend
    if _backend is None:
        _backend = _wit_backend()
        if _backend is None:
            raise RuntimeError(
                "no host: run inside a component, or install mero_sdk.testing.FakeHost"
                f" ({_import_error})"
            )
    return _backend


def set_backend(b: Backend | None) -> None:
    """Replaces the host (tests)."""
    global _backend
    _backend = b


def host(f: Callable[..., T], *args: Any) -> T:
    """Calls a host function, turning its `storage-error` into StorageError."""
    b = backend()
    try:
        return f(*args)
    except b.err_type as e:  # the bindings raise Err(storage-error)
        raise b.to_error(e) from None
