"""Every API method as a `Call`: its route, its body, the checks made on
its arguments before sending. `Client` and `AsyncClient` send these; so
both always do the same thing."""

from __future__ import annotations

import json
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Union

from ._http import Call, seg
from .capabilities import CapabilitiesLike, capability_mask, parse_role
from .errors import InvalidArgumentError
from .ids import check_b58_id, hex_to_b58

JsonLike = Union[str, bytes, Mapping[str, Any], Sequence[Any]]


def _json_arg(value: JsonLike, what: str) -> Any:
    """A JSON argument given as text (as upstream takes it) or as a value."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError as e:
            raise InvalidArgumentError("InvalidArgument", f"Invalid {what} JSON: {e}") from None
    return value


def _bytes_list(value: Union[bytes, str, None], default: bytes = b"") -> List[int]:
    raw = default if value is None else value.encode() if isinstance(value, str) else bytes(value)
    return list(raw)


def _app(app_id: str) -> str:
    return check_b58_id(app_id, "application ID")


def _ctx(context_id: str) -> str:
    return check_b58_id(context_id, "context ID")


# ------------------------------------------------------------------ node


def health() -> Call:
    return Call("GET", "/admin-api/health", public=True)


def get_peers_count() -> Call:
    return Call("GET", "/admin-api/peers")


def is_authed() -> Call:
    return Call("GET", "/admin-api/is-authed")


# ---------------------------------------------------------- applications


def install_dev_application(
    path: str,
    metadata: Union[bytes, str, None],
    package: Optional[str],
    version: Optional[str],
) -> Call:
    body: dict = {"path": str(path), "metadata": _bytes_list(metadata, b"{}")}
    if package is not None:
        body["package"] = package
    if version is not None:
        body["version"] = version
    return Call("POST", "/admin-api/install-dev-application", json=body)


def install_application(
    url: str,
    hash: Optional[str],
    metadata: Union[bytes, str, None],
    package: Optional[str],
    version: Optional[str],
) -> Call:
    body: dict = {"url": url, "metadata": _bytes_list(metadata, b"{}")}
    if hash is not None:
        # Upstream takes the digest in hex; the node reads base58.
        body["hash"] = hex_to_b58(hash) if len(hash) == 64 else hash
    if package is not None:
        body["package"] = package
    if version is not None:
        body["version"] = version
    return Call("POST", "/admin-api/install-application", json=body)


def install_application_bytes(
    data: bytes,
    metadata: Union[bytes, str, None],
    package: Optional[str],
    version: Optional[str],
) -> Call:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError("InvalidArgument", "data must be the component's bytes")
    params = {}
    if metadata is not None:
        params["metadata"] = metadata.decode() if isinstance(metadata, bytes) else str(metadata)
    if package is not None:
        params["package"] = package
    if version is not None:
        params["version"] = version
    return Call(
        "POST",
        "/admin-api/install-application",
        content=bytes(data),
        content_type="application/wasm",
        params=params or None,
    )


def list_applications() -> Call:
    return Call("GET", "/admin-api/applications")


def get_application(app_id: str) -> Call:
    return Call("GET", f"/admin-api/applications/{seg(_app(app_id))}")


def uninstall_application(app_id: str) -> Call:
    return Call("DELETE", f"/admin-api/applications/{seg(_app(app_id))}")


def list_application_versions(application_id: str) -> Call:
    return Call("GET", f"/admin-api/applications/{seg(_app(application_id))}/versions")


# ------------------------------------------------------------ namespaces


def create_namespace(
    application_id: str,
    name: Optional[str],
    app_key: Optional[str],
    params: Optional[JsonLike],
) -> Call:
    body: dict = {"applicationId": _app(application_id)}
    if name is not None:
        body["name"] = name
    if app_key is not None:
        body["appKey"] = app_key
    if params is not None:
        body["initializationParams"] = list(_init_params(params))
    return Call("POST", "/admin-api/namespaces", json=body)


def get_namespace(namespace_id: str) -> Call:
    return Call("GET", f"/admin-api/namespaces/{seg(namespace_id)}")


def list_namespaces() -> Call:
    return Call("GET", "/admin-api/namespaces")


def delete_namespace(namespace_id: str) -> Call:
    return Call("DELETE", f"/admin-api/namespaces/{seg(namespace_id)}")


def create_namespace_invitation(
    namespace_id: str,
    recursive: Optional[bool],
    expiration_timestamp: Optional[int],
    role: Optional[str],
    chain_accounts: Optional[Sequence[str]] = None,
    min_token_balances: Optional[Sequence[str]] = None,
) -> Call:
    body: dict = {}
    if min_token_balances:
        if isinstance(min_token_balances, str) or any(
            not isinstance(b, str) or b.count(":") < 2 for b in min_token_balances
        ):
            raise InvalidArgumentError(
                "InvalidArgument",
                "min_token_balances is a list of '<chain>:<token>:<at least>' "
                "(e.g. 'ethereum:0x…:100')",
            )
        body["minTokenBalances"] = list(min_token_balances)
    if chain_accounts:
        if isinstance(chain_accounts, str) or any(
            not isinstance(a, str) or ":" not in a for a in chain_accounts
        ):
            raise InvalidArgumentError(
                "InvalidArgument",
                "chain_accounts is a list of '<chain>:<account>' (e.g. 'ethereum:0x…')",
            )
        body["chainAccounts"] = list(chain_accounts)
    if expiration_timestamp is not None:
        if isinstance(expiration_timestamp, bool) or int(expiration_timestamp) < 0:
            raise InvalidArgumentError(
                "InvalidArgument", "expiration_timestamp is a number of seconds"
            )
        body["expirationTimestamp"] = int(expiration_timestamp)
    if recursive is not None:
        body["recursive"] = bool(recursive)
    if role is not None:
        body["role"] = {"Admin": "admin", "Member": "member", "ReadOnly": "read-only"}[
            parse_role(role)
        ]
    return Call("POST", f"/admin-api/namespaces/{seg(namespace_id)}/invite", json=body)


def join_namespace(
    namespace_id: str,
    invitation_json: JsonLike,
    chain_proofs: Optional[Sequence[Mapping[str, Any]]] = None,
) -> Call:
    invitation = _json_arg(invitation_json, "invitation")
    if not isinstance(invitation, Mapping):
        raise InvalidArgumentError("InvalidArgument", "Invalid invitation JSON: not an object")
    # What `create_namespace_invitation` returned whole, or its `data`: peel
    # wrappers down to the signed invitation (the one with a signature; it
    # holds an `invitation` of its own).
    if isinstance(invitation.get("data"), Mapping):
        invitation = invitation["data"]
    while (
        "inviter_signature" not in invitation
        and isinstance(invitation.get("invitation"), Mapping)
    ):
        invitation = invitation["invitation"]
    return Call(
        "POST",
        f"/admin-api/namespaces/{seg(namespace_id)}/join",
        json=_join_body(invitation, chain_proofs),
    )


def _join_body(invitation: Any, chain_proofs: Optional[Sequence[Mapping[str, Any]]]) -> dict:
    """The join body; an invitation bound to chain accounts takes one proof
    per account: `{"signature", "account"?, "publicKey"?, "scheme"?}`, the
    signature (by the account's key) of this node's chain challenge."""
    body: dict = {"invitation": invitation}
    if chain_proofs:
        proofs = []
        for p in chain_proofs:
            if not isinstance(p, Mapping) or not isinstance(p.get("signature"), str):
                raise InvalidArgumentError(
                    "InvalidArgument", "each chain proof is an object with a `signature`"
                )
            proofs.append({k: v for k, v in p.items() if v is not None})
        body["chainProofs"] = proofs
    return body


def leave_namespace(namespace_id: str) -> Call:
    return Call("POST", f"/admin-api/namespaces/{seg(namespace_id)}/leave")


def list_namespace_groups(namespace_id: str) -> Call:
    return Call("GET", f"/admin-api/namespaces/{seg(namespace_id)}/groups")


def get_chain_challenge(namespace_id: str, chain: str, account: str) -> Call:
    return Call(
        "POST",
        f"/admin-api/namespaces/{seg(namespace_id)}/chain-challenge",
        json={"chain": chain, "account": account},
    )


def prove_chain_identity(
    namespace_id: str,
    chain: str,
    account: str,
    signature: str,
    public_key: Optional[str],
    scheme: Optional[str],
) -> Call:
    body: dict = {"chain": chain, "account": account, "signature": signature}
    if public_key is not None:
        body["publicKey"] = public_key
    if scheme is not None:
        body["scheme"] = scheme
    return Call(
        "POST", f"/admin-api/namespaces/{seg(namespace_id)}/chain-identities", json=body
    )


def list_chain_identities(namespace_id: str) -> Call:
    return Call("GET", f"/admin-api/namespaces/{seg(namespace_id)}/chain-identities")


def chain_balance(chain: str, account: str, token: Optional[str]) -> Call:
    body: dict = {"account": account}
    if token is not None:
        body["token"] = token
    return Call("POST", f"/admin-api/chains/{seg(chain)}/balance", json=body)


def attest_chain(chain: str, account: str, at_least: Any, token: Optional[str]) -> Call:
    if isinstance(at_least, bool) or not str(at_least).isdigit():
        raise InvalidArgumentError(
            "InvalidArgument", "at_least is a whole number of base units (decimal)"
        )
    statement: dict = {"kind": "balance", "account": account, "atLeast": str(at_least)}
    if token is not None:
        statement = {
            "kind": "tokenBalance",
            "token": token,
            "account": account,
            "atLeast": str(at_least),
        }
    return Call("POST", f"/admin-api/chains/{seg(chain)}/attest", json={"statement": statement})


def verify_attestation(attestation: Mapping[str, Any]) -> Call:
    return Call("POST", "/admin-api/attestations/verify", json=dict(attestation))


def list_attestations(namespace_id: str) -> Call:
    return Call("GET", f"/admin-api/namespaces/{seg(namespace_id)}/attestations")


def create_group_in_namespace(
    namespace_id: str,
    group_name: Optional[str],
    parent_group_id: Optional[str],
    visibility: Optional[str],
) -> Call:
    body: dict = {}
    if group_name is not None:
        body["name"] = group_name
    if parent_group_id is not None:
        body["parentGroupId"] = parent_group_id
    if visibility is not None:
        body["subgroupVisibility"] = _visibility(visibility)
    return Call("POST", f"/admin-api/namespaces/{seg(namespace_id)}/groups", json=body)


def _visibility(v: str) -> str:
    v = str(v).lower()
    if v not in ("open", "restricted"):
        raise InvalidArgumentError(
            "InvalidVisibility", f"visibility is 'open' or 'restricted', not {v!r}"
        )
    return v


# --------------------------------------------------------------- groups


def list_group_members(group_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(group_id)}/members")


def list_group_contexts(group_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(group_id)}/contexts")


def add_group_members(group_id: str, members_json: JsonLike) -> Call:
    members = _json_arg(members_json, "members")
    if not isinstance(members, list) or not members:
        raise InvalidArgumentError(
            "InvalidArgument", "Invalid members JSON: a non-empty list of {identity, role}"
        )
    out = []
    for m in members:
        if isinstance(m, str):
            m = {"identity": m}
        if not isinstance(m, Mapping) or not isinstance(m.get("identity"), str):
            raise InvalidArgumentError("InvalidArgument", f"Invalid member {m!r}: needs identity")
        entry = {"identity": m["identity"]}
        if m.get("role") is not None:
            entry["role"] = parse_role(m["role"])
        out.append(entry)
    return Call("POST", f"/admin-api/groups/{seg(group_id)}/members", json={"members": out})


def remove_group_members(group_id: str, members_json: JsonLike) -> Call:
    members = _json_arg(members_json, "members")
    if (
        not isinstance(members, list)
        or not members
        or not all(isinstance(m, str) for m in members)
    ):
        raise InvalidArgumentError(
            "InvalidArgument",
            "Invalid members JSON — members are accounts, 64 hex characters",
        )
    return Call(
        "POST", f"/admin-api/groups/{seg(group_id)}/members/remove", json={"members": members}
    )


def update_member_role(group_id: str, member_id: str, role: str) -> Call:
    return Call(
        "PUT",
        f"/admin-api/groups/{seg(group_id)}/members/{seg(member_id)}/role",
        json={"role": parse_role(role)},
    )


def set_member_capabilities(group_id: str, member_id: str, capabilities: CapabilitiesLike) -> Call:
    return Call(
        "PUT",
        f"/admin-api/groups/{seg(group_id)}/members/{seg(member_id)}/capabilities",
        json={"capabilities": capability_mask(capabilities)},
    )


def get_member_capabilities(group_id: str, member_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(group_id)}/members/{seg(member_id)}/capabilities")


def set_subgroup_visibility(group_id: str, visibility: str) -> Call:
    return Call(
        "PUT",
        f"/admin-api/groups/{seg(group_id)}/settings/subgroup-visibility",
        json={"subgroupVisibility": _visibility(visibility)},
    )


# ---------------------------------------------------------- metadata
# Upstream's routes (`PUT`/`GET .../metadata`); the node does not serve them yet.


def _metadata_body(body_json: JsonLike) -> Any:
    body = _json_arg(body_json, "metadata")
    if not isinstance(body, Mapping):
        raise InvalidArgumentError("InvalidArgument", "Invalid metadata JSON: not an object")
    data = body.get("data", {})
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise InvalidArgumentError(
            "InvalidArgument", "Invalid metadata JSON: data maps strings to strings"
        )
    return dict(body)


def set_group_metadata(group_id: str, body_json: JsonLike) -> Call:
    return Call(
        "PUT", f"/admin-api/groups/{seg(group_id)}/metadata", json=_metadata_body(body_json)
    )


def get_group_metadata(group_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(group_id)}/metadata")


def set_member_metadata(group_id: str, member_id: str, body_json: JsonLike) -> Call:
    return Call(
        "PUT",
        f"/admin-api/groups/{seg(group_id)}/members/{seg(member_id)}/metadata",
        json=_metadata_body(body_json),
    )


def get_member_metadata(group_id: str, member_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(group_id)}/members/{seg(member_id)}/metadata")


def set_context_metadata(group_id: str, context_id: str, body_json: JsonLike) -> Call:
    return Call(
        "PUT",
        f"/admin-api/groups/{seg(group_id)}/contexts/{seg(_ctx(context_id))}/metadata",
        json=_metadata_body(body_json),
    )


def get_context_metadata(group_id: str, context_id: str) -> Call:
    return Call(
        "GET", f"/admin-api/groups/{seg(group_id)}/contexts/{seg(_ctx(context_id))}/metadata"
    )


# ------------------------------------------------------------- contexts


def _init_params(params: JsonLike) -> bytes:
    if isinstance(params, bytes):
        return params
    if isinstance(params, str):
        return params.encode()
    return json.dumps(params).encode()


def create_context(
    application_id: str,
    group_id: str,
    params: Optional[JsonLike],
    service_name: Optional[str],
    name: Optional[str],
    context_seed: Optional[str],
) -> Call:
    body: dict = {
        "applicationId": _app(application_id),
        "groupId": group_id,
        "initializationParams": list(_init_params(params)) if params is not None else [],
    }
    if service_name is not None:
        body["serviceName"] = service_name
    if name is not None:
        body["name"] = name
    if context_seed is not None:
        body["contextSeed"] = context_seed
    return Call("POST", "/admin-api/contexts", json=body)


def get_context(context_id: str) -> Call:
    return Call("GET", f"/admin-api/contexts/{seg(_ctx(context_id))}")


def list_contexts() -> Call:
    return Call("GET", "/admin-api/contexts")


def delete_context(context_id: str) -> Call:
    return Call("DELETE", f"/admin-api/contexts/{seg(_ctx(context_id))}")


def join_context(context_id: str) -> Call:
    return Call("POST", f"/admin-api/contexts/{seg(_ctx(context_id))}/join")


def sync_context(context_id: str) -> Call:
    return Call("POST", f"/admin-api/contexts/sync/{seg(_ctx(context_id))}")


def sync_all_contexts() -> Call:
    return Call("POST", "/admin-api/contexts/sync")


def resync_context(context_id: str, force: bool) -> Call:
    return Call(
        "POST",
        f"/admin-api/contexts/{seg(_ctx(context_id))}/resync",
        json={"force": bool(force)},
    )


def create_context_alias(alias: str, context_id: str) -> Call:
    return Call(
        "POST",
        "/admin-api/alias/create/context",
        json={"alias": alias, "contextId": _ctx(context_id)},
    )


def lookup_context_alias(alias: str) -> Call:
    return Call("POST", f"/admin-api/alias/lookup/context/{seg(alias)}")


def delete_context_alias(alias: str) -> Call:
    return Call("POST", f"/admin-api/alias/delete/context/{seg(alias)}")


def list_context_aliases() -> Call:
    return Call("GET", "/admin-api/alias/list/context")


def execute_function(context_id: str, method: str, args: JsonLike) -> Call:
    if not isinstance(method, str) or not method:
        raise InvalidArgumentError("InvalidArgument", "method must be a non-empty string")
    args_value = _json_arg(args, "args") if args is not None else {}
    return Call(
        "POST",
        "/jsonrpc",
        json={
            "jsonrpc": "2.0",
            "id": "1",
            "method": "execute",
            "params": {"contextId": _ctx(context_id), "method": method, "argsJson": args_value},
        },
        jsonrpc=True,
    )


# ------------------------------------------------------------- upgrades


def upgrade_group(
    group_id: str, target_application_id: str, cascade: bool, force_code_only: bool
) -> Call:
    return Call(
        "POST",
        f"/admin-api/groups/{seg(group_id)}/upgrade",
        json={
            "targetApplicationId": _app(target_application_id),
            "cascade": bool(cascade),
            "forceCodeOnly": bool(force_code_only),
        },
    )


def get_group_upgrade_status(group_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(group_id)}/upgrade/status")


def retry_group_upgrade(group_id: str) -> Call:
    return Call("POST", f"/admin-api/groups/{seg(group_id)}/upgrade/retry", json={})


def get_cascade_status(namespace_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(namespace_id)}/cascade-status")


def get_migration_status(namespace_id: str) -> Call:
    return Call("GET", f"/admin-api/groups/{seg(namespace_id)}/migration-status")


def abort_migration(namespace_id: str) -> Call:
    return Call("POST", f"/admin-api/groups/{seg(namespace_id)}/migration/abort")


# ----------------------------------------------------------------- auth


def create_token(permissions: Iterable[str], expires_in_secs: int, name: Optional[str]) -> Call:
    perms = [str(p) for p in permissions]
    if not perms:
        raise InvalidArgumentError("InvalidArgument", "a token needs at least one permission")
    body: dict = {"permissions": perms, "expires_in_secs": int(expires_in_secs)}
    if name is not None:
        body["name"] = name
    return Call("POST", "/admin-api/auth/tokens", json=body)


def revoke_token(token: Optional[str], jti: Optional[str]) -> Call:
    if (token is None) == (jti is None):
        raise InvalidArgumentError("InvalidArgument", "give a token or a jti")
    body = {"token": token} if token is not None else {"jti": jti}
    return Call("POST", "/admin-api/auth/revoke", json=body)
