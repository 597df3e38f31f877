"""Typed results: `TypedDict`s of the node's JSON, key for key.

Results are the node's answers decoded as they come (`dict`s with camelCase
keys, admin answers wrapped in `{"data": ...}` where the node wraps them),
exactly as calimero-client-py returns them; these types describe them for
type checkers and readers. Keys marked optional may be absent.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict


# ------------------------------------------------------------------ health


class HealthData(TypedDict):
    status: str


class HealthResponse(TypedDict):
    data: HealthData


# ------------------------------------------------------------ applications


class ApplicationBlob(TypedDict):
    bytecode: str
    compiled: str


class MethodInfo(TypedDict):
    name: str
    intent: str
    """`readOnly` or `mutating`."""


class _ApplicationBase(TypedDict):
    id: str
    blob: ApplicationBlob
    size: int
    source: str
    metadata: List[int]


class Application(_ApplicationBase, total=False):
    package: str
    version: Optional[str]
    methods: List[MethodInfo]


class ApplicationIdData(TypedDict):
    applicationId: str


class InstallApplicationResponse(TypedDict):
    data: ApplicationIdData


UninstallApplicationResponse = InstallApplicationResponse


class ApplicationListData(TypedDict):
    apps: List[Application]


class ListApplicationsResponse(TypedDict):
    data: ApplicationListData


class ApplicationData(TypedDict):
    application: Application


class GetApplicationResponse(TypedDict):
    data: ApplicationData


class _ApplicationVersionBase(TypedDict):
    version: str
    blobId: str
    size: int
    package: str


class ApplicationVersion(_ApplicationVersionBase, total=False):
    applicationId: str
    stateVersion: int


class ListApplicationVersionsResponse(TypedDict):
    data: List[ApplicationVersion]


# -------------------------------------------------------------- namespaces


class _CreateNamespaceBase(TypedDict):
    namespaceId: str


class CreateNamespaceData(_CreateNamespaceBase, total=False):
    contextId: str
    """This node's addition: the namespace's first context."""


class CreateNamespaceResponse(TypedDict):
    data: CreateNamespaceData


class NamespaceContext(TypedDict, total=False):
    contextId: str
    applicationVersion: str
    name: Optional[str]


class _NamespaceBase(TypedDict):
    namespaceId: str
    appKey: str
    targetApplicationId: str
    createdAt: int
    memberCount: int
    contextCount: int
    subgroupCount: int


class Namespace(_NamespaceBase, total=False):
    name: Optional[str]
    appVersion: Optional[str]
    contexts: List[NamespaceContext]
    governanceHeads: List[str]


class ListNamespacesResponse(TypedDict):
    data: List[Namespace]


class GetNamespaceResponse(TypedDict):
    data: Namespace


class DeletedData(TypedDict):
    isDeleted: bool


class DeleteResponse(TypedDict):
    data: DeletedData


class _InvitationBase(TypedDict):
    invitation: Dict[str, Any]
    """Upstream's `SignedGroupOpenInvitation`: pass it to `join_namespace`."""


class InvitationData(_InvitationBase, total=False):
    groupName: Optional[str]


class CreateInvitationResponse(TypedDict):
    data: InvitationData


class JoinNamespaceData(TypedDict):
    namespaceId: str
    memberIdentity: str
    memberAccount: str


class JoinNamespaceResponse(TypedDict):
    data: JoinNamespaceData


class EmptyResponse(TypedDict):
    """`{}`: done."""


# ------------------------------------------------------- groups, members


class _SubgroupBase(TypedDict):
    groupId: str
    parentGroupId: str
    subgroupVisibility: str
    memberCount: int
    contextCount: int


class Subgroup(_SubgroupBase, total=False):
    name: Optional[str]
    # A restricted subgroup's newest key epoch, once it has a key.
    keyEpoch: int


class ListNamespaceGroupsResponse(TypedDict):
    data: List[Subgroup]


