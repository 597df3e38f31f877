"""Event streams over WebSocket and SSE: context and namespace events,
changing subscriptions, refusals, and SSE resume with Last-Event-ID."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List

import pytest

from conftest import CONVERGE, Node, new_namespace
from mero_client import (
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Event,
    MeroError,
    NotFoundError,
    create_async_client,
    create_connection,
)
from mero_client.ids import b58encode

UNKNOWN_CTX = b58encode(b"\x02" * 32)


async def next_matching(events: Any, match: Callable[[Event], bool]) -> Event:
    async def scan() -> Event:
        async for e in events:
            if match(e):
                return e
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(scan(), CONVERGE)


def inserted(key: str) -> Callable[[Event], bool]:
    return lambda e: e.type == "ExecutionEvent" and (e.data or {}).get("data", {}).get("key") == key


def run(coro_fn: Callable[[AsyncClient], Any], node: Node) -> None:
    async def main() -> None:
        async with create_async_client(node.connection()) as c:
            await coro_fn(c)

    asyncio.run(main())


def test_websocket_context_events(node: Node, client, kv_app: str) -> None:
    ctx = new_namespace(client, kv_app)["contextId"]

    async def flow(c: AsyncClient) -> None:
        async with c.subscribe_ws(context_ids=[ctx]) as events:
            await c.execute_function(ctx, "set", {"key": "a", "value": "1"})
            mutation = await next_matching(events, lambda e: e.type == "StateMutation")
            assert mutation.context_id == ctx and mutation.data["newRoot"]
            assert [x["kind"] for x in mutation.data["events"]] == ["Inserted"]
            e = await next_matching(events, inserted("a"))
            assert e.context_id == ctx and e.data["kind"] == "Inserted"
            # Only the kinds asked for, after a change of subscription.
            await events.unsubscribe(context_ids=[ctx])
            await events.subscribe(context_ids=[ctx], event_types=["ExecutionEvent"])
            await c.execute_function(ctx, "set", {"key": "b", "value": "2"})
            e = await next_matching(events, lambda e: True)
            assert e.type == "ExecutionEvent" and e.data["data"]["key"] == "b"

    run(flow, node)


def test_websocket_namespace_events(node: Node, client, kv_app: str) -> None:
    ns = new_namespace(client, kv_app)["namespaceId"]

    async def flow(c: AsyncClient) -> None:
        async with c.subscribe_ws(group_ids=[ns]) as events:
            group = (await c.create_group_in_namespace(ns, "evented"))["data"]["groupId"]
            e = await next_matching(events, lambda e: e.type == "SubgroupCreated")
            assert e.group_id == ns and group in str(e.data)

    run(flow, node)


def test_websocket_refusals(node: Node, client, kv_app: str) -> None:
    async def flow(c: AsyncClient) -> None:
        with pytest.raises(NotFoundError):
            async with c.subscribe_ws(context_ids=[UNKNOWN_CTX]):
                pass
        with pytest.raises(BadRequestError):
            async with c.subscribe_ws(context_ids=["not-an-id"]):
                pass

    run(flow, node)

    async def anonymous() -> None:
        async with create_async_client(create_connection(node.url, use_token_cache=False)) as c:
            with pytest.raises(AuthenticationError):
                async with c.subscribe_ws(context_ids=[UNKNOWN_CTX]):
                    pass

    asyncio.run(anonymous())


def test_sse_events_and_resume_with_last_event_id(node: Node, client, kv_app: str) -> None:
    ctx = new_namespace(client, kv_app)["contextId"]

    async def flow(c: AsyncClient) -> None:
        sub = c.subscribe_sse(context_ids=[ctx], event_types=["ExecutionEvent"])
        async with sub as events:
            assert events.session_id
            await c.execute_function(ctx, "set", {"key": "first", "value": "1"})
            e = await next_matching(events, inserted("first"))
            assert e.id and e.id == events.last_event_id and e.context_id == ctx
            last, session = events.last_event_id, events.session_id
        # Events while nobody listens...
        for key in ("missed-1", "missed-2"):
            await c.execute_function(ctx, "set", {"key": key, "value": "x"})
        # ...are replayed first on resume, in order.
        async with c.subscribe_sse(last_event_id=last, session_id=session) as resumed:
            got: List[str] = []
            while len(got) < 2:
                e = await next_matching(resumed, lambda e: e.type == "ExecutionEvent")
                got.append(e.data["data"]["key"])
            assert got == ["missed-1", "missed-2"]
            assert resumed.session_id == session
            # The session's subscriptions can change while it streams.
            changed = await resumed.change("unsubscribe", context_ids=[ctx])
            assert changed["data"]["contextIds"] == []
            changed = await resumed.change("subscribe", context_ids=[ctx])
            assert changed["data"]["contextIds"] == [ctx]

    run(flow, node)


def test_sse_reconnects_by_itself_when_the_stream_breaks(node: Node, client, kv_app: str) -> None:
    ctx = new_namespace(client, kv_app)["contextId"]

    async def flow(c: AsyncClient) -> None:
        async with c.subscribe_sse(context_ids=[ctx]) as events:
            await c.execute_function(ctx, "set", {"key": "before", "value": "1"})
            await next_matching(events, inserted("before"))
            # Break the stream under the iterator, as a network fault would.
            await events._close_stream()
            await c.execute_function(ctx, "set", {"key": "during", "value": "2"})
            e = await next_matching(events, inserted("during"))
            assert events.reconnects == 1 and e.id

    run(flow, node)


def test_sse_gap_after_a_restart_and_refusals(node: Node, client, kv_app: str) -> None:
    async def flow(c: AsyncClient) -> None:
        with pytest.raises(NotFoundError):
            async with c.subscribe_sse(context_ids=[UNKNOWN_CTX]):
                pass
        # An id from another run of the node: a Gap event, not silence.
        ctx = (await c.create_namespace(kv_app))["data"]["contextId"]
        async with c.subscribe_sse(context_ids=[ctx], last_event_id="1-1") as events:
            e = await next_matching(events, lambda e: True)
            assert e.type == "Gap" and "restarted" in e.data["reason"]
        with pytest.raises(MeroError):
            await c.subscribe_sse().change("subscribe", context_ids=[ctx])

    run(flow, node)
