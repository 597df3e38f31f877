"""The asyncio client: the same methods as `Client`, as coroutines, plus
event subscriptions over WebSocket and SSE as async iterators.

```python
async with create_async_client(create_connection(url, "node1")) as client:
    ctx = (await client.list_contexts())["data"]["contexts"][0]["id"]
    async with client.subscribe_sse(context_ids=[ctx]) as events:
        async for event in events:
            print(event.type, event.data)
```
"""

from __future__ import annotations

import asyncio
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import httpx

from . import _specs as s
from . import auth as _auth
from . import types as t
from ._http import Call, decode, parse_json
from ._specs import JsonLike
from .capabilities import CapabilitiesLike
from .client import cascade_summary
from .connection import _RETRY_IDEMPOTENT, _RETRY_SAFE, ConnectionInfo
from .errors import NetworkError
from .events import SseSubscription, WsSubscription

__all__ = ["AsyncClient", "create_async_client", "cascade_summary"]


class _AsyncTransport:
    """Sends `Call`s with an `httpx.AsyncClient`, sharing the connection's
    token and settings."""

    def __init__(self, connection: ConnectionInfo) -> None:
        self.conn = connection
        self._lock: Optional[asyncio.Lock] = None
        self._http: Optional[httpx.AsyncClient] = None

    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.conn.httpx_timeout(), trust_env=False)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(self, call: Call, bearer: Optional[str]) -> httpx.Response:
        c = self.conn
        content, headers = call.body()
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        last: Optional[Exception] = None
        for attempt in range(c.retries + 1):
            if attempt:
                await asyncio.sleep(c.retry_backoff * (2 ** (attempt - 1)))
            try:
                resp = await self.client().request(
                    call.method,
                    c.url(call.path),
                    content=content,
                    headers=headers,
                    params=dict(call.params) if call.params else None,
                )
            except _RETRY_SAFE as e:
                last = e
                continue
            except _RETRY_IDEMPOTENT as e:
                last = e
                if call.idempotent:
                    continue
                break
            except httpx.HTTPError as e:
                last = e
                break
            if resp.status_code == 503 and call.idempotent and attempt < c.retries:
                continue
            return resp
        raise NetworkError(
            type(last).__name__ if last else "NetworkError",
            f"{call.method} {c.url(call.path)}: {last}",
        )

    async def _post_public(self, path: str, body: Dict[str, Any]) -> Tuple[int, Any]:
        resp = await self.send(Call("POST", path, json=body, public=True), None)
        return resp.status_code, parse_json(resp.content)

    async def _login(self) -> Optional[_auth.JwtToken]:
        assert self.conn._login is not None
        status, body = await self._post_public(
            "/auth/token", _auth.login_body(self.conn._base, *self.conn._login)
        )
        return _auth.token_from_answer(body) if status == 200 else None

    async def _refresh(self, token: _auth.JwtToken) -> Optional[_auth.JwtToken]:
        status, body = await self._post_public("/auth/refresh", _auth.refresh_body(token))
        return _auth.token_from_answer(body) if status == 200 else None

    async def recover(self, failed: Optional[str]) -> bool:
        c = self.conn
        if c._token is not None and c._token.access_token != failed:
            return True
        current = c._token
        if current is not None and current.refresh_token:
            new = await self._refresh(current)
            if new is not None:
                c._adopt(new, "refresh")
                return True
        if c._login is not None:
            new = await self._login()
            if new is not None:
                c._adopt(new, "login")
                return True
        found = c._local_fallback(failed)
        if found is not None:
            c._adopt(*found)
            return True
        return False

    async def bearer(self) -> Optional[str]:
        c = self.conn
        async with self.lock():
            if not c._resolved:
                token, source = c._resolve_local()
                if token is None and c._login is not None:
                    token, source = await self._login(), "login"
                if token is None:
                    token, source = c._credential_token(), "credential"
                c._adopt(token, source if token is not None else "none")
            tok = c._token
            if tok is not None and tok.refresh_token and tok.is_expired(_auth.EXPIRY_MARGIN_SECS):
                await self.recover(tok.access_token)
            return c._token.access_token if c._token is not None else None

    async def renew(self, failed: Optional[str]) -> Optional[str]:
        """After a 401 with `failed`: a new token, or None."""
        async with self.lock():
            if await self.recover(failed):
                return self.conn._token.access_token if self.conn._token else None
        return None

    async def request(self, call: Call) -> Any:
        bearer = None if call.public else await self.bearer()
        resp = await self.send(call, bearer)
        if resp.status_code == 401 and not call.public:
            renewed = await self.renew(bearer)
            if renewed is not None:
                resp = await self.send(call, renewed)
        return decode(call, resp.status_code, resp.content)