class ChainChallenge(TypedDict):
    message: str
    chain: str
    account: str
    namespaceId: str
    member: str
    nonce: str
    expires: int
    signing: str


class ChainChallengeResponse(TypedDict):
    data: ChainChallenge


class ChainIdentity(TypedDict):
    member: str
    chain: str
    account: str
    publicKey: str
    onChain: str


class ChainIdentityResponse(TypedDict):
    data: ChainIdentity


class ChainIdentities(TypedDict):
    identities: List[ChainIdentity]


class ListChainIdentitiesResponse(TypedDict):
    data: ChainIdentities


class ChainReading(TypedDict, total=False):
    chain: str
    network: str
    blockNumber: int
    blockHash: str
    account: str
    token: str
    balance: str


class ChainReadingResponse(TypedDict):
    data: ChainReading


class Attestation(TypedDict):
    chain: str
    network: str
    blockNumber: int
    blockHash: str
    statement: Dict[str, Any]
    observed: str
    holds: bool
    attestedBy: str
    atMillis: int
    signature: str


class AttestationResponse(TypedDict):
    data: Attestation


class AttestationVerified(TypedDict):
    valid: bool
    attestedBy: str
    holds: bool


class AttestationVerifiedResponse(TypedDict):
    data: AttestationVerified


class Attestations(TypedDict):
    attestations: List[Attestation]


class ListAttestationsResponse(TypedDict):
    data: Attestations


class CreateGroupData(TypedDict):
    groupId: str


class CreateGroupResponse(TypedDict):
    data: CreateGroupData


class GroupMember(TypedDict):
    identity: str
    """Hex account (public key) of the member."""
    role: str
    """`Admin`, `Member` or `ReadOnly`."""


class ListGroupMembersResponse(TypedDict):
    """Not wrapped in `data`, as upstream."""

    members: List[GroupMember]


class _GroupContextBase(TypedDict):
    contextId: str


class GroupContext(_GroupContextBase, total=False):
    name: Optional[str]


class ListGroupContextsResponse(TypedDict):
    data: List[GroupContext]


class CapabilitiesData(TypedDict):
    capabilities: int


class MemberCapabilitiesResponse(TypedDict):
    data: CapabilitiesData


# ------------------------------------------------------------ metadata


class MetadataRecord(TypedDict, total=False):
    """Upstream's metadata record (the node does not serve it yet)."""

    name: Optional[str]
    data: Dict[str, str]
    updated_at: int
    updated_by: str


class GetMetadataResponse(TypedDict):
    data: Optional[MetadataRecord]


# ------------------------------------------------------------- contexts


class _ContextBase(TypedDict):
    id: str
    applicationId: str
    contextStateHash: str


class Context(_ContextBase, total=False):
    dagHeads: List[List[int]]
    applicationVersion: Optional[str]
    stateVersion: Optional[int]
    name: Optional[str]
    groupId: Optional[str]
    deltaCount: Optional[int]
    syncStatus: Optional[Dict[str, Any]]


class ContextListData(TypedDict):
    contexts: List[Context]


class ListContextsResponse(TypedDict):
    data: ContextListData


class GetContextResponse(TypedDict):
    data: Context


class _CreateContextBase(TypedDict):
    contextId: str
    memberPublicKey: str
    groupCreated: bool


class CreateContextData(_CreateContextBase, total=False):
    groupId: Optional[str]


class CreateContextResponse(TypedDict):
    data: CreateContextData


class JoinContextData(TypedDict):
    contextId: str
    memberPublicKey: str


class JoinContextResponse(TypedDict):
    data: JoinContextData


class NullDataResponse(TypedDict):
    """`{"data": null}`: done."""

    data: None


class AliasValue(TypedDict):
    value: Optional[str]


class LookupAliasResponse(TypedDict):
    data: AliasValue


class ListAliasesResponse(TypedDict):
    data: Dict[str, str]


class PeersCountResponse(TypedDict):
    count: int


