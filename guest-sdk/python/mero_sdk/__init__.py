"""Write context apps for mero nodes in Python.

An app is a module built by componentize-py into a WebAssembly component of
the `calimero:context/context-app` world (`wit/context.wit`). This package is
a thin layer over the generated bindings: the state class and its
collections, init, views and mutating methods, events, private storage,
blobs and facts about the call.

    from mero_sdk import state, init, view, mutate, event, emit, export
    from mero_sdk.collections import UnorderedMap, LwwRegister

    @event
    class Written:
        title: str

    @state(package="notes")
    class Notes:
        notes: UnorderedMap[str, LwwRegister[str]]

        @init
        def init() -> "Notes":
            return Notes(notes=UnorderedMap())

        @mutate
        def write(self, title: str, body: str) -> None:
            self.notes.insert_value(title, body)
            emit(Written(title))

        @view
        def read(self, title: str) -> str | None:
            return self.notes.get_value(title)

    App = export(Notes)  # what componentize-py exports

Clients call methods with one JSON object keyed by parameter name and get
the JSON of the return value. Each call runs in a fresh instance: nothing
survives in Python between calls; state lives in the node.
"""

from __future__ import annotations

from typing import Any

from . import blobs, env, private
from ._host import StorageError
from .app import AppError, CallError, Dispatcher, emit, event, init, mutate, state, view
from .collections import Counter, LwwRegister, SdkError, UnorderedMap, UnorderedSet, Vector

__all__ = [
    "AppError", "CallError", "Counter", "Dispatcher", "LwwRegister", "SdkError", "StorageError",
    "UnorderedMap", "UnorderedSet", "Vector", "blobs", "emit", "env", "event", "export", "init",
    "mutate", "private", "state", "view",
]


def export(cls: type) -> type:
    """The class componentize-py exports as the WIT `app` interface for the
    state class `cls`. Assign it to a module-level `App`."""
    d = Dispatcher(cls)

    def wit_error(e: CallError) -> Any:
        from componentize_py_types import Err  # type: ignore[import-not-found]
        from wit_world.exports import app as w  # type: ignore[import-not-found]

        if e.case == "unknown-method":
            return Err(w.AppError_UnknownMethod(str(e.value)))
        if e.case == "invalid-arguments":
            return Err(w.AppError_InvalidArguments(str(e.value)))
        if e.case == "storage" and isinstance(e.value, StorageError) and e.value.raw is not None:
            return Err(w.AppError_Storage(e.value.raw))
        return Err(w.AppError_Failed(str(e.value)))

    class App:
        def describe(self) -> Any:
            from wit_world.exports import app as w  # type: ignore[import-not-found]

            info = d.describe()
            return w.AppInfo(
                package=info["package"],
                version=info["version"],
                methods=[w.MethodInfo(n, w.Intent.MUTATING if m else w.Intent.READ_ONLY)
                         for n, m in info["methods"]],
                state_version=info["state_version"],
                schema=[w.FieldInfo(n, k) for n, k in info["schema"]],
                migrations=[],
            )

        def init(self, args_json: str) -> None:
            try:
                d.init(args_json)
            except CallError as e:
                raise wit_error(e) from None

        def call(self, method: str, args_json: str) -> str:
            try:
                return d.call(method, args_json)
            except CallError as e:
                raise wit_error(e) from None

        def migrate(self, from_version: int) -> None:
            # Migrations are not in this SDK yet (see README).
            raise wit_error(CallError("unknown-method", f"no migration from state version {from_version}"))

        def check_migration(self, from_version: int) -> None:
            return None

    return App
