"""Event subscriptions: `/ws` (WebSocket) and `/sse` (server-sent events),
each an async iterator of `Event`s and an async context manager.

Events are the node's: per context `StateMutation`, `ExecutionEvent`,
`SyncStatus`, `AppVersionChanged`; per namespace or group `MemberJoined`,
`MemberRemoved`, `MemberRoleSet`, `MemberCapabilitySet`,
`ContextRegistered`, `SubgroupCreated`, ...; over SSE also `Gap` when
events could not be replayed on a resume.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
from typing import TYPE_CHECKING, Any, AsyncIterator, Deque, Dict, List, Mapping, Optional, Sequence

import httpx

from .errors import (
    BadRequestError,
    EventStreamError,
    ForbiddenError,
    MeroError,
    NetworkError,
    NotFoundError,
    error_for_status,
    rpc_message,
)

if TYPE_CHECKING:  # pragma: no cover
    from .aio import _AsyncTransport

__all__ = ["Event", "WsSubscription", "SseSubscription"]


@dataclasses.dataclass
class Event:
    """One event."""

    type: str
    """`StateMutation`, `ExecutionEvent`, `MemberJoined`, `Gap`, ..."""
    data: Any
    """Its payload; the shape depends on `type`."""
    context_id: Optional[str] = None
    """Base58 id of the context it is about, if any."""
    group_id: Optional[str] = None
    """Hex id of the namespace or group it is about, if any."""
    id: Optional[str] = None
    """SSE only: the event's id (`{run}-{seq}`), to resume after it."""

    @classmethod
    def from_json(cls, value: Mapping[str, Any], event_id: Optional[str] = None) -> "Event":
        return cls(
            type=str(value.get("type", "")),
            data=value.get("data"),
            context_id=value.get("contextId"),
            group_id=value.get("groupId"),
            id=event_id,
        )


_WS_ERRORS = {
    "NotFound": NotFoundError,
    "ContextNotFound": NotFoundError,
    "Unauthorized": ForbiddenError,
    "Forbidden": ForbiddenError,
    "ParseError": BadRequestError,
}


def _params(
    context_ids: Sequence[str], group_ids: Sequence[str], event_types: Optional[Sequence[str]]
) -> Dict[str, Any]:
    params: Dict[str, Any] = {"contextIds": list(context_ids)}
    if group_ids:
        params["groupIds"] = list(group_ids)
    if event_types is not None:
        params["eventTypes"] = list(event_types)
    return params


