//! Upgrading a group's application, and the versions of an application:
//! upstream's shapes (`{"data": ..}` envelopes, camelCase, the counters
//! `null` once completed), with fields of our own added, never renamed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /admin-api/groups/:id/upgrade`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeGroupRequest {
    /// Base58 id of the application version to move to.
    pub target_application_id: String,
    /// Upgrade the namespace's subgroups too (not supported yet: refused).
    #[serde(default)]
    pub cascade: bool,
    /// Swap the code even across state versions; refused unless the state
    /// layouts are equal.
    #[serde(default)]
    pub force_code_only: bool,
}

/// The answer of `upgrade` and `upgrade/retry`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeGroupResponse {
    /// Hex group id.
    pub group_id: String,
    /// `in_progress`, `completed` or `failed`.
    pub status: String,
    /// The group's contexts on this node; `null` once completed.
    pub local_contexts_total: Option<u32>,
    /// Of those, the ones on the target; `null` once completed.
    pub local_contexts_swapped: Option<u32>,
    /// Of those, the ones whose migration failed; `null` once completed.
    pub local_contexts_failed: Option<u32>,
}

/// One context's part in an upgrade on this node (ours).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextUpgradeStatus {
    /// Base58 context id.
    pub context_id: String,
    /// Base58 root hash after migrating here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_hash: Option<String>,
    /// Base58 root hash the ordering admin's node computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_root_hash: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /admin-api/groups/:id/upgrade/status` (inside `{"data": ..}`, which
/// is `null` when the group never had an upgrade).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupUpgradeStatus {
    /// The version moved from.
    pub from_version: String,
    /// The version moved to.
    pub to_version: String,
    /// When it was ordered, Unix seconds.
    pub initiated_at: u64,
    /// Base58 key of the admin that ordered it.
    pub initiated_by: String,
    /// `in_progress`, `completed` or `failed`.
    pub status: String,
    /// The group's contexts on this node.
    pub local_contexts_total: Option<u32>,
    /// Of those, the ones on the target.
    pub local_contexts_swapped: Option<u32>,
    /// Of those, the ones whose migration failed.
    pub local_contexts_failed: Option<u32>,
    /// When it completed on this node, Unix seconds.
    pub completed_at: Option<u64>,
    /// The state version moved from (ours).
    #[serde(default)]
    pub from_state_version: u32,
    /// The state version moved to (ours).
    #[serde(default)]
    pub to_state_version: u32,
    /// Base58 id of the target application (ours).
    #[serde(default)]
    pub target_application_id: String,
    /// Why it failed or was refused (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each context on this node (ours).
    #[serde(default)]
    pub contexts: Vec<ContextUpgradeStatus>,
}

/// One installed version of a package.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationVersion {
    /// Its semver version.
    pub version: String,
    /// Base58 content hash of its component.
    pub blob_id: String,
    /// Component size in bytes.
    pub size: u64,
    /// The package.
    pub package: String,
    /// Base58 application id (ours).
    #[serde(default)]
    pub application_id: String,
    /// Its state version (ours).
    #[serde(default)]
    pub state_version: u32,
}
