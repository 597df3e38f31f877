"""The synchronous client: one method per node route, named, with
arguments and results as in calimero-client-py.

Results are the node's JSON as it comes (admin answers inside
`{"data": ...}`); their `TypedDict`s are in `mero_client.types`. Failures
raise `mero_client.errors.MeroError` subclasses.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from . import _specs as s
from . import types as t
from ._specs import JsonLike
from .capabilities import CapabilitiesLike
from .connection import ConnectionInfo

__all__ = ["Client", "create_client", "cascade_summary"]


class Client:
    """A synchronous client of one node. Made by `create_client`."""

    def __init__(self, connection: ConnectionInfo) -> None:
        if not isinstance(connection, ConnectionInfo):
            raise TypeError("create_client takes a ConnectionInfo from create_connection")
        self.connection = connection
        """The connection it sends through (shared token and settings)."""

    def _run(self, call: Any) -> Any:
        return self.connection.request(call)

    def close(self) -> None:
        """Closes the connection's HTTP pool."""
        self.connection.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------- node

    def get_api_url(self) -> str:
        """The node's URL."""
        return self.connection.api_url

    def health(self) -> t.HealthResponse:
        """`GET /admin-api/health` (no token needed): `{"data": {"status": "alive"}}`."""
        return self._run(s.health())

    def get_peers_count(self) -> t.PeersCountResponse:
        """Connected peers: `{"count": n}`."""
        return self._run(s.get_peers_count())

    def is_authed(self) -> Any:
        """`GET /admin-api/is-authed`: `{"data": {"status", "permissions"}}`
        for the token this client sends."""
        return self._run(s.is_authed())

    # ----------------------------------------------------- applications

    def install_dev_application(
        self,
        path: str,
        metadata: Union[bytes, str, None] = None,
        *,
        package: Optional[str] = None,
        version: Optional[str] = None,
    ) -> t.InstallApplicationResponse:
        """Installs the component at `path` on the node's own filesystem:
        `{"data": {"applicationId"}}`. `package`/`version`, if given, must
        match what the component declares."""
        return self._run(s.install_dev_application(path, metadata, package, version))

    def install_application(
        self,
        url: str,
        hash: Optional[str] = None,
        metadata: Union[bytes, str, None] = None,
        *,
        package: Optional[str] = None,
        version: Optional[str] = None,
    ) -> t.InstallApplicationResponse:
        """Installs from `url` (the node fetches it; loopback URLs only).
        `hash` is the SHA-256 of the bytes, in hex (as upstream) or base58."""
        return self._run(s.install_application(url, hash, metadata, package, version))

    def install_application_bytes(
        self,
        data: bytes,
        metadata: Union[bytes, str, None] = None,
        *,
        package: Optional[str] = None,
        version: Optional[str] = None,
    ) -> t.InstallApplicationResponse:
        """Uploads a component's bytes and installs it (ours; what
        `meroctl app install --path` does)."""
        return self._run(s.install_application_bytes(data, metadata, package, version))

    def list_applications(self) -> t.ListApplicationsResponse:
        """`{"data": {"apps": [...]}}`."""
        return self._run(s.list_applications())

    def get_application(self, app_id: str) -> t.GetApplicationResponse:
        """`{"data": {"application": {...}}}`; `NotFoundError` if unknown."""
        return self._run(s.get_application(app_id))

    def uninstall_application(self, app_id: str) -> t.UninstallApplicationResponse:
        """Uninstalls; `ConflictError` while contexts run it."""
        return self._run(s.uninstall_application(app_id))

    def list_application_versions(self, application_id: str) -> t.ListApplicationVersionsResponse:
        """Installed versions of the application's package:
        `{"data": [{"version", "blobId", "size", "package", ...}]}`."""
        return self._run(s.list_application_versions(application_id))

    # ------------------------------------------------------- namespaces

    def create_namespace(
        self,
        application_id: str,
        name: Optional[str] = None,
        app_key: Optional[str] = None,
        *,
        params: Optional[JsonLike] = None,
    ) -> t.CreateNamespaceResponse:
        """Creates a namespace (and its first context, whose `init` gets
        `params`): `{"data": {"namespaceId", "contextId"}}`."""
        return self._run(s.create_namespace(application_id, name, app_key, params))

    def get_namespace(self, namespace_id: str) -> t.GetNamespaceResponse:
        """`{"data": {...}}`."""
        return self._run(s.get_namespace(namespace_id))

    def list_namespaces(self) -> t.ListNamespacesResponse:
        """`{"data": [...]}`."""
        return self._run(s.list_namespaces())

    def delete_namespace(self, namespace_id: str) -> t.DeleteResponse:
        """Deletes a namespace and its contexts from this node."""
        return self._run(s.delete_namespace(namespace_id))

    def create_namespace_invitation(
        self,
        namespace_id: str,
        recursive: Optional[bool] = None,
        expiration_timestamp: Optional[int] = None,
        *,
        role: Optional[str] = None,
        chain_accounts: Optional[Sequence[str]] = None,
        min_token_balances: Optional[Sequence[str]] = None,
    ) -> t.CreateInvitationResponse:
        """Signs an invitation: `{"data": {"invitation", "groupName"}}`.
        `expiration_timestamp` is seconds from now; `role` is `admin`,
        `member` (default) or `read-only`. `min_token_balances`
        (`["ethereum:<token>:<at least>"]`, with the joiner's account in
        `chain_accounts`) gates the join on a token balance the admitting
        node reads through its relayer."""
        return self._run(
            s.create_namespace_invitation(
                namespace_id,
                recursive,
                expiration_timestamp,
                role,
                chain_accounts,
                min_token_balances,
            )
        )

    def join_namespace(
        self,
        namespace_id: str,
        invitation_json: JsonLike,
        *,
        chain_proofs: Optional[Sequence[Mapping[str, Any]]] = None,
    ) -> t.JoinNamespaceResponse:
        """Joins with an invitation (its JSON text, or the object; the whole
        `create_namespace_invitation` answer is accepted too). An invitation
        bound to chain accounts (`chain_accounts=["ethereum:0x…"]` on the
        inviter's side) needs `chain_proofs`: one `{"signature": …}` per
        account, the account key's signature of `get_chain_challenge`'s
        message asked of this (the joining) node; optional `account`,
        `publicKey`, `scheme` as for `prove_chain_identity`."""
        return self._run(s.join_namespace(namespace_id, invitation_json, chain_proofs))

    def leave_namespace(self, namespace_id: str) -> t.EmptyResponse:
        """This node leaves the namespace (it cannot rejoin)."""
        return self._run(s.leave_namespace(namespace_id))

    def list_namespace_groups(self, namespace_id: str) -> t.ListNamespaceGroupsResponse:
        """The namespace's subgroups: `{"data": [...]}`."""
        return self._run(s.list_namespace_groups(namespace_id))

    def get_chain_challenge(
        self, namespace_id: str, chain: str, account: str
    ) -> t.ChainChallengeResponse:
        """The challenge this node's member signs with a chain account's key
        (`chain`: `near`, `ethereum`, `icp` or `stellar`):
        `{"data": {"message", "nonce", "expires", "signing", ...}}`; sign
        `message` as `signing` says (Ethereum: `personal_sign`)."""
        return self._run(s.get_chain_challenge(namespace_id, chain, account))

    def prove_chain_identity(
        self,
        namespace_id: str,
        chain: str,
        account: str,
        signature: str,
        *,
        public_key: Optional[str] = None,
        scheme: Optional[str] = None,
    ) -> t.ChainIdentityResponse:
        """Attaches the account to this node's member with the signature of
        the current challenge's message (`public_key` for ICP and named NEAR
        accounts; `scheme` `eip712` for typed data). Every member's node
        verifies it: `{"data": {"member", "chain", "account", "publicKey",
        "onChain"}}`. A forged, expired or reused proof raises
        `BadRequestError` (`ChainProofRefused`)."""
        return self._run(
            s.prove_chain_identity(namespace_id, chain, account, signature, public_key, scheme)
        )

    def list_chain_identities(self, namespace_id: str) -> t.ListChainIdentitiesResponse:
        """The chain identities the namespace's members have proven:
        `{"data": {"identities": [...]}}`."""
        return self._run(s.list_chain_identities(namespace_id))

    def chain_balance(
        self, chain: str, account: str, token: Optional[str] = None
    ) -> t.ChainReadingResponse:
        """An account's balance (native, or of `token`, an ERC-20 contract)
        as the chain says at its latest block, through the node's relayer
        (`[chains.ethereum] rpc_url`; only Ethereum has one):
        `{"data": {"network", "blockNumber", "blockHash", "balance", ...}}`."""
        return self._run(s.chain_balance(chain, account, token))

    def attest_chain(
        self, chain: str, account: str, at_least: Any, token: Optional[str] = None
    ) -> t.AttestationResponse:
        """Asks the chain whether `account` holds at least `at_least` (base
        units; of `token` if given) and returns the answer signed by the
        node (`holds` true or false), to keep or check with
        `verify_attestation`."""
        return self._run(s.attest_chain(chain, account, at_least, token))

    def verify_attestation(self, attestation: Mapping[str, Any]) -> t.AttestationVerifiedResponse:
        """Checks an attestation's signature (by the node it names); a forged
        or altered one is refused (`BadRequestError`, `AttestationRefused`)."""
        return self._run(s.verify_attestation(attestation))

    def list_attestations(self, namespace_id: str) -> t.ListAttestationsResponse:
        """The attestations members' nodes recorded in the namespace's
        governance (e.g. before admitting a join gated by a token balance)."""
        return self._run(s.list_attestations(namespace_id))

    def create_group_in_namespace(
        self,
        namespace_id: str,
        group_name: Optional[str] = None,
        *,
        parent_group_id: Optional[str] = None,
        visibility: Optional[str] = None,
    ) -> t.CreateGroupResponse:
        """Creates a subgroup (`visibility` `open`, the default, or
        `restricted`): `{"data": {"groupId"}}`."""
        return self._run(
            s.create_group_in_namespace(namespace_id, group_name, parent_group_id, visibility)
        )

    # ---------------------------------------------- groups and members

    def list_group_members(self, group_id: str) -> t.ListGroupMembersResponse:
        """`{"members": [{"identity", "role"}]}` (not wrapped, as upstream)."""
        return self._run(s.list_group_members(group_id))

    def list_group_contexts(self, group_id: str) -> t.ListGroupContextsResponse:
        """`{"data": [{"contextId", "name"}]}`."""
        return self._run(s.list_group_contexts(group_id))

    def add_group_members(self, group_id: str, members_json: JsonLike) -> t.EmptyResponse:
        """Admits namespace members to a subgroup: a JSON list of
        `{"identity", "role"}` (or of identities)."""
        return self._run(s.add_group_members(group_id, members_json))

    def remove_group_members(self, group_id: str, members_json: JsonLike) -> t.EmptyResponse:
        """Removes members: a JSON list of accounts (64 hex)."""
        return self._run(s.remove_group_members(group_id, members_json))

    def update_member_role(self, group_id: str, member_id: str, role: str) -> t.EmptyResponse:
        """Sets a member's role: `admin`, `member` or `read-only`."""
        return self._run(s.update_member_role(group_id, member_id, role))

    def set_member_capabilities(
        self, group_id: str, member_id: str, capabilities: CapabilitiesLike
    ) -> t.EmptyResponse:
        """Sets a member's whole capability mask (absolute: bits not given
        are cleared). Takes an int, `Capability` flags or names."""
        return self._run(s.set_member_capabilities(group_id, member_id, capabilities))

    def get_member_capabilities(self, group_id: str, member_id: str) -> t.MemberCapabilitiesResponse:
        """`{"data": {"capabilities": mask}}` (decode with `Capability(mask)`)."""
        return self._run(s.get_member_capabilities(group_id, member_id))

    def set_subgroup_visibility(self, group_id: str, visibility: str) -> t.EmptyResponse:
        """`open` or `restricted`."""
        return self._run(s.set_subgroup_visibility(group_id, visibility))

    # --------------------------------------------------------- metadata

    def set_group_metadata(self, group_id: str, body_json: JsonLike) -> t.EmptyResponse:
        """Upstream's `PUT /groups/:id/metadata` with `{"name", "data"}`
        (not served by the node yet)."""
        return self._run(s.set_group_metadata(group_id, body_json))

    def get_group_metadata(self, group_id: str) -> t.GetMetadataResponse:
        """`{"data": record | null}` (not served by the node yet)."""
        return self._run(s.get_group_metadata(group_id))

    def set_member_metadata(self, group_id: str, member_id: str, body_json: JsonLike) -> t.EmptyResponse:
        """A member's metadata record (not served by the node yet)."""
        return self._run(s.set_member_metadata(group_id, member_id, body_json))

    def get_member_metadata(self, group_id: str, member_id: str) -> t.GetMetadataResponse:
        """A member's metadata record (not served by the node yet)."""
        return self._run(s.get_member_metadata(group_id, member_id))

    def set_context_metadata(self, group_id: str, context_id: str, body_json: JsonLike) -> t.EmptyResponse:
        """A context's metadata record (not served by the node yet)."""
        return self._run(s.set_context_metadata(group_id, context_id, body_json))

    def get_context_metadata(self, group_id: str, context_id: str) -> t.GetMetadataResponse:
        """A context's metadata record (not served by the node yet)."""
        return self._run(s.get_context_metadata(group_id, context_id))

    # --------------------------------------------------------- contexts

    def create_context(
        self,
        application_id: str,
        group_id: str,
        params: Optional[JsonLike] = None,
        service_name: Optional[str] = None,
        *,
        name: Optional[str] = None,
        context_seed: Optional[str] = None,
    ) -> t.CreateContextResponse:
        """Creates a context in a namespace or subgroup and runs `init` with
        `params` (JSON text or a value): `{"data": {"contextId",
        "memberPublicKey", "groupId", "groupCreated"}}`."""
        return self._run(
            s.create_context(application_id, group_id, params, service_name, name, context_seed)
        )

    def get_context(self, context_id: str) -> t.GetContextResponse:
        """`{"data": {"id", "applicationId", "contextStateHash", ...}}`."""
        return self._run(s.get_context(context_id))

    def list_contexts(self) -> t.ListContextsResponse:
        """`{"data": {"contexts": [...]}}`."""
        return self._run(s.list_contexts())

    def delete_context(self, context_id: str) -> t.DeleteResponse:
        """Deletes the context from this node."""
        return self._run(s.delete_context(context_id))

    def join_context(self, context_id: str) -> t.JoinContextResponse:
        """Joins a context of a namespace this node is a member of and pulls
        its state: `{"data": {"contextId", "memberPublicKey"}}`."""
        return self._run(s.join_context(context_id))

    def sync_context(self, context_id: str) -> t.NullDataResponse:
        """Starts a sync round with peers now."""
        return self._run(s.sync_context(context_id))

    def sync_all_contexts(self) -> t.NullDataResponse:
        """Starts a sync round of every context now."""
        return self._run(s.sync_all_contexts())

    def resync_context(self, context_id: str, force: bool = False) -> t.ResyncContextResponse:
        """Upstream's `POST /contexts/:id/resync` (adopt a peer's snapshot):
        `{"contextId", "resyncStarted"}` (not served by the node yet)."""
        return self._run(s.resync_context(context_id, force))

    def create_context_alias(self, alias: str, context_id: str) -> t.NullDataResponse:
        """Names a context on this node."""
        return self._run(s.create_context_alias(alias, context_id))

    def lookup_context_alias(self, alias: str) -> t.LookupAliasResponse:
        """`{"data": {"value": context_id | null}}`."""
        return self._run(s.lookup_context_alias(alias))

    def resolve_context_alias(self, alias: str) -> Optional[str]:
        """The context id an alias names, or None."""
        value = self.lookup_context_alias(alias)["data"]["value"]
        return value

    def delete_context_alias(self, alias: str) -> t.NullDataResponse:
        """Removes a context alias."""
        return self._run(s.delete_context_alias(alias))

    def list_context_aliases(self) -> t.ListAliasesResponse:
        """`{"data": {alias: context_id}}`."""
        return self._run(s.list_context_aliases())

    def execute_function(
        self,
        context_id: str,
        method: str,
        args: Optional[JsonLike] = None,
        executor_public_key: str = "",
    ) -> t.JsonRpcResponse:
        """Calls an app method over JSON-RPC; `args` is a JSON object (text,
        as upstream, or a dict) keyed by parameter name. Returns the
        JSON-RPC response: the value is `["result"]["output"]`. A failed
        call raises `ExecutionError` (upstream returns the error body).
        `executor_public_key` is accepted and ignored, as upstream."""
        del executor_public_key
        return self._run(s.execute_function(context_id, method, args))

    def call(self, context_id: str, method: str, args: Optional[JsonLike] = None) -> Any:
        """`execute_function(...)["result"]["output"]`: the method's value."""
        return self.execute_function(context_id, method, args)["result"]["output"]

    # --------------------------------------------------------- upgrades

    def upgrade_group(
        self,
        group_id: str,
        target_application_id: str,
        cascade: bool = False,
        *,
        force_code_only: bool = False,
    ) -> t.UpgradeGroupResponse:
        """Moves a group's contexts to another version of their app:
        `{"data": {"groupId", "status", ...}}`. A refused or failed upgrade
        raises (`ConflictError` with the node's reason as `error_type`,
        e.g. `MigrationCheckFailed`)."""
        return self._run(s.upgrade_group(group_id, target_application_id, cascade, force_code_only))

    def get_group_upgrade_status(self, group_id: str) -> t.GetGroupUpgradeStatusResponse:
        """`{"data": status | null}`."""
        return self._run(s.get_group_upgrade_status(group_id))

    def retry_group_upgrade(self, group_id: str) -> t.UpgradeGroupResponse:
        """Runs a failed upgrade again."""
        return self._run(s.retry_group_upgrade(group_id))

    def get_cascade_status(self, namespace_id: str) -> t.GetCascadeStatusResponse:
        """Upstream's `GET /groups/:ns/cascade-status`: `{"data": [{"groupId",
        "upgrade", "cascadeHlc"}]}` (not served by the node yet)."""
        return self._run(s.get_cascade_status(namespace_id))

    def get_migration_status(self, namespace_id: str) -> t.MigrationStatusResponse:
        """Upstream's `GET /groups/:ns/migration-status` (flat: `{"targetVersion",
        "expectedMembers", "members", "rollup", ...}`; not served by the node yet)."""
        return self._run(s.get_migration_status(namespace_id))

    def abort_migration(self, namespace_id: str) -> t.AbortMigrationResponse:
        """Upstream's `POST /groups/:ns/migration/abort`: `{"namespaceId",
        "aborted"}` (not served by the node yet)."""
        return self._run(s.abort_migration(namespace_id))

    # ------------------------------------------------------------- tokens

    def create_token(
        self, permissions: Iterable[str], expires_in_secs: int, name: Optional[str] = None
    ) -> t.CreateTokenResponse:
        """Mints a scoped token (ours; `meroctl token create`):
        `{"data": {"access_token", "jti", "expires_at", "permissions"}}`."""
        return self._run(s.create_token(permissions, expires_in_secs, name))

    def revoke_token(self, token: Optional[str] = None, *, jti: Optional[str] = None) -> Any:
        """Revokes a token's session at once (ours; `meroctl token revoke`)."""
        return self._run(s.revoke_token(token, jti))


def create_client(connection: ConnectionInfo) -> Client:
    """A synchronous `Client` over `connection` (as calimero-client-py)."""
    return Client(connection)


def cascade_summary(status: t.GetCascadeStatusResponse) -> t.CascadeSummary:
    """Counts a `get_cascade_status` answer as merobox does: groups whose
    upgrade status is `completed`, `failed`, and the rest pending."""
    entries = status.get("data") or []
    states = [str((e.get("upgrade") or {}).get("status", "")).lower() for e in entries]
    completed = states.count("completed")
    failed = states.count("failed")
    total = len(states)
    return {
        "total": total,
        "completed": completed,
        "failed": failed,
        "pending": total - completed - failed,
        "all_completed": total > 0 and completed == total,
    }
