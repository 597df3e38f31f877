"""`calimero_client_py` (the compat distribution) driven the way merobox's
no-docker mode drives it: tokens written to `get_token_cache_path(node)`
after a `POST /auth/token` login, a connection per call named by the node,
keyword arguments as merobox passes them, and results read as merobox
reads them (`result.get("data", result)`, JSON-RPC errors in the body).
The workflow is merobox's two-node quick start: install, namespace,
invite, join, context, join the context, call, wait for sync."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest

from conftest import Node, app_path, nodes, wait_for

import calimero_client_py  # the compat distribution (the `calimero` extra)


@pytest.fixture(scope="module")
def pair() -> Iterator[List[Node]]:
    started = nodes(["calimero-node-1", "calimero-node-2"])
    try:
        for n in started:
            n.merod("auth", "set-password", "--user", "merobox", stdin="merobox-pass\n")
        yield started
    finally:
        for n in started:
            n.close()


def merobox_login(node: Node) -> None:
    """What merobox's AuthManager does: log in, then save the token where
    calimero-client-py looks for it."""
    resp = httpx.post(
        node.url + "/auth/token",
        json={
            "auth_method": "user_password",
            "public_key": "merobox",
            "client_name": node.url,
            "timestamp": int(time.time()),
            "provider_data": {"username": "merobox", "password": "merobox-pass"},
        },
        trust_env=False,
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    path = Path(calimero_client_py.get_token_cache_path(node.name))
    assert str(path).startswith(calimero_client_py.get_token_cache_dir())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "access_token": data["access_token"],
                "node_url": node.url,
                "auth_method": "user_password",
                "refresh_token": data["refresh_token"],
                "expires_at": None,
                "username": "merobox",
            }
        )
    )


def client_for(node: Node) -> Any:
    """merobox's `get_client_for_rpc_url(rpc_url, node_name)`."""
    connection = calimero_client_py.create_connection(node.url, node_name=node.name)
    return calimero_client_py.create_client(connection)


def nested(result: Dict[str, Any]) -> Dict[str, Any]:
    return result.get("data", result)


def test_merobox_quickstart_workflow(pair: List[Node]) -> None:
    n1, n2 = pair
    for n in pair:
        merobox_login(n)

    # install_application (dev: true, binary mode)
    installed = client_for(n1).install_dev_application(
        path=app_path("kv_store"), metadata=b""
    )
    app_id = nested(installed)["applicationId"]
    # create_namespace
    namespace_id = nested(client_for(n1).create_namespace(application_id=app_id))["namespaceId"]
    # create_namespace_invitation, then join_namespace with the inner invitation as JSON
    invited = client_for(n1).create_namespace_invitation(namespace_id=namespace_id, recursive=False)
    invitation = nested(invited)["invitation"]
    assert "inviter_signature" in invitation
    joined = client_for(n2).join_namespace(
        namespace_id=namespace_id, invitation_json=json.dumps(invitation)
    )
    assert nested(joined)["namespaceId"] == namespace_id
    # create_context with params as a JSON string
    created = client_for(n1).create_context(
        application_id=app_id, params=json.dumps({}), group_id=namespace_id
    )
    context_id = nested(created)["contextId"]
    member_pk = nested(created)["memberPublicKey"]
    assert member_pk
    # join_context
    joined_ctx = client_for(n2).join_context(context_id=context_id)
    assert nested(joined_ctx)["contextId"] == context_id
    # call
    result = client_for(n1).execute_function(
        context_id=context_id,
        method="set",
        args=json.dumps({"key": "hello", "value": "world"}),
    )
    assert "error" not in result and result["result"]["output"] is None

    # wait_for_sync: equal contextStateHash on both nodes
    def synced():
        hashes = {
            nested(client_for(n).get_context(context_id))["contextStateHash"] for n in pair
        }
        return True if len(hashes) == 1 else None

    wait_for("the nodes to sync", synced)
    got = client_for(n2).execute_function(
        context_id=context_id, method="get", args=json.dumps({"key": "hello"})
    )
    assert got["result"]["output"] == "world"

    # A failed call comes back as a JSON-RPC error body, as merobox expects.
    failed = client_for(n1).execute_function(
        context_id=context_id, method="no_such_method", args="{}"
    )
    assert failed["error"]["type"] == "FunctionCallError"

    # The tokens came from the cache merobox wrote.
    assert client_for(n1).connection.token() is not None
    c = client_for(n1)
    c.list_contexts()
    assert c.connection.token_source == "cache"
    assert calimero_client_py.AuthMode("none").value == "none"
    assert issubclass(calimero_client_py.ClientError, RuntimeError)
    err = calimero_client_py.ClientError("Network", "down")
    assert (err.error_type, err.message, str(err)) == ("Network", "down", "Network: down")
    # A bad id is a ValueError, as upstream.
    with pytest.raises(ValueError):
        client_for(n1).get_context("not-an-id")
    # A refused request is a RuntimeError.
    with pytest.raises(RuntimeError):
        client_for(n1).get_namespace("ab" * 32)
