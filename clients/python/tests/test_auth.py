"""Connections and tokens: the node's credential file, explicit tokens,
user/password login with refresh, the per-node cache, scoped tokens,
timeouts and retries."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import httpx

from conftest import Node, new_namespace, wait_for
from mero_client import (
    AuthenticationError,
    AuthMode,
    ExecutionError,
    ForbiddenError,
    InvalidArgumentError,
    JwtToken,
    NetworkError,
    create_client,
    create_connection,
    get_token_cache_dir,
    get_token_cache_path,
)
from mero_client.auth import load_cached, save_cached, token_cache_filename


def test_health_needs_no_token(node: Node) -> None:
    anonymous = create_client(
        create_connection(node.url, use_token_cache=False, retries=0)
    )
    health = anonymous.health()["data"]
    # Upstream's field, and ours beside it.
    assert health["status"] == "alive"
    assert health["ready"] is True
    assert anonymous.connection.detect_auth_mode() == AuthMode("required")
    assert str(anonymous.connection.detect_auth_mode()) == "required"


def test_requests_without_a_token_are_refused(node: Node) -> None:
    anonymous = create_client(create_connection(node.url, use_token_cache=False))
    with pytest.raises(AuthenticationError) as e:
        anonymous.list_contexts()
    assert e.value.status == 401
    assert e.value.error_type  # the node's type, e.g. MissingToken
    assert isinstance(e.value, RuntimeError), "as upstream, a RuntimeError"


def test_the_node_credential_file_is_found_by_home_and_node_name(node: Node) -> None:
    c = node.client()
    assert "contexts" in c.list_contexts()["data"]
    assert c.connection.token_source == "credential"
    assert c.is_authed()["data"]["status"] == "authed"
    # And through CALIMERO_HOME, as merod and meroctl find it.
    os.environ["CALIMERO_HOME"] = str(node.home)
    try:
        c2 = create_client(
            create_connection(node.url, node.name, token_cache_dir=node.cache_dir)
        )
        c2.list_applications()
        assert c2.connection.token_source == "credential"
    finally:
        del os.environ["CALIMERO_HOME"]
    # An explicit credential file path.
    c3 = create_client(
        create_connection(node.url, credential_file=node.dir / "credential.json")
    )
    c3.list_namespaces()
    assert c3.connection.token_source == "credential"


def test_an_explicit_token_is_used_as_is(node: Node) -> None:
    c = create_client(create_connection(node.url, token=node.token))
    c.list_contexts()
    assert c.connection.token_source == "explicit"
    bad = create_client(create_connection(node.url, token="not-a-jwt", use_token_cache=False))
    with pytest.raises(AuthenticationError):
        bad.list_contexts()


def test_login_caches_the_pair_and_refreshes_on_401(node: Node, tmp_path: Path) -> None:
    conn = create_connection(
        node.url,
        "alice-node",
        username="alice",
        password="alice-password",
        token_cache_dir=tmp_path,
        home=tmp_path,  # no credential file there
    )
    c = create_client(conn)
    c.list_contexts()
    assert conn.token_source == "login"
    cache = Path(get_token_cache_path("alice-node", tmp_path))
    assert cache.name == token_cache_filename("alice-node")
    assert oct(cache.stat().st_mode & 0o777) == "0o600"
    saved = load_cached(cache)
    assert saved is not None and saved.refresh_token and saved.expires_at

    # A new connection with the same node name takes the cached pair.
    again = create_connection(node.url, "alice-node", token_cache_dir=tmp_path, home=tmp_path)
    create_client(again).list_applications()
    assert again.token_source == "cache"

    refreshed = saved
    # An access token about to expire is refreshed before it is sent.
    save_cached(
        cache,
        JwtToken(
            refreshed.access_token,
            refresh_token=refreshed.refresh_token,
            expires_at=int(time.time()) + 5,
        ),
    )
    soon = create_connection(node.url, "alice-node", token_cache_dir=tmp_path, home=tmp_path)
    create_client(soon).list_contexts()
    assert soon.token_source == "refresh"
    renewed = load_cached(cache)
    assert renewed is not None and renewed.access_token != saved.access_token
    assert renewed.refresh_token != saved.refresh_token, "refresh tokens are single-use"


def test_an_expired_access_token_is_refreshed_on_401(tmp_path: Path) -> None:
    short = Node("short-ttl", ["server.auth.access_ttl_secs=1"], users={"bob": "bob-password"})
    try:
        conn = create_connection(
            short.url, "bob-node", username="bob", password="bob-password",
            token_cache_dir=tmp_path, home=tmp_path,
        )
        create_client(conn).list_contexts()
        pair = conn.token()
        assert pair is not None and pair.refresh_token
        # Cache the pair claiming a far expiry, so only the node's 401 tells.
        cache = get_token_cache_path("bob-node", tmp_path)
        save_cached(
            cache,
            JwtToken(pair.access_token, refresh_token=pair.refresh_token,
                     expires_at=int(time.time()) + 3600),
        )

        def refused():
            r = httpx.get(
                short.url + "/admin-api/contexts",
                headers={"Authorization": f"Bearer {pair.access_token}"},
                trust_env=False,
            )
            return True if r.status_code == 401 else None

        wait_for("the access token to expire", refused, timeout=30)
        stale = create_connection(short.url, "bob-node", token_cache_dir=tmp_path, home=tmp_path)
        create_client(stale).list_contexts()
        assert stale.token_source == "refresh"
        cached = load_cached(cache)
        assert cached is not None and cached.refresh_token != pair.refresh_token
    finally:
        short.close()


def test_a_spent_refresh_token_falls_back_to_login(node: Node, tmp_path: Path) -> None:
    login = dict(username="alice", password="alice-password", token_cache_dir=tmp_path, home=tmp_path)
    first_conn = create_connection(node.url, "alice-2", **login)
    create_client(first_conn).list_contexts()
    first = first_conn.token()
    assert first is not None and first.refresh_token
    # Spend the refresh token elsewhere, then leave a broken access token in
    # the cache: refreshing fails, so the client logs in again.
    spent = httpx.post(
        node.url + "/auth/refresh",
        json={"access_token": first.access_token, "refresh_token": first.refresh_token},
        trust_env=False,
    )
    assert spent.status_code == 200, spent.text
    cache = get_token_cache_path("alice-2", tmp_path)
    save_cached(cache, JwtToken("broken", refresh_token=first.refresh_token))
    conn = create_connection(node.url, "alice-2", **login)
    create_client(conn).list_contexts()
    assert conn.token_source == "login"


def test_a_wrong_password_is_an_authentication_error(node: Node, tmp_path: Path) -> None:
    c = create_client(
        create_connection(
            node.url, "mallory", username="alice", password="wrong-password",
            token_cache_dir=tmp_path, home=tmp_path,
        )
    )
    with pytest.raises(AuthenticationError):
        c.list_contexts()


def test_scoped_tokens_are_refused_outside_their_scope(node: Node, client, kv_app) -> None:
    ns = new_namespace(client, kv_app)
    ctx = ns["contextId"]
    minted = client.create_token([f"context:execute[{ctx}]"], 600, name="py-test")["data"]
    assert minted["permissions"] == [f"context:execute[{ctx}]"]
    scoped = create_client(create_connection(node.url, token=minted["access_token"]))
    scoped.execute_function(ctx, "set", {"key": "scoped", "value": "yes"})
    with pytest.raises(ForbiddenError) as e:
        scoped.list_applications()
    assert e.value.status == 403
    other = new_namespace(client, kv_app)["contextId"]
    with pytest.raises(ExecutionError) as e2:
        scoped.execute_function(other, "get", {"key": "x"})
    assert e2.value.error_type == "Unauthorized" and e2.value.status == 403
    client.revoke_token(minted["access_token"])
    with pytest.raises(AuthenticationError):
        scoped.execute_function(ctx, "get", {"key": "scoped"})


def test_cache_paths_match_upstreams_derivation() -> None:
    assert get_token_cache_dir() == str(Path.home() / ".merobox" / "auth_cache")
    name = token_cache_filename("https://my-node.example.com:8080")
    assert name.startswith("https___my-node.example.com_8080-") and name.endswith(".json")
    assert len(name.split("-")[-1]) == len("123456789abc.json")
    assert token_cache_filename("a" * 1000).startswith("a" * 64 + "-")
    assert token_cache_filename("node-alpha") != token_cache_filename("node-beta")


def test_unreachable_nodes_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        create_connection("not a url")
    with pytest.raises(ValueError):
        create_connection("ftp://127.0.0.1:1")
    with pytest.raises(ValueError):
        create_connection("http://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError):
        create_connection("http://127.0.0.1:1", username="only-a-user")
    # A port nothing listens on: retried, then a NetworkError.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = create_client(
        create_connection(
            f"http://127.0.0.1:{port}", token="t", retries=2, retry_backoff=0.01, timeout=2
        )
    )
    started = time.monotonic()
    with pytest.raises(NetworkError) as e:
        c.list_contexts()
    assert e.value.status is None and "ConnectError" in e.value.error_type
    assert time.monotonic() - started < 10


def test_connection_properties(node: Node) -> None:
    conn = node.connection()
    assert conn.api_url == node.url + "/"
    assert conn.node_name == node.name
    assert create_client(conn).get_api_url() == node.url + "/"
    assert conn.get("admin-api/health")["data"]["status"] == "alive"
    token = conn.token()
    assert token is not None and token.expires_at and not token.is_expired()
    assert "..." in repr(token) and token.access_token not in repr(token)
    assert json.loads(json.dumps(token.to_json()))["access_token"] == token.access_token
