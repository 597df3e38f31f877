"""Declaring an app: its state class, init, views and mutating methods,
events, and the dispatcher that answers the WIT `app` exports."""

from __future__ import annotations

import dataclasses
import inspect
import json
import types
import typing
from typing import Any, Callable, Union, get_args, get_origin, get_type_hints

from ._host import StorageError, backend, host
from .collections import Collection, Loc, SdkError, attach, kind_of

_VIEW = "__mero_view__"
_MUTATE = "__mero_mutate__"
_INIT = "__mero_init__"


def view(f: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a read-only method: the node runs it on a store that refuses
    writes, so a view that writes (or emits) fails."""
    setattr(f, _VIEW, True)
    return f


def mutate(f: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a method that may change state; its writes and events commit
    atomically if it returns, and are discarded if it raises."""
    setattr(f, _MUTATE, True)
    return f


def init(f: Callable[..., Any]) -> Any:
    """Marks the function that makes the initial state from the `init`
    arguments. It takes no `self` and returns an instance of the state."""
    setattr(f, _INIT, True)
    return staticmethod(f)


class AppError(Exception):
    """An error a method returns to its client: any JSON-able value, e.g. a
    message or `{"kind": "NotFound", "data": key}`."""

    def __init__(self, value: Any) -> None:
        super().__init__(value if isinstance(value, str) else json.dumps(value))
        self.value = value


def event(cls: type) -> type:
    """Declares an event: a class whose name is the event's kind and whose
    annotated fields are its JSON payload (no fields: `null`)."""
    return dataclasses.dataclass(cls)


def emit(ev: Any, data: Any = None) -> None:
    """Emits an `@event` instance (or a kind and a JSON-able payload). It is
    delivered only if the call succeeds; from a view it fails the call."""
    if isinstance(ev, str):
        kind, payload = ev, data
    else:
        kind = type(ev).__name__
        fields = dataclasses.fields(ev) if dataclasses.is_dataclass(ev) else ()
        payload = {f.name: getattr(ev, f.name) for f in fields} if fields else None
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        host(backend().events.emit, kind, raw)
    except StorageError:
        # The node records the failure and fails the call (as in Rust).
        pass


class CallError(Exception):
    """Why a call failed, in the terms of the WIT `app-error`."""

    def __init__(self, case: str, value: Any) -> None:
        super().__init__(f"{case}: {value}")
        self.case = case  # unknown-method | invalid-arguments | failed | storage
        self.value = value  # str, or a StorageError for `storage`


_STATE_KEYS = ("package", "version", "state_version")


def state(cls: type | None = None, *, package: str | None = None, version: str = "0.1.0",
          state_version: int = 1) -> Any:
    """Declares the app's state class. Its annotated fields are collections
    stored at the root under the field's name."""

    def wrap(c: type) -> type:
        c.__mero_state__ = {  # type: ignore[attr-defined]
            "package": package or c.__name__, "version": version, "state_version": state_version,
        }
        if "__init__" not in c.__dict__:
            def __init__(self: Any, **fields: Any) -> None:
                for k, v in fields.items():
                    setattr(self, k, v)
            c.__init__ = __init__  # type: ignore[misc]
        return c

    return wrap(cls) if cls is not None else wrap


class Dispatcher:
    """Runs an app's methods from their names and JSON arguments."""

    def __init__(self, cls: type) -> None:
        meta = getattr(cls, "__mero_state__", None)
        if meta is None:
            raise SdkError(f"{cls.__name__} is not declared with @state")
        self.cls, self.meta = cls, meta
        hints = get_type_hints(cls)
        self.fields = {n: t for n, t in hints.items()
                       if not n.startswith("_") and get_origin(t) is not typing.ClassVar}
        for n, t in self.fields.items():
            kind_of(t)
            if not isinstance(get_origin(t) or t, type) or not issubclass(get_origin(t) or t, Collection):
                raise SdkError(f"state field `{n}` is not a collection")
        self.methods: dict[str, tuple[bool, Callable[..., Any]]] = {}
        self.init_fn: Callable[..., Any] | None = None
        for name, attr in cls.__dict__.items():
            f = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
            if getattr(f, _INIT, False):
                self.init_fn = f
            elif getattr(f, _VIEW, False) or getattr(f, _MUTATE, False):
                self.methods[name] = (bool(getattr(f, _MUTATE, False)), f)
        if self.init_fn is None:
            raise SdkError(f"{cls.__name__} needs one @init function")
        # Worked out now, so that a component's snapshot already holds them.
        _signature(self.init_fn, skip_self=False)
        for _, f in self.methods.values():
            _signature(f, skip_self=True)

    def describe(self) -> dict[str, Any]:
        """The `app-info` as a dict (the export turns it into WIT records)."""
        return {
            "package": self.meta["package"],
            "version": self.meta["version"],
            "methods": [(n, m) for n, (m, _) in self.methods.items()],
            "state_version": self.meta["state_version"],
            "schema": [(n, kind_of(t)) for n, t in self.fields.items()],
        }

    def load(self) -> Any:
        """The state: a handle to every field's collection."""
        obj = self.cls.__new__(self.cls)
        for n, t in self.fields.items():
            setattr(obj, n, attach(t, Loc(name=n)))
        return obj

    def init(self, args_json: str) -> None:
        assert self.init_fn is not None
        value = _run(lambda: self.init_fn(**_args("init", self.init_fn, args_json, skip_self=False)))
        if not isinstance(value, self.cls):
            raise CallError("failed", json.dumps("init must return the state"))
        for n, t in self.fields.items():
            coll = getattr(value, n, None)
            if not isinstance(coll, Collection):
                raise CallError("failed", json.dumps(f"init left field `{n}` unset"))
            _run(lambda: coll._store(get_args(t), Loc(name=n)))

    def call(self, method: str, args_json: str) -> str:
        entry = self.methods.get(method)
        if entry is None:
            raise CallError("unknown-method", method)
        f = entry[1]
        kwargs = _args(method, f, args_json, skip_self=True)
        result = _run(lambda: f(self.load(), **kwargs))
        try:
            return json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as e:
            raise CallError("failed", json.dumps(f"result does not encode: {e}")) from None


def _run(f: Callable[[], Any]) -> Any:
    """Runs app code, turning what it raises into a CallError."""
    try:
        return f()
    except CallError:
        raise
    except StorageError as e:
        raise CallError("storage", e) from None
    except AppError as e:
        raise CallError("failed", json.dumps(e.value, ensure_ascii=False, separators=(",", ":"))) from None
    except Exception as e:  # a bug in the app: fail the call, keep its message
        raise CallError("failed", json.dumps(f"{type(e).__name__}: {e}")) from None


_SIGNATURES: dict[Any, tuple[list[inspect.Parameter], dict[str, Any]]] = {}


def _signature(f: Callable[..., Any], skip_self: bool) -> tuple[list[inspect.Parameter], dict[str, Any]]:
    """`f`'s parameters and type hints, worked out once: evaluating string
    annotations is slow in the interpreter, and every call would redo it."""
    cached = _SIGNATURES.get(f)
    if cached is None:
        params = list(inspect.signature(f).parameters.values())[1 if skip_self else 0:]
        try:
            hints = get_type_hints(f)
        except Exception:  # unresolvable annotations: check names only
            hints = {}
        cached = _SIGNATURES[f] = (params, hints)
    return cached


def _args(method: str, f: Callable[..., Any], args_json: str, skip_self: bool) -> dict[str, Any]:
    """Parses and checks the JSON arguments against `f`'s signature. An empty
    body or `null` counts as `{}`; unknown or missing names are errors."""
    def bad(msg: str) -> CallError:
        return CallError("invalid-arguments", f"arguments of `{method}`: {msg}")

    text = args_json.strip()
    try:
        args = json.loads(text) if text and text != "null" else {}
    except ValueError as e:
        raise bad(str(e)) from None
    if not isinstance(args, dict):
        raise bad("expected a JSON object keyed by parameter name")
    params, hints = _signature(f, skip_self)
    names = {p.name for p in params}
    for k in args:
        if k not in names:
            raise bad(f"unknown field `{k}`")
    out: dict[str, Any] = {}
    for p in params:
        hint = hints.get(p.name, Any)
        if p.name in args:
            if not _conforms(args[p.name], hint):
                raise bad(f"`{p.name}` must be {kind_of(hint)}, got {json.dumps(args[p.name])}")
            out[p.name] = args[p.name]
        elif p.default is not inspect.Parameter.empty:
            pass
        elif _optional(hint):
            out[p.name] = None
        else:
            raise bad(f"missing field `{p.name}`")
    return out


def _optional(hint: Any) -> bool:
    return get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (str, int, float, bool, None,
    list[T], dict[str, T], unions; anything else is accepted)."""
    if hint is Any:
        return True
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list or hint is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is dict or hint is dict:
        return isinstance(value, dict) and (not args or all(_conforms(v, args[1]) for v in value.values()))
    return True
