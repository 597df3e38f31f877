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
    /// Upgrade every group below it that runs the same application too,
    /// group by group in the background.
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
    /// `in_progress`, `completed`, `failed` or `aborted`.
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

/// One group of `GET /admin-api/groups/:id/cascade-status` (inside
/// `{"data": [..]}`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CascadeStatusEntry {
    /// Hex group id.
    pub group_id: String,
    /// Its upgrade as this node sees it (`status` is also `aborted` for a
    /// cascaded group an abort left on its application).
    pub upgrade: GroupUpgradeStatus,
    /// When its cascade was ordered (the ordering admin's clock, Unix
    /// milliseconds, as a string); absent for a direct upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade_hlc: Option<String>,
}

/// A member's last migration report.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberMigrationReport {
    /// The lowest state version among its contexts.
    pub schema_version: u32,
    /// Its contexts not yet on their group's target.
    pub residue_auto: u32,
    /// Always 0 (upstream's clients require the field).
    pub residue_identity: u32,
    /// How many governance ops of the namespace it had applied.
    pub synced_up_to_hlc: u64,
    /// When it reported (its clock), Unix milliseconds.
    pub reported_at: u64,
    /// Entries of its own not yet rewritten for the new version.
    pub authored_remaining: u64,
    /// Rewrites no peer has acknowledged yet (ours): "safe to disconnect"
    /// when this and `authoredRemaining` are 0.
    #[serde(default)]
    pub authored_unacknowledged: u64,
    /// `check_aborted`, `apply_failed` or `no_migration_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_failed: Option<String>,
}

/// One member's row of `migration-status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberMigrationStatus {
    /// Base58 key of its node.
    pub peer: String,
    /// Hex key of the member.
    pub account: String,
    /// `migrated`, `in_progress`, `failed` or `unknown`.
    pub state: String,
    /// Its last report; absent when never heard of within the TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<MemberMigrationReport>,
}

/// The counts of `migration-status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationRollup {
    /// Members migrated.
    pub migrated: u32,
    /// Members migrating.
    pub in_progress: u32,
    /// Members not heard of.
    pub unknown: u32,
    /// Members on which a migration failed.
    pub failed: u32,
    /// All members.
    pub total: u32,
    /// `total > 0 && migrated == total`.
    pub all_migrated: bool,
    /// Members with entries of their own still to rewrite.
    pub members_pending_signature: u32,
}

/// `GET /admin-api/groups/:ns/migration-status` (flat, as upstream).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatusResponse {
    /// The highest state version a group of the namespace moves to (0:
    /// none).
    pub target_version: u32,
    /// The members expected to report.
    pub expected_members: u32,
    /// When the newest cascade was ordered (Unix milliseconds, as a
    /// string); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_pinned_at_hlc: Option<String>,
    /// When this node first saw every member migrated, Unix seconds.
    pub fleet_completed_at: Option<u64>,
    /// One row per member.
    pub members: Vec<MemberMigrationStatus>,
    /// The counts.
    pub rollup: MigrationRollup,
}

/// `POST /admin-api/groups/:ns/migration/abort` (flat, as upstream).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbortMigrationResponse {
    /// Hex id of the group it was asked for.
    pub namespace_id: String,
    /// Whether a cascade was stopped (false: nothing was pending).
    pub aborted: bool,
    /// Hex ids of the groups left on their application (ours; absent
    /// when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aborted_group_ids: Vec<String>,
    /// Hex ids of the groups that had committed and complete everywhere
    /// (ours; absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub committed_group_ids: Vec<String>,
}

/// `POST /admin-api/contexts/:id/resync` (a body is optional: `{}` or none
/// means `force: false`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResyncRequest {
    /// Drop this node's replicated state of the context even though it has
    /// DAG heads of its own (its private storage is kept).
    #[serde(default)]
    pub force: bool,
}

/// The answer of `resync` (flat, as upstream).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResyncResponse {
    /// The context, as it was asked for.
    pub context_id: String,
    /// A member's snapshot was taken.
    pub resync_started: bool,
}