class ResyncContextResponse(TypedDict):
    """Flat, as upstream (the node does not serve it yet)."""

    contextId: str
    resyncStarted: bool


# ------------------------------------------------------------- JSON-RPC


class ExecuteResult(TypedDict):
    output: Any


class RpcErrorBody(TypedDict, total=False):
    type: str
    data: Any
    kind: str


class _JsonRpcBase(TypedDict):
    jsonrpc: str
    id: Any


class JsonRpcResponse(_JsonRpcBase, total=False):
    """What `execute_function` returns: `result.output` is the method's value."""

    result: ExecuteResult
    error: RpcErrorBody


# ------------------------------------------------------------- upgrades


class _UpgradeGroupBase(TypedDict):
    groupId: str
    status: str
    """`in_progress`, `completed` or `failed`."""


class UpgradeGroupData(_UpgradeGroupBase, total=False):
    localContextsTotal: Optional[int]
    localContextsSwapped: Optional[int]
    localContextsFailed: Optional[int]


class UpgradeGroupResponse(TypedDict):
    data: UpgradeGroupData


class ContextUpgradeStatus(TypedDict, total=False):
    contextId: str
    rootHash: str
    expectedRootHash: str
    error: str


class _GroupUpgradeStatusBase(TypedDict):
    fromVersion: str
    toVersion: str
    initiatedAt: int
    initiatedBy: str
    status: str


class GroupUpgradeStatus(_GroupUpgradeStatusBase, total=False):
    localContextsTotal: Optional[int]
    localContextsSwapped: Optional[int]
    localContextsFailed: Optional[int]
    completedAt: Optional[int]
    fromStateVersion: int
    toStateVersion: int
    targetApplicationId: str
    error: str
    contexts: List[ContextUpgradeStatus]


class GetGroupUpgradeStatusResponse(TypedDict):
    data: Optional[GroupUpgradeStatus]
    """None when the group never had an upgrade."""


class _CascadeStatusEntryBase(TypedDict):
    groupId: str
    upgrade: GroupUpgradeStatus


class CascadeStatusEntry(_CascadeStatusEntryBase, total=False):
    cascadeHlc: str


class GetCascadeStatusResponse(TypedDict):
    data: List[CascadeStatusEntry]


class CascadeSummary(TypedDict):
    """`cascade_summary()` of a cascade status, counted as merobox counts it."""

    total: int
    completed: int
    failed: int
    pending: int
    all_completed: bool


class MemberMigrationReport(TypedDict, total=False):
    schemaVersion: int
    residueAuto: int
    residueIdentity: int
    syncedUpToHlc: int
    reportedAt: int
    authoredRemaining: int
    migrationFailed: str


class _MemberMigrationStatusBase(TypedDict):
    peer: str
    state: str
    """`migrated`, `in_progress`, `failed` or `unknown`."""


class MemberMigrationStatus(_MemberMigrationStatusBase, total=False):
    account: str
    report: MemberMigrationReport


class MigrationRollup(TypedDict, total=False):
    migrated: int
    inProgress: int
    unknown: int
    failed: int
    total: int
    allMigrated: bool
    membersPendingSignature: int


class _MigrationStatusBase(TypedDict):
    targetVersion: int
    expectedMembers: int
    members: List[MemberMigrationStatus]
    rollup: MigrationRollup


class MigrationStatusResponse(_MigrationStatusBase, total=False):
    """Flat (no `data`), as upstream."""

    cohortPinnedAtHlc: str
    fleetCompletedAt: int


class AbortMigrationResponse(TypedDict):
    """Flat, as upstream."""

    namespaceId: str
    aborted: bool


# ----------------------------------------------------------------- auth


class TokenPairData(TypedDict, total=False):
    access_token: str
    refresh_token: str
    error: Optional[str]


class CreatedToken(TypedDict):
    access_token: str
    jti: str
    expires_at: int
    permissions: List[str]


class CreateTokenResponse(TypedDict):
    data: CreatedToken


__all__ = [name for name in dir() if name[0].isupper()]
