//! The HTTP wire format, shared by the server and `meroctl`.
//!
//! It is the upstream node's format, so that clients written for it work:
//! camelCase fields (except where upstream uses snake_case, noted per type),
//! admin responses wrapped in `{"data": ...}` (except where upstream does not),
//! application and context ids, public keys and hashes in base58, namespace
//! and group ids in hex. Errors are `{"error": "<message>", "type": "<Kind>"}`:
//! upstream clients read `error`; `type` is a stable name to match on.
//!
//! The admin API's types are here; [`jsonrpc`] holds `POST /jsonrpc`'s,
//! [`ws`] the WebSocket session's, [`ids`] the id encodings, [`auth`] the
//! login and token routes' (upstream's snake_case), [`node`] the routes
//! about the node, its groups and its contexts' members, [`inspect`] our
//! own read-only routes for the dashboard (node info, a context's state
//! page by page). [`outcome`]
//! holds what a client reports after requests whose answer does not say
//! what was done; the server never sends those.
//!
//! Plain serde types only: this crate may not depend on the node, the engine
//! or any HTTP stack, so that a client can take it alone.

pub mod auth;
pub mod blobs;
pub mod chains;
pub mod ids;
pub mod inspect;
pub mod jsonrpc;
pub mod metadata;
pub mod node;
pub mod outcome;
pub mod relayer;
pub mod upgrade;
pub mod ws;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"data": T}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Data<T> {
    /// The payload.
    pub data: T,
}

impl<T> Data<T> {
    /// Wraps `data`.
    pub fn new(data: T) -> Self {
        Data { data }
    }
}

/// The body of every admin API error.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// For humans.
    pub error: String,
    /// Stable error kind, e.g. `ContextNotFound`, `InvalidRequest`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Health of the node: `status` is upstream's (`alive`: the process
/// answers); `ready` and `checks` say whether it can do its work.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `alive`.
    pub status: String,
    /// Every check passes: commits are taken and logged, the executor and
    /// networking run. The answer is 503 when not.
    #[serde(default)]
    pub ready: bool,
    /// Each part of readiness.
    #[serde(default)]
    pub checks: HealthChecks,
}

/// The parts of a node's readiness.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct HealthChecks {
    /// The store accepts commits (refused while flushes to LMDB fail).
    pub store: HealthCheck,
    /// The write-ahead log can be appended to.
    pub log: HealthCheck,
    /// The executor, which runs calls and commits, is running.
    pub executor: HealthCheck,
    /// The network task is running.
    pub network: HealthCheck,
}

/// One readiness check.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct HealthCheck {
    /// Whether it passes.
    pub ok: bool,
    /// Why not, when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

// ------------------------------------------------------------ applications

/// Blobs of an application. Snake_case, as upstream.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationBlob {
    /// Base58 content hash of the component.
    pub bytecode: String,
    /// Base58 id of the compiled artifact (all zeros: compiled on demand).
    pub compiled: String,
}

/// An installed application. Snake_case, as upstream.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Application {
    /// Base58 application id.
    pub id: String,
    /// Its blobs.
    pub blob: ApplicationBlob,
    /// Component size in bytes.
    pub size: u64,
    /// Where it came from, e.g. `file:///path/app.wasm`.
    pub source: String,
    /// Metadata bytes given at install.
    pub metadata: Vec<u8>,
    /// Package name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub package: String,
    /// Version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Methods the app declares, with `readOnly` or `mutating` intent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<MethodInfo>,
}

/// A method of an app.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MethodInfo {
    /// Its name.
    pub name: String,
    /// `readOnly` or `mutating`.
    pub intent: String,
}

/// `POST /admin-api/install-dev-application`: install from a path on the
/// node's filesystem.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallDevApplicationRequest {
    /// Absolute path of a `.wasm` component on the node's machine.
    pub path: String,
    /// Free-form metadata bytes.
    #[serde(default)]
    pub metadata: Vec<u8>,
    /// Package name (default `unknown`).
    #[serde(default)]
    pub package: Option<String>,
    /// Version (default `0.0.0`).
    #[serde(default)]
    pub version: Option<String>,
}

/// `POST /admin-api/install-application` with a JSON body: install from a
/// URL, which must be on loopback. Upload the bytes instead with
/// `Content-Type: application/wasm`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallApplicationRequest {
    /// `http://127.0.0.1:.../app.wasm`.
    pub url: String,
    /// Expected base58 SHA-256 of the bytes.
    #[serde(default)]
    pub hash: Option<String>,
    /// Free-form metadata bytes.
    #[serde(default)]
    pub metadata: Vec<u8>,
    /// Package name.
    #[serde(default)]
    pub package: Option<String>,
    /// Version.
    #[serde(default)]
    pub version: Option<String>,
}

/// The id of an installed (or uninstalled) application.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIdData {
    /// Base58 application id.
    pub application_id: String,
}

