"""One node: applications, namespaces, subgroups, contexts, aliases, calls
and their errors, through the synchronous and the asyncio client."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import inspect
import threading
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Node, app_path, new_namespace
from mero_client import (
    AsyncClient,
    BadRequestError,
    Client,
    ConflictError,
    ExecutionError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    create_async_client,
)
from mero_client.ids import b58encode

UNKNOWN_B58 = b58encode(b"\x01" * 32)
UNKNOWN_HEX = "ab" * 32


# ------------------------------------------------------------ applications


def test_install_from_a_path_lists_and_gets_it(client: Client, kv_app: str) -> None:
    again = client.install_dev_application(app_path("kv_store"))
    assert again["data"]["applicationId"] == kv_app, "content-addressed"
    apps = client.list_applications()["data"]["apps"]
    listed = next(a for a in apps if a["id"] == kv_app)
    assert listed["package"] == "kv-store"
    app = client.get_application(kv_app)["data"]["application"]
    assert app["id"] == kv_app and app["size"] == Path(app_path("kv_store")).stat().st_size
    methods = {m["name"]: m["intent"] for m in app["methods"]}
    assert methods["set"] == "mutating" and methods["get"] == "readOnly"
    versions = client.list_application_versions(kv_app)["data"]
    assert [v["package"] for v in versions] == ["kv-store"]
    assert versions[0]["version"] == app["version"]


@pytest.fixture(scope="module")
def served_wasm() -> Iterator[str]:
    """The migration-suite v1 component served over HTTP on 127.0.0.1."""
    path = Path(app_path("migration_suite_v1"))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/wasm")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/app.wasm"
    finally:
        server.shutdown()
        server.server_close()


def test_install_from_a_url_with_its_hash(client: Client, served_wasm: str) -> None:
    digest = hashlib.sha256(Path(app_path("migration_suite_v1")).read_bytes()).hexdigest()
    installed = client.install_application(served_wasm, digest, b"meta")
    app_id = installed["data"]["applicationId"]
    app = client.get_application(app_id)["data"]["application"]
    assert app["source"] == served_wasm and app["metadata"] == list(b"meta")
    with pytest.raises(BadRequestError) as e:
        client.install_application(served_wasm, "00" * 32)
    assert e.value.status == 400
    with pytest.raises(ValueError):
        client.install_application(served_wasm, "zz" * 32)


def test_install_from_bytes_and_uninstall(client: Client) -> None:
    data = Path(app_path("migration_suite_v2_add_field")).read_bytes()
    installed = client.install_application_bytes(
        data, package="com.calimero.migration-suite", version="2.0.0"
    )
    app_id = installed["data"]["applicationId"]
    assert client.get_application(app_id)["data"]["application"]["version"] == "2.0.0"
    with pytest.raises(BadRequestError):
        client.install_application_bytes(
            data, package="com.calimero.migration-suite", version="9.9.9"
        )
    assert client.uninstall_application(app_id)["data"]["applicationId"] == app_id
    with pytest.raises(NotFoundError):
        client.get_application(app_id)


def test_application_errors(client: Client, kv_app: str) -> None:
    with pytest.raises(NotFoundError) as e:
        client.get_application(UNKNOWN_B58)
    assert e.value.status == 404 and e.value.error_type
    with pytest.raises(InvalidArgumentError):
        client.get_application("not-base58-0OIl")
    with pytest.raises(ValueError):
        client.list_application_versions("short")
    with pytest.raises(BadRequestError):
        client.install_dev_application("/nonexistent/app.wasm")
    with pytest.raises(BadRequestError):
        client.install_application_bytes(b"\0asm not really")
    with pytest.raises(InvalidArgumentError):
        client.install_application_bytes("text")  # type: ignore[arg-type]
    new_namespace(client, kv_app)
    with pytest.raises(ConflictError) as conflict:
        client.uninstall_application(kv_app)
    assert conflict.value.status == 409


# -------------------------------------------------------------- namespaces


def test_namespaces_and_their_first_context(client: Client, kv_app: str) -> None:
    created = client.create_namespace(kv_app, "py-ns", params={})["data"]
    ns, ctx = created["namespaceId"], created["contextId"]
    assert len(ns) == 64
    listed = {n["namespaceId"]: n for n in client.list_namespaces()["data"]}
    assert listed[ns]["name"] == "py-ns" and listed[ns]["targetApplicationId"] == kv_app
    got = client.get_namespace(ns)["data"]
    assert got["memberCount"] == 1 and got["contextCount"] == 1
    assert [c["contextId"] for c in got["contexts"]] == [ctx]
    invitation = client.create_namespace_invitation(ns, expiration_timestamp=3600)["data"]
    assert "inviter_signature" in invitation["invitation"]
    assert client.delete_namespace(ns)["data"]["isDeleted"] is True
    with pytest.raises(NotFoundError):
        client.get_namespace(ns)


def test_namespace_errors(client: Client, kv_app: str) -> None:
    with pytest.raises(NotFoundError):
        client.get_namespace(UNKNOWN_HEX)
    with pytest.raises(BadRequestError) as e:
        client.get_namespace("not-a-group-id")
    assert e.value.error_type == "InvalidGroupId"
    with pytest.raises(NotFoundError):
        client.create_namespace(UNKNOWN_B58)
    with pytest.raises(NotFoundError):
        client.create_namespace_invitation(UNKNOWN_HEX)
    ns = new_namespace(client, kv_app)["namespaceId"]
    with pytest.raises(InvalidArgumentError):
        client.create_namespace_invitation(ns, role="owner")
    with pytest.raises(InvalidArgumentError):
        client.join_namespace(ns, "{not json")
    with pytest.raises(InvalidArgumentError):
        client.join_namespace(ns, "[1, 2]")


def test_subgroups(client: Client, kv_app: str) -> None:
    ns = new_namespace(client, kv_app)["namespaceId"]
    team = client.create_group_in_namespace(ns, "team")["data"]["groupId"]
    secret = client.create_group_in_namespace(ns, "secret", visibility="restricted")["data"][
        "groupId"
    ]
    inner = client.create_group_in_namespace(ns, "inner", parent_group_id=team)["data"]["groupId"]
    groups = {g["groupId"]: g for g in client.list_namespace_groups(ns)["data"]}
    assert groups[team]["subgroupVisibility"] == "open" and groups[team]["name"] == "team"
    assert groups[secret]["subgroupVisibility"] == "restricted"
    assert groups[inner]["parentGroupId"] == team
    assert client.set_subgroup_visibility(secret, "open") == {}
    groups = {g["groupId"]: g for g in client.list_namespace_groups(ns)["data"]}
    assert groups[secret]["subgroupVisibility"] == "open"
    ctx = client.create_context(kv_app, team, name="team-ctx")["data"]
    assert ctx["groupId"] == team
    in_team = client.list_group_contexts(team)["data"]
    assert [c["contextId"] for c in in_team] == [ctx["contextId"]]
    members = client.list_group_members(ns)["members"]
    assert [m["role"] for m in members] == ["Admin"]
    with pytest.raises(InvalidArgumentError):
        client.set_subgroup_visibility(team, "hidden")
    with pytest.raises(NotFoundError):
        client.create_group_in_namespace(ns, parent_group_id=UNKNOWN_HEX)
    with pytest.raises(NotFoundError):
        client.list_namespace_groups(UNKNOWN_HEX)


def test_the_admins_own_capabilities_and_role(client: Client, kv_app: str) -> None:
    ns = new_namespace(client, kv_app)["namespaceId"]
    me = client.list_group_members(ns)["members"][0]["identity"]
    caps = client.get_member_capabilities(ns, me)["data"]["capabilities"]
    assert isinstance(caps, int)
    with pytest.raises(BadRequestError) as e:
        client.get_member_capabilities(ns, "not-an-account")
    assert e.value.error_type == "InvalidAccount"
    with pytest.raises(InvalidArgumentError):
        client.update_member_role(ns, me, "superuser")
    with pytest.raises(InvalidArgumentError):
        client.set_member_capabilities(ns, me, -1)
    with pytest.raises(InvalidArgumentError):
        client.set_member_capabilities(ns, me, ["fly"])
    # The last admin cannot step down.
    with pytest.raises((ForbiddenError, ConflictError, BadRequestError)):
        client.update_member_role(ns, me, "member")
    with pytest.raises(InvalidArgumentError):
        client.remove_group_members(ns, "[1]")
    with pytest.raises(InvalidArgumentError):
        client.add_group_members(ns, "[]")


# ---------------------------------------------------------------- contexts


def test_contexts_calls_and_aliases(client: Client, kv_app: str) -> None:
    ns = new_namespace(client, kv_app)["namespaceId"]
    created = client.create_context(kv_app, ns, '{}', name="kv")["data"]
    ctx = created["contextId"]
    assert created["groupId"] == ns and created["groupCreated"] is False
    assert created["memberPublicKey"]
    got = client.get_context(ctx)["data"]
    assert got["id"] == ctx and got["applicationId"] == kv_app and got["name"] == "kv"
    before = got["contextStateHash"]
    assert ctx in [c["id"] for c in client.list_contexts()["data"]["contexts"]]

    r = client.execute_function(ctx, "set", '{"key": "greeting", "value": "hello"}')
    assert r["jsonrpc"] == "2.0" and r["result"]["output"] is None
    assert client.execute_function(ctx, "get", {"key": "greeting"})["result"]["output"] == "hello"
    assert client.call(ctx, "entries") == {"greeting": "hello"}
    assert client.call(ctx, "len", {}) == 1
    assert client.get_context(ctx)["data"]["contextStateHash"] != before

    assert client.sync_context(ctx) == {"data": None}
    assert client.sync_all_contexts() == {"data": None}

    client.create_context_alias("py-kv", ctx)
    assert client.lookup_context_alias("py-kv") == {"data": {"value": ctx}}
    assert client.resolve_context_alias("py-kv") == ctx
    assert client.list_context_aliases()["data"]["py-kv"] == ctx
    client.delete_context_alias("py-kv")
    assert client.resolve_context_alias("py-kv") is None

    assert client.delete_context(ctx)["data"]["isDeleted"] is True
    with pytest.raises(NotFoundError):
        client.get_context(ctx)


def test_call_errors_are_typed(client: Client, kv_app: str) -> None:
    ctx = new_namespace(client, kv_app)["contextId"]
    with pytest.raises(ExecutionError) as e:
        client.execute_function(ctx, "no_such_method", {})
    assert e.value.error_type == "FunctionCallError" and "no_such_method" in e.value.message
    with pytest.raises(ExecutionError) as e:
        client.execute_function(ctx, "set", {"key": 1})
    assert e.value.error_type == "SerdeError"
    with pytest.raises(ExecutionError) as e:
        client.execute_function(ctx, "get_result", {"key": "absent"})
    assert e.value.error_type == "FunctionCallError"
    assert e.value.data == {"kind": "NotFound", "data": "absent"}
    assert e.value.body["error"]["type"] == "FunctionCallError"
    with pytest.raises(ExecutionError) as e:
        client.execute_function(ctx, "get_unchecked", {"key": "absent"})
    assert "key not found" in e.value.message
    with pytest.raises(ExecutionError) as e:
        client.execute_function(UNKNOWN_B58, "get", {"key": "a"})
    assert e.value.error_type == "ContextNotFound"
    with pytest.raises(InvalidArgumentError):
        client.execute_function("bad-id-0", "get", {})
    with pytest.raises(InvalidArgumentError):
        client.execute_function(ctx, "get", "{not json")
    with pytest.raises(InvalidArgumentError):
        client.execute_function(ctx, "", {})
    with pytest.raises(NotFoundError):
        client.join_context(UNKNOWN_B58)
    with pytest.raises(NotFoundError):
        client.create_context(kv_app, UNKNOWN_HEX)
    with pytest.raises(BadRequestError):
        client.create_context(kv_app, "bad-group")
    with pytest.raises(NotFoundError):
        client.create_context_alias("nothing", UNKNOWN_B58)


# ------------------------------------------------------------- async twin


def test_the_async_client_has_every_method_of_the_sync_one() -> None:
    sync = {n for n, f in inspect.getmembers(Client, inspect.isfunction) if not n.startswith("_")}
    aio = {n for n, f in inspect.getmembers(AsyncClient, inspect.isfunction) if not n.startswith("_")}
    assert sync - {"close"} <= aio, sync - aio
    for name in sync - {"close", "get_api_url"}:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
        s_params = list(inspect.signature(getattr(Client, name)).parameters)
        a_params = list(inspect.signature(getattr(AsyncClient, name)).parameters)
        assert s_params == a_params, name


def test_the_async_client_drives_a_node(node: Node, kv_app: str) -> None:
    async def flow() -> None:
        async with create_async_client(node.connection()) as c:
            assert (await c.health())["data"]["status"] == "alive"
            created = (await c.create_namespace(kv_app))["data"]
            ctx = created["contextId"]
            await c.execute_function(ctx, "set", {"key": "k", "value": "async"})
            assert await c.call(ctx, "get", {"key": "k"}) == "async"
            assert ctx in [x["id"] for x in (await c.list_contexts())["data"]["contexts"]]
            with pytest.raises(ExecutionError):
                await c.call(ctx, "nope")
            with pytest.raises(NotFoundError):
                await c.get_application(UNKNOWN_B58)
            groups = await asyncio.gather(
                *(c.create_group_in_namespace(created["namespaceId"], f"g{i}") for i in range(3))
            )
            assert len({g["data"]["groupId"] for g in groups}) == 3

    asyncio.run(flow())