class WsSubscription:
    """Events over one WebSocket. Iterate it; `subscribe`/`unsubscribe`
    change what it receives (call them between iterations)."""

    def __init__(
        self,
        transport: "_AsyncTransport",
        context_ids: List[str],
        group_ids: List[str],
        event_types: Optional[Sequence[str]],
    ) -> None:
        self._t = transport
        self._initial = _params(context_ids, group_ids, event_types)
        self._ws: Any = None
        self._next_id = 1
        self._buffer: Deque[Event] = collections.deque()
        self._closed = False

    async def _connect(self) -> None:
        try:
            from websockets.asyncio.client import connect
            from websockets.exceptions import InvalidStatus
        except ImportError as e:  # pragma: no cover - websockets < 13
            raise MeroError("MissingDependency", f"websockets >= 13 is needed: {e}") from None
        conn = self._t.conn
        url = "ws" + conn.url("/ws")[len("http"):]
        bearer = await self._t.bearer()
        for attempt in (0, 1):
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            try:
                kwargs: Dict[str, Any] = {
                    "additional_headers": headers,
                    "open_timeout": conn.timeout,
                    "max_size": None,
                }
                if _supports_proxy_arg():
                    kwargs["proxy"] = None
                self._ws = await connect(url, **kwargs)
                return
            except InvalidStatus as e:
                status = e.response.status_code
                body = e.response.body or b""
                if status == 401 and attempt == 0:
                    renewed = await self._t.renew(bearer)
                    if renewed is not None:
                        bearer = renewed
                        continue
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                raise error_for_status(status, parsed, body.decode("utf-8", "replace")) from None
            except (OSError, asyncio.TimeoutError) as e:
                raise NetworkError(type(e).__name__, f"{url}: {e}") from None

    async def open(self) -> "WsSubscription":
        """Connects and subscribes to what it was made with."""
        if self._ws is None:
            await self._connect()
            if self._initial["contextIds"] or self._initial.get("groupIds"):
                await self._request("subscribe", self._initial)
        return self

    async def _recv(self) -> Dict[str, Any]:
        from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

        try:
            text = await self._ws.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None
        except ConnectionClosed as e:
            rcvd = getattr(e, "rcvd", None)
            code = getattr(rcvd, "code", None)
            reason = getattr(rcvd, "reason", "") or str(e)
            if code == 1008:
                raise EventStreamError("SubscriberDropped", reason) from None
            raise EventStreamError("ConnectionClosed", reason) from None
        msg = json.loads(text)
        return msg if isinstance(msg, dict) else {}

    async def _request(self, method: str, params: Dict[str, Any]) -> Any:
        """Sends a request and reads until its reply, keeping events that
        arrive meanwhile."""
        if self._ws is None:
            await self.open()
        rid = self._next_id
        self._next_id += 1
        await self._ws.send(json.dumps({"id": rid, "method": method, "params": params}))
        while True:
            msg = await self._recv()
            if msg.get("id") is None:
                if isinstance(msg.get("result"), Mapping):
                    self._buffer.append(Event.from_json(msg["result"]))
                elif isinstance(msg.get("error"), Mapping):
                    self._raise(msg["error"], msg)
                continue
            if msg.get("id") != rid:
                continue
            if isinstance(msg.get("error"), Mapping):
                self._raise(msg["error"], msg)
            return msg.get("result")

    @staticmethod
    def _raise(err: Mapping[str, Any], body: Any) -> None:
        kind = str(err.get("type", "Error"))
        raise _WS_ERRORS.get(kind, MeroError)(kind, rpc_message(err.get("data")), body=body)

    async def subscribe(
        self,
        context_ids: Sequence[str] = (),
        group_ids: Sequence[str] = (),
        event_types: Optional[Sequence[str]] = None,
    ) -> Any:
        """Adds subscriptions; the node's reply (`{"contextIds", "groupIds"}`)."""
        return await self._request("subscribe", _params(context_ids, group_ids, event_types))

    async def unsubscribe(self, context_ids: Sequence[str] = (), group_ids: Sequence[str] = ()) -> Any:
        """Removes subscriptions."""
        return await self._request("unsubscribe", _params(context_ids, group_ids, None))

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._closed:
            raise StopAsyncIteration
        if self._buffer:
            return self._buffer.popleft()
        if self._ws is None:
            await self.open()
        while True:
            msg = await self._recv()
            if msg.get("id") is None and isinstance(msg.get("result"), Mapping):
                return Event.from_json(msg["result"])
            if msg.get("id") is None and isinstance(msg.get("error"), Mapping):
                self._raise(msg["error"], msg)

    async def aclose(self) -> None:
        """Closes the socket."""
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def __aenter__(self) -> "WsSubscription":
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _supports_proxy_arg() -> bool:
    """websockets >= 15 reads proxy settings from the environment unless
    told `proxy=None`; earlier versions have no such argument."""
    try:
        import websockets

        major = int(str(getattr(websockets, "__version__", "0")).split(".")[0])
    except (ValueError, ImportError):  # pragma: no cover
        return False
    return major >= 15