/// `GET /admin-api/applications`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationList {
    /// Every installed application.
    pub apps: Vec<Application>,
}

/// `GET /admin-api/applications/:id`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ApplicationData {
    /// The application.
    pub application: Application,
}

// -------------------------------------------------------------- namespaces

/// `POST /admin-api/namespaces`: a namespace and its first context.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateNamespaceRequest {
    /// Base58 id of the installed application.
    pub application_id: String,
    /// A human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hex content hash of the component to pin; defaults to the
    /// application's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    /// JSON bytes passed to the first context's `init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initialization_params: Option<Vec<u8>>,
}

/// A created namespace.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateNamespaceData {
    /// Hex namespace id.
    pub namespace_id: String,
    /// Base58 id of its first context.
    pub context_id: String,
}

/// A context of a namespace, with its app version.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceContext {
    /// Base58 context id.
    pub context_id: String,
    /// The app version it runs.
    pub application_version: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A namespace.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// Hex namespace id.
    pub namespace_id: String,
    /// Hex content hash of the component its contexts run.
    pub app_key: String,
    /// Base58 application id.
    pub target_application_id: String,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Members.
    pub member_count: usize,
    /// Contexts.
    pub context_count: usize,
    /// Subgroups.
    pub subgroup_count: usize,
    /// The application's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Its contexts, each with the app version it runs.
    #[serde(default)]
    pub contexts: Vec<NamespaceContext>,
    /// Hex ids of its governance heads on this node (nodes that agree on
    /// membership show the same).
    #[serde(default)]
    pub governance_heads: Vec<String>,
}

/// `{"isDeleted": bool}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// Whether something was deleted.
    pub is_deleted: bool,
}

// ---------------------------------------------------------------- contexts

/// A context.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// Base58 context id.
    pub id: String,
    /// Base58 application id.
    pub application_id: String,
    /// Base58 state root hash: equal on every replica that converged.
    #[serde(rename = "contextStateHash")]
    pub root_hash: String,
    /// Ids of the deltas no other delta builds on yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Vec<u8>>)]
    pub dag_heads: Vec<[u8; 32]>,
    /// The app version it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_version: Option<String>,
    /// The state layout version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_version: Option<u32>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hex id of its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Deltas applied to it on this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_count: Option<u64>,
    /// How replication with peers is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub sync_status: Option<serde_json::Value>,
}

/// `GET /admin-api/contexts`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ContextList {
    /// The contexts on this node.
    pub contexts: Vec<Context>,
}

/// `POST /admin-api/contexts`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateContextRequest {
    /// Base58 application id.
    pub application_id: String,
    /// Hex id of the namespace or group the context belongs to.
    pub group_id: String,
    /// JSON bytes passed to `init`.
    #[serde(default)]
    pub initialization_params: Vec<u8>,
    /// Base58 32-byte seed making the context id deterministic.
    #[serde(default)]
    pub context_seed: Option<String>,
    /// Accepted for compatibility; the node signs with its own identity.
    #[serde(default)]
    pub identity_secret: Option<String>,
    /// A human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A created context.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateContextData {
    /// Base58 context id.
    pub context_id: String,
    /// Base58 public key this node acts as in it.
    pub member_public_key: String,
    /// Hex id of its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Always false: the group must exist.
    #[serde(default)]
    pub group_created: bool,
}

// ------------------------------------------------------------------ aliases

/// `POST /admin-api/alias/create/context`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateContextAlias {
    /// Up to 50 characters of `[A-Za-z0-9._-]`.
    pub alias: String,
    /// Base58 context id.
    pub context_id: String,
}

/// `POST /admin-api/alias/lookup/context/:name`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AliasValue {
    /// The id, or null if no such alias.
    pub value: Option<String>,
}

/// `GET /admin-api/peers`; not wrapped in `data`, as upstream.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PeerCount {
    /// Connected peers.
    pub count: usize,
}

/// `POST /admin-api/namespaces/:id/invite`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteRequest {
    /// How long the invitation stays valid, in seconds (default: the node's `membership.invitation_ttl_secs`, a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<u64>,
    /// Upstream's flag for inviting into subgroups too; accepted, not needed.
    #[serde(default)]
    pub recursive: Option<bool>,
    /// The role granted: `admin`, `member` (default) or `read-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Chain accounts the joiner must prove it holds, `<chain>:<account>`
    /// (`ethereum:0x…`, `near:alice.near`, `icp:<principal>`,
    /// `stellar:G…`); signed into the invitation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain_accounts: Vec<String>,
    /// Token balances the joiner's bound account (its `chainAccounts`
    /// entry on the same chain) must hold, `<chain>:<token>:<at least>`
    /// (`ethereum:0x…:100`, the amount in the token's base unit): the
    /// admitting node asks the chain through its relayer and records its
    /// signed attestation before the join.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub min_token_balances: Vec<String>,
}

