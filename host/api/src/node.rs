//! Routes about the node itself, its contexts' members and its groups that
//! upstream's clients call: `GET /admin-api/identity`,
//! `POST /admin-api/identity/context`, `GET /admin-api/network/status`,
//! `GET /admin-api/groups/:id` and `/subgroups`,
//! `GET /admin-api/contexts/:id/identities[-owned]` and `/storage`,
//! `POST /admin-api/contexts/:id/leave`. Shapes are upstream's
//! (`calimero-server-primitives`), field for field.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::metadata::MetadataRecord;
use crate::upgrade::GroupUpgradeStatus;

/// `GET /admin-api/identity`: who this node is.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeIdentity {
    /// Hex of the key this node is a member as (its account).
    pub account_id: String,
    /// Upstream's device id; this node has one key, so none.
    pub device_id: Option<String>,
    /// Base58 of the key it signs with.
    pub public_key: String,
    /// Hex of the same key: it is its own account root.
    pub account_root_public_key: String,
}

/// `POST /admin-api/identity/context`: the key this node acts as in
/// contexts (it has one; a caller cannot choose another).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GeneratedIdentity {
    /// Base58 public key.
    pub public_key: String,
}

/// `GET /admin-api/network/status`; not wrapped in `data`, as upstream.
/// This node uses no relays, rendezvous, hole punching or AutoNAT: those
/// lists are empty and reachability is `unknown`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    /// Base58 peer id.
    pub local_peer_id: String,
    /// Multiaddrs the swarm listens on.
    pub listen_addrs: Vec<String>,
    /// Confirmed external addresses.
    pub external_addrs: Vec<String>,
    /// Relay reservations.
    #[schema(value_type = Vec<Object>)]
    pub relays: Vec<serde_json::Value>,
    /// Rendezvous registrations.
    #[schema(value_type = Vec<Object>)]
    pub rendezvous: Vec<serde_json::Value>,
    /// Direct-connection upgrades.
    #[schema(value_type = Vec<Object>)]
    pub direct_upgrades: Vec<serde_json::Value>,
    /// AutoNAT's view.
    pub autonat: AutonatStatus,
}

/// AutoNAT's view of this node.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutonatStatus {
    /// `public`, `private` or `unknown`.
    pub reachability: String,
    /// The last address tested.
    pub last_test_addr: Option<String>,
    /// Its result.
    pub last_test_result: Option<String>,
    /// Why.
    pub last_test_reason: Option<String>,
    /// The address the tester saw.
    pub last_test_observed_addr: Option<String>,
    /// When, RFC 3339.
    pub last_test_at: Option<String>,
}

/// `GET /admin-api/groups/:id` (in `data`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    /// Hex group id.
    pub group_id: String,
    /// Hex content hash of the component its contexts run.
    pub app_key: String,
    /// Base58 application id.
    pub target_application_id: String,
    /// Its effective members.
    pub member_count: u64,
    /// Contexts registered in it.
    pub context_count: u64,
    /// Its upgrade as this node sees it, as `GET …/upgrade/status` answers
    /// it (upstream's field: the last upgrade's record, whatever its
    /// status); absent if it never had one here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_upgrade: Option<GroupUpgradeStatus>,
    /// Capabilities members get by default.
    pub default_capabilities: u32,
    /// `open` or `restricted` (a namespace: `restricted`, joined by
    /// invitation).
    pub subgroup_visibility: String,
    /// Its metadata record, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataRecord>,
    /// Hex digest of the governance it is folded from: equal on the nodes
    /// that agree on it.
    #[serde(rename = "groupStateHash")]
    pub group_state_hash: String,
    /// Hex id of its namespace.
    pub namespace_id: String,
    /// Hex id of its parent group (absent for a namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_group_id: Option<String>,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `GET /admin-api/groups/:id/subgroups`; not wrapped in `data`, as
/// upstream.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SubgroupList {
    /// Its direct subgroups.
    pub subgroups: Vec<SubgroupEntry>,
}

/// A direct subgroup.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubgroupEntry {
    /// Hex group id.
    pub group_id: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `GET /admin-api/contexts/:id/identities[-owned]` (in `data`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ContextIdentities {
    /// Base58 public keys.
    pub identities: Vec<String>,
}

/// `GET /admin-api/contexts/:id/storage` (in `data`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextStorage {
    /// Bytes of state this node stores for it.
    pub size_in_bytes: u64,
}

/// `POST /admin-api/contexts/:id/leave` (in `data`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaveContextData {
    /// Base58 context id.
    pub context_id: String,
    /// Base58 key this node was a member as.
    pub member_public_key: String,
}

/// `GET /admin-api/namespaces/for-application/:app`'s query.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PageQuery {
    /// Skip this many.
    pub offset: Option<usize>,
    /// At most this many.
    pub limit: Option<usize>,
}