class AsyncClient:
    """An asyncio client of one node; the methods of `Client`, awaited.
    Made by `create_async_client`; close it with `aclose()` or `async with`."""

    def __init__(self, connection: ConnectionInfo) -> None:
        if not isinstance(connection, ConnectionInfo):
            raise TypeError("create_async_client takes a ConnectionInfo from create_connection")
        self.connection = connection
        self._t = _AsyncTransport(connection)

    async def _run(self, call: Call) -> Any:
        return await self._t.request(call)

    async def aclose(self) -> None:
        """Closes the HTTP pool."""
        await self._t.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------- events

    def subscribe_ws(
        self,
        context_ids: Sequence[str] = (),
        group_ids: Sequence[str] = (),
        event_types: Optional[Sequence[str]] = None,
    ) -> WsSubscription:
        """Events of these contexts (base58) and namespaces/groups (hex) over
        `/ws`: `async with client.subscribe_ws([ctx]) as events: async for
        event in events: ...`. Subscribing to what the node may not serve
        raises (`NotFoundError`, `ForbiddenError`)."""
        return WsSubscription(self._t, list(context_ids), list(group_ids), event_types)

    def subscribe_sse(
        self,
        context_ids: Sequence[str] = (),
        group_ids: Sequence[str] = (),
        event_types: Optional[Sequence[str]] = None,
        *,
        last_event_id: Optional[str] = None,
        session_id: Optional[str] = None,
        max_reconnects: int = 5,
    ) -> SseSubscription:
        """Events over `/sse`. A broken stream is reopened with
        `Last-Event-ID` and the session id, so the node replays what was
        missed (or sends a `Gap` event, yielded like any other).
        `last_event_id`/`session_id` resume a stream of an earlier
        subscription (`.last_event_id`, `.session_id`)."""
        return SseSubscription(
            self._t,
            list(context_ids),
            list(group_ids),
            event_types,
            last_event_id=last_event_id,
            session_id=session_id,
            max_reconnects=max_reconnects,
        )

    # ------------------------------------------------------------- node

    def get_api_url(self) -> str:
        """The node's URL (no I/O, so not a coroutine)."""
        return self.connection.api_url

    async def health(self) -> t.HealthResponse:
        """See `Client.health`."""
        return await self._run(s.health())

    async def get_peers_count(self) -> t.PeersCountResponse:
        """See `Client.get_peers_count`."""
        return await self._run(s.get_peers_count())

    async def is_authed(self) -> Any:
        """See `Client.is_authed`."""
        return await self._run(s.is_authed())

    # ----------------------------------------------------- applications

    async def install_dev_application(
        self,
        path: str,
        metadata: Union[bytes, str, None] = None,
        *,
        package: Optional[str] = None,
        version: Optional[str] = None,
    ) -> t.InstallApplicationResponse:
        """See `Client.install_dev_application`."""
        return await self._run(s.install_dev_application(path, metadata, package, version))

    async def install_application(
        self,
        url: str,
        hash: Optional[str] = None,
        metadata: Union[bytes, str, None] = None,
        *,
        package: Optional[str] = None,
        version: Optional[str] = None,
    ) -> t.InstallApplicationResponse:
        """See `Client.install_application`."""
        return await self._run(s.install_application(url, hash, metadata, package, version))

    async def install_application_bytes(
        self,
        data: bytes,
        metadata: Union[bytes, str, None] = None,
        *,
        package: Optional[str] = None,
        version: Optional[str] = None,
    ) -> t.InstallApplicationResponse:
        """See `Client.install_application_bytes`."""
        return await self._run(s.install_application_bytes(data, metadata, package, version))

    async def list_applications(self) -> t.ListApplicationsResponse:
        """See `Client.list_applications`."""
        return await self._run(s.list_applications())

    async def get_application(self, app_id: str) -> t.GetApplicationResponse:
        """See `Client.get_application`."""
        return await self._run(s.get_application(app_id))

    async def uninstall_application(self, app_id: str) -> t.UninstallApplicationResponse:
        """See `Client.uninstall_application`."""
        return await self._run(s.uninstall_application(app_id))

    async def list_application_versions(
        self, application_id: str
    ) -> t.ListApplicationVersionsResponse:
        """See `Client.list_application_versions`."""
        return await self._run(s.list_application_versions(application_id))

    # ------------------------------------------------------- namespaces

    async def create_namespace(
        self,
        application_id: str,
        name: Optional[str] = None,
        app_key: Optional[str] = None,
        *,
        params: Optional[JsonLike] = None,
    ) -> t.CreateNamespaceResponse:
        """See `Client.create_namespace`."""
        return await self._run(s.create_namespace(application_id, name, app_key, params))

    async def get_namespace(self, namespace_id: str) -> t.GetNamespaceResponse:
        """See `Client.get_namespace`."""
        return await self._run(s.get_namespace(namespace_id))

    async def list_namespaces(self) -> t.ListNamespacesResponse:
        """See `Client.list_namespaces`."""
        return await self._run(s.list_namespaces())

    async def delete_namespace(self, namespace_id: str) -> t.DeleteResponse:
        """See `Client.delete_namespace`."""
        return await self._run(s.delete_namespace(namespace_id))

    async def create_namespace_invitation(
        self,
        namespace_id: str,
        recursive: Optional[bool] = None,
        expiration_timestamp: Optional[int] = None,
        *,
        role: Optional[str] = None,
        chain_accounts: Optional[Sequence[str]] = None,
        min_token_balances: Optional[Sequence[str]] = None,
    ) -> t.CreateInvitationResponse:
        """See `Client.create_namespace_invitation`."""
        return await self._run(
            s.create_namespace_invitation(
                namespace_id,
                recursive,
                expiration_timestamp,
                role,
                chain_accounts,
                min_token_balances,
            )
        )

    async def join_namespace(
        self,
        namespace_id: str,
        invitation_json: JsonLike,
        *,
        chain_proofs: Optional[Sequence[Mapping[str, Any]]] = None,
    ) -> t.JoinNamespaceResponse:
        """See `Client.join_namespace`."""
        return await self._run(s.join_namespace(namespace_id, invitation_json, chain_proofs))

    async def leave_namespace(self, namespace_id: str) -> t.EmptyResponse:
        """See `Client.leave_namespace`."""
        return await self._run(s.leave_namespace(namespace_id))

    async def list_namespace_groups(self, namespace_id: str) -> t.ListNamespaceGroupsResponse:
        """See `Client.list_namespace_groups`."""
        return await self._run(s.list_namespace_groups(namespace_id))

    async def get_chain_challenge(
        self, namespace_id: str, chain: str, account: str
    ) -> t.ChainChallengeResponse:
        """See `Client.get_chain_challenge`."""
        return await self._run(s.get_chain_challenge(namespace_id, chain, account))

    async def prove_chain_identity(
        self,
        namespace_id: str,
        chain: str,
        account: str,
        signature: str,
        *,
        public_key: Optional[str] = None,
        scheme: Optional[str] = None,
    ) -> t.ChainIdentityResponse:
        """See `Client.prove_chain_identity`."""
        return await self._run(
            s.prove_chain_identity(namespace_id, chain, account, signature, public_key, scheme)
        )

    async def list_chain_identities(self, namespace_id: str) -> t.ListChainIdentitiesResponse:
        """See `Client.list_chain_identities`."""
        return await self._run(s.list_chain_identities(namespace_id))

    async def chain_balance(
        self, chain: str, account: str, token: Optional[str] = None
    ) -> t.ChainReadingResponse:
        """See `Client.chain_balance`."""
        return await self._run(s.chain_balance(chain, account, token))

    async def attest_chain(
        self, chain: str, account: str, at_least: Any, token: Optional[str] = None
    ) -> t.AttestationResponse:
        """See `Client.attest_chain`."""
        return await self._run(s.attest_chain(chain, account, at_least, token))

    async def verify_attestation(
        self, attestation: Mapping[str, Any]
    ) -> t.AttestationVerifiedResponse:
        """See `Client.verify_attestation`."""
        return await self._run(s.verify_attestation(attestation))

    async def list_attestations(self, namespace_id: str) -> t.ListAttestationsResponse:
        """See `Client.list_attestations`."""
        return await self._run(s.list_attestations(namespace_id))

    async def create_group_in_namespace(
        self,
        namespace_id: str,
        group_name: Optional[str] = None,
        *,
        parent_group_id: Optional[str] = None,
        visibility: Optional[str] = None,
    ) -> t.CreateGroupResponse:
        """See `Client.create_group_in_namespace`."""
        return await self._run(
            s.create_group_in_namespace(namespace_id, group_name, parent_group_id, visibility)
        )

    # ---------------------------------------------- groups and members

    async def list_group_members(self, group_id: str) -> t.ListGroupMembersResponse:
        """See `Client.list_group_members`."""
        return await self._run(s.list_group_members(group_id))

    async def list_group_contexts(self, group_id: str) -> t.ListGroupContextsResponse:
        """See `Client.list_group_contexts`."""
        return await self._run(s.list_group_contexts(group_id))

    async def add_group_members(self, group_id: str, members_json: JsonLike) -> t.EmptyResponse:
        """See `Client.add_group_members`."""
        return await self._run(s.add_group_members(group_id, members_json))

    async def remove_group_members(self, group_id: str, members_json: JsonLike) -> t.EmptyResponse:
        """See `Client.remove_group_members`."""
        return await self._run(s.remove_group_members(group_id, members_json))

    async def update_member_role(self, group_id: str, member_id: str, role: str) -> t.EmptyResponse:
        """See `Client.update_member_role`."""
        return await self._run(s.update_member_role(group_id, member_id, role))

    async def set_member_capabilities(
        self, group_id: str, member_id: str, capabilities: CapabilitiesLike
    ) -> t.EmptyResponse:
        """See `Client.set_member_capabilities`."""
        return await self._run(s.set_member_capabilities(group_id, member_id, capabilities))

    async def get_member_capabilities(
        self, group_id: str, member_id: str
    ) -> t.MemberCapabilitiesResponse:
        """See `Client.get_member_capabilities`."""
        return await self._run(s.get_member_capabilities(group_id, member_id))

    async def set_subgroup_visibility(self, group_id: str, visibility: str) -> t.EmptyResponse:
        """See `Client.set_subgroup_visibility`."""
        return await self._run(s.set_subgroup_visibility(group_id, visibility))

    # --------------------------------------------------------- metadata

    async def set_group_metadata(self, group_id: str, body_json: JsonLike) -> t.EmptyResponse:
        """See `Client.set_group_metadata`."""
        return await self._run(s.set_group_metadata(group_id, body_json))

    async def get_group_metadata(self, group_id: str) -> t.GetMetadataResponse:
        """See `Client.get_group_metadata`."""
        return await self._run(s.get_group_metadata(group_id))

    async def set_member_metadata(
        self, group_id: str, member_id: str, body_json: JsonLike
    ) -> t.EmptyResponse:
        """See `Client.set_member_metadata`."""
        return await self._run(s.set_member_metadata(group_id, member_id, body_json))

    async def get_member_metadata(self, group_id: str, member_id: str) -> t.GetMetadataResponse:
        """See `Client.get_member_metadata`."""
        return await self._run(s.get_member_metadata(group_id, member_id))

    async def set_context_metadata(
        self, group_id: str, context_id: str, body_json: JsonLike
    ) -> t.EmptyResponse:
        """See `Client.set_context_metadata`."""
        return await self._run(s.set_context_metadata(group_id, context_id, body_json))

    async def get_context_metadata(self, group_id: str, context_id: str) -> t.GetMetadataResponse:
        """See `Client.get_context_metadata`."""
        return await self._run(s.get_context_metadata(group_id, context_id))

    # --------------------------------------------------------- contexts

    async def create_context(
        self,
        application_id: str,
        group_id: str,
        params: Optional[JsonLike] = None,
        service_name: Optional[str] = None,
        *,
        name: Optional[str] = None,
        context_seed: Optional[str] = None,
    ) -> t.CreateContextResponse:
        """See `Client.create_context`."""
        return await self._run(
            s.create_context(application_id, group_id, params, service_name, name, context_seed)
        )

    async def get_context(self, context_id: str) -> t.GetContextResponse:
        """See `Client.get_context`."""
        return await self._run(s.get_context(context_id))

    async def list_contexts(self) -> t.ListContextsResponse:
        """See `Client.list_contexts`."""
        return await self._run(s.list_contexts())

    async def delete_context(self, context_id: str) -> t.DeleteResponse:
        """See `Client.delete_context`."""
        return await self._run(s.delete_context(context_id))

    async def join_context(self, context_id: str) -> t.JoinContextResponse:
        """See `Client.join_context`."""
        return await self._run(s.join_context(context_id))

    async def sync_context(self, context_id: str) -> t.NullDataResponse:
        """See `Client.sync_context`."""
        return await self._run(s.sync_context(context_id))

    async def sync_all_contexts(self) -> t.NullDataResponse:
        """See `Client.sync_all_contexts`."""
        return await self._run(s.sync_all_contexts())

    async def resync_context(self, context_id: str, force: bool = False) -> t.ResyncContextResponse:
        """See `Client.resync_context`."""
        return await self._run(s.resync_context(context_id, force))

    async def create_context_alias(self, alias: str, context_id: str) -> t.NullDataResponse:
        """See `Client.create_context_alias`."""
        return await self._run(s.create_context_alias(alias, context_id))

    async def lookup_context_alias(self, alias: str) -> t.LookupAliasResponse:
        """See `Client.lookup_context_alias`."""
        return await self._run(s.lookup_context_alias(alias))

    async def resolve_context_alias(self, alias: str) -> Optional[str]:
        """See `Client.resolve_context_alias`."""
        return (await self.lookup_context_alias(alias))["data"]["value"]

    async def delete_context_alias(self, alias: str) -> t.NullDataResponse:
        """See `Client.delete_context_alias`."""
        return await self._run(s.delete_context_alias(alias))

    async def list_context_aliases(self) -> t.ListAliasesResponse:
        """See `Client.list_context_aliases`."""
        return await self._run(s.list_context_aliases())

    async def execute_function(
        self,
        context_id: str,
        method: str,
        args: Optional[JsonLike] = None,
        executor_public_key: str = "",
    ) -> t.JsonRpcResponse:
        """See `Client.execute_function`."""
        del executor_public_key
        return await self._run(s.execute_function(context_id, method, args))

    async def call(self, context_id: str, method: str, args: Optional[JsonLike] = None) -> Any:
        """See `Client.call`."""
        return (await self.execute_function(context_id, method, args))["result"]["output"]

    # --------------------------------------------------------- upgrades

    async def upgrade_group(
        self,
        group_id: str,
        target_application_id: str,
        cascade: bool = False,
        *,
        force_code_only: bool = False,
    ) -> t.UpgradeGroupResponse:
        """See `Client.upgrade_group`."""
        return await self._run(
            s.upgrade_group(group_id, target_application_id, cascade, force_code_only)
        )

    async def get_group_upgrade_status(self, group_id: str) -> t.GetGroupUpgradeStatusResponse:
        """See `Client.get_group_upgrade_status`."""
        return await self._run(s.get_group_upgrade_status(group_id))

    async def retry_group_upgrade(self, group_id: str) -> t.UpgradeGroupResponse:
        """See `Client.retry_group_upgrade`."""
        return await self._run(s.retry_group_upgrade(group_id))

    async def get_cascade_status(self, namespace_id: str) -> t.GetCascadeStatusResponse:
        """See `Client.get_cascade_status`."""
        return await self._run(s.get_cascade_status(namespace_id))

    async def get_migration_status(self, namespace_id: str) -> t.MigrationStatusResponse:
        """See `Client.get_migration_status`."""
        return await self._run(s.get_migration_status(namespace_id))

    async def abort_migration(self, namespace_id: str) -> t.AbortMigrationResponse:
        """See `Client.abort_migration`."""
        return await self._run(s.abort_migration(namespace_id))

    # ------------------------------------------------------------- tokens

    async def create_token(
        self, permissions: Iterable[str], expires_in_secs: int, name: Optional[str] = None
    ) -> t.CreateTokenResponse:
        """See `Client.create_token`."""
        return await self._run(s.create_token(permissions, expires_in_secs, name))

    async def revoke_token(self, token: Optional[str] = None, *, jti: Optional[str] = None) -> Any:
        """See `Client.revoke_token`."""
        return await self._run(s.revoke_token(token, jti))


def create_async_client(connection: ConnectionInfo) -> AsyncClient:
    """An `AsyncClient` over `connection`."""
    return AsyncClient(connection)