/// The answer to an invite: the signed invitation, to paste into `join`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationData {
    /// The signed invitation (upstream's `SignedGroupOpenInvitation`).
    #[schema(value_type = Object)]
    pub invitation: serde_json::Value,
    /// The namespace's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
}

/// `POST /admin-api/namespaces/:id/join`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinNamespaceRequest {
    /// The invitation as `invite` returned it (its `data.invitation`; the
    /// whole response is accepted too).
    #[schema(value_type = Object)]
    pub invitation: serde_json::Value,
    /// For an invitation bound to chain accounts: signatures, by each
    /// account's key, of this node's `chain-challenge` message for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain_proofs: Vec<JoinChainProof>,
}

/// A signature proving a chain account an invitation is bound to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinChainProof {
    /// The account (default: the invitation's, in order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `0x…` hex for Ethereum; base64 or hex for the ed25519 chains.
    pub signature: String,
    /// The signer's key where the account does not give it (ICP, named
    /// NEAR accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `eip191` (default for Ethereum) or `eip712`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
}

/// A joined namespace.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinNamespaceData {
    /// Hex namespace id.
    pub namespace_id: String,
    /// Base58 key this node is a member as.
    pub member_identity: String,
    /// Hex of the same key.
    pub member_account: String,
}

/// A namespace this node left (upstream's `LeaveNamespaceApiResponse`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaveNamespaceData {
    /// Hex namespace id.
    pub namespace_id: String,
    /// Base58 key this node was a member as.
    pub member_public_key: String,
}

/// A joined context.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinContextData {
    /// Base58 context id.
    pub context_id: String,
    /// Base58 key this node is a member as.
    pub member_public_key: String,
}

/// A group member.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    /// Hex key.
    pub identity: String,
    /// `Admin`, `Member` or `ReadOnly`.
    pub role: String,
}

/// `GET /admin-api/groups/:id/members`; not wrapped in `data`, as upstream.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupMembers {
    /// The members.
    pub members: Vec<GroupMember>,
}

/// A context registered in a group.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupContext {
    /// Base58 context id.
    pub context_id: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `PUT /admin-api/groups/:id/members/:account/role`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SetRoleRequest {
    /// `Admin`, `Member` or `ReadOnly`.
    pub role: String,
}

/// `PUT /admin-api/groups/:id/members/:account/capabilities`, and the answer
/// of `GET` on the same path (in `data`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    /// The whole mask: 1 create context, 2 invite members, 4 join open
    /// subgroups, 8 manage members, 16 manage application.
    pub capabilities: u32,
}

/// `PUT /admin-api/groups/:id/members/:account/auto-follow`: what the
/// member's node joins on its own in the group (contexts are followed
/// unless turned off).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetAutoFollowRequest {
    /// Join the group's contexts as they are registered.
    pub auto_follow_contexts: bool,
    /// Follow its subgroups too.
    pub auto_follow_subgroups: bool,
}

/// `POST /admin-api/namespaces/:id/groups`: a subgroup.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateGroupRequest {
    /// A human name.
    #[serde(default)]
    pub name: Option<String>,
    /// Hex id of the parent group; the namespace if absent.
    #[serde(default)]
    pub parent_group_id: Option<String>,
    /// `open` (the default: the parent's members are members) or
    /// `restricted` (members are admitted one by one).
    #[serde(default)]
    pub subgroup_visibility: Option<String>,
}

/// A created group.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateGroupData {
    /// Hex group id.
    pub group_id: String,
}

/// A subgroup of a namespace.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subgroup {
    /// Hex group id.
    pub group_id: String,
    /// Hex id of its parent group.
    pub parent_group_id: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `open` or `restricted`.
    pub subgroup_visibility: String,
    /// Its effective members.
    pub member_count: usize,
    /// Contexts attached to it.
    pub context_count: usize,
    /// A restricted subgroup's newest key epoch (its gossip is sealed with
    /// a key of its own; the epoch moves on each time a member leaves it);
    /// absent for an open subgroup and before its first key is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_epoch: Option<u32>,
}

/// `PUT /admin-api/groups/:id/settings/subgroup-visibility`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetVisibilityRequest {
    /// `open` or `restricted`.
    pub subgroup_visibility: String,
}

/// One member to add to a group.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddMember {
    /// Hex (or base58) key of a namespace member.
    pub identity: String,
    /// Accepted for upstream compatibility: roles are namespace-wide.
    #[serde(default)]
    pub role: Option<String>,
}

/// `POST /admin-api/groups/:id/members`: admits namespace members to a
/// subgroup.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AddMembersRequest {
    /// The members.
    pub members: Vec<AddMember>,
}

/// `POST /admin-api/groups/:id/members/remove`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RemoveMembersRequest {
    /// Hex (or base58) keys of the members to remove.
    pub members: Vec<String>,
}