class SseSubscription:
    """Events over `/sse`, reopened with `Last-Event-ID` (and the session
    id) whenever the stream breaks, so nothing is missed while the node
    still keeps it."""

    def __init__(
        self,
        transport: "_AsyncTransport",
        context_ids: List[str],
        group_ids: List[str],
        event_types: Optional[Sequence[str]],
        *,
        last_event_id: Optional[str],
        session_id: Optional[str],
        max_reconnects: int,
    ) -> None:
        self._t = transport
        self._query: Dict[str, str] = {}
        if context_ids:
            self._query["contextIds"] = ",".join(context_ids)
        if group_ids:
            self._query["groupIds"] = ",".join(group_ids)
        if event_types is not None:
            self._query["eventTypes"] = ",".join(event_types)
        self.last_event_id: Optional[str] = last_event_id
        """Id of the last event received: pass it to `subscribe_sse` to resume."""
        self.session_id: Optional[str] = session_id
        """The node's id of this stream's session (its subscriptions)."""
        self.max_reconnects = max_reconnects
        self.reconnects = 0
        """How many times the stream was reopened."""
        self._cm: Any = None
        self._lines: Optional[AsyncIterator[str]] = None
        self._closed = False
        self._failures = 0
        self._opened = False

    async def _open(self) -> None:
        conn = self._t.conn
        bearer = await self._t.bearer()
        for attempt in (0, 1):
            headers = {"Accept": "text/event-stream"}
            if bearer:
                headers["Authorization"] = f"Bearer {bearer}"
            if self.last_event_id:
                headers["Last-Event-ID"] = self.last_event_id
            if self.session_id:
                headers["X-SSE-Session-ID"] = self.session_id
            cm = self._t.client().stream(
                "GET",
                conn.url("/sse"),
                params=self._query or None,
                headers=headers,
                timeout=conn.httpx_timeout(read=None),
            )
            try:
                resp = await cm.__aenter__()
            except httpx.HTTPError as e:
                raise NetworkError(type(e).__name__, f"GET {conn.url('/sse')}: {e}") from None
            if resp.status_code == 200:
                if self._opened:
                    self.reconnects += 1
                self._opened = True
                self._cm = cm
                self._lines = resp.aiter_lines()
                sid = resp.headers.get("x-sse-session-id")
                if sid:
                    self.session_id = sid
                return
            content = await resp.aread()
            await cm.__aexit__(None, None, None)
            if resp.status_code == 401 and attempt == 0:
                renewed = await self._t.renew(bearer)
                if renewed is not None:
                    bearer = renewed
                    continue
            try:
                parsed = json.loads(content) if content else None
            except ValueError:
                parsed = None
            raise error_for_status(resp.status_code, parsed, content.decode("utf-8", "replace"))

    async def _close_stream(self) -> None:
        cm, self._cm, self._lines = self._cm, None, None
        if cm is not None:
            try:
                await cm.__aexit__(None, None, None)
            except Exception:
                pass

    async def _next_message(self) -> Optional["tuple[Optional[str], str]"]:
        """The next `(id, data)`; None when the stream ended."""
        assert self._lines is not None
        data: List[str] = []
        event_id: Optional[str] = None
        while True:
            try:
                line = await self._lines.__anext__()
            except StopAsyncIteration:
                return None
            if line == "":
                if data:
                    return event_id, "\n".join(data)
                event_id = None
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if field == "data":
                data.append(value)
            elif field == "id":
                event_id = value

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._lines is None:
                await self._open()
            try:
                message = await self._next_message()
            except (httpx.HTTPError, OSError):
                message = None
            if message is None:
                await self._close_stream()
                if self._closed:
                    raise StopAsyncIteration
                self._failures += 1
                if self._failures > self.max_reconnects:
                    raise EventStreamError(
                        "StreamEnded", f"the SSE stream broke {self._failures} times in a row"
                    )
                await asyncio.sleep(min(2.0, 0.1 * 2 ** (self._failures - 1)))
                continue
            event_id, text = message
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if not isinstance(value, Mapping):
                continue
            # An `{"result": event}` wrapper (upstream's SSE) is accepted too.
            if isinstance(value.get("result"), Mapping) and "type" not in value:
                value = value["result"]
            if value.get("type") == "Session":
                sid = (value.get("data") or {}).get("sessionId")
                if sid:
                    self.session_id = sid
                continue
            self._failures = 0
            if event_id:
                self.last_event_id = event_id
            return Event.from_json(value, event_id)

    async def change(
        self,
        method: str = "subscribe",
        context_ids: Sequence[str] = (),
        group_ids: Sequence[str] = (),
        event_types: Optional[Sequence[str]] = None,
    ) -> Any:
        """`POST /sse/subscription`: adds (`subscribe`) or removes
        (`unsubscribe`) ids of this stream's session."""
        from ._http import Call

        if self.session_id is None:
            raise MeroError("NoSession", "the stream has no session yet: iterate it first")
        body: Dict[str, Any] = {"sessionId": self.session_id, "method": method}
        body.update(_params(context_ids, group_ids, event_types))
        return await self._t.request(Call("POST", "/sse/subscription", json=body))

    async def aclose(self) -> None:
        """Closes the stream."""
        self._closed = True
        await self._close_stream()

    async def __aenter__(self) -> "SseSubscription":
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
