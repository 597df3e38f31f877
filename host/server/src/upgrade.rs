//! `/admin-api/groups/:id/upgrade*`, `cascade-status`, `migration-status`,
//! `migration/abort` and `/admin-api/applications/:id/versions`: moving a
//! group (and, cascading, its subtree) to another version of its
//! application, where that stands on this node and across the members,
//! stopping a cascade, and the versions installed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use mero_api::Data;
use mero_api::ids::{b58, hex32};
use mero_api::upgrade::{
    AbortMigrationResponse, ApplicationVersion, CascadeStatusEntry, ContextUpgradeStatus,
    GroupUpgradeStatus, MemberMigrationReport, MemberMigrationStatus, MigrationRollup,
    MigrationStatusResponse, ResyncRequest, ResyncResponse, UpgradeGroupRequest,
    UpgradeGroupResponse,
};
use mero_node::{Node, Phase, UpgradeStatus};

use crate::admin::{application_id, context_id, group_id, json_body};
use crate::error::ApiResult;

/// Upstream's counters are `null` once an upgrade completed.
fn counter(s: &UpgradeStatus, n: u32) -> Option<u32> {
    (s.phase != Phase::Completed).then_some(n)
}

fn response(s: &UpgradeStatus) -> UpgradeGroupResponse {
    UpgradeGroupResponse {
        group_id: hex32(&s.group),
        status: s.phase.as_str().into(),
        local_contexts_total: counter(s, s.total),
        local_contexts_swapped: counter(s, s.swapped),
        local_contexts_failed: counter(s, s.failed),
    }
}

pub(crate) fn status_dto(s: &UpgradeStatus) -> GroupUpgradeStatus {
    GroupUpgradeStatus {
        from_version: s.from_version.clone(),
        to_version: s.to_version.clone(),
        initiated_at: s.initiated_at,
        initiated_by: b58(&s.initiated_by),
        status: s.phase.as_str().into(),
        local_contexts_total: Some(s.total),
        local_contexts_swapped: Some(s.swapped),
        local_contexts_failed: Some(s.failed),
        completed_at: s.completed_at,
        from_state_version: s.from_state_version,
        to_state_version: s.to_state_version,
        target_application_id: b58(&s.target_application),
        error: s.error.clone(),
        contexts: s
            .contexts
            .iter()
            .map(|c| ContextUpgradeStatus {
                context_id: b58(&c.context.0),
                root_hash: c.root_hash.as_ref().map(b58),
                expected_root_hash: c.expected_root_hash.as_ref().map(b58),
                error: c.error.clone(),
            })
            .collect(),
    }
}

/// Upgrades a group's contexts to another version of their application:
/// migrated and checked here first; a failing migration or check changes
/// nothing (409 with the reason). With `cascade`, every group below it
/// that runs the same application too, committed group by group in the
/// background (the answer is then normally `in_progress`).
#[utoipa::path(post, path = "/admin-api/groups/{id}/upgrade", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    request_body = UpgradeGroupRequest,
    responses((status = 200, body = Data<UpgradeGroupResponse>),
        (status = 400, description = "Bad request, or another package", body = mero_api::ErrorBody),
        (status = 403, description = "Not an admin", body = mero_api::ErrorBody),
        (status = 404, description = "Unknown group or application", body = mero_api::ErrorBody),
        (status = 409, description = "Refused: the reason is in the body", body = mero_api::ErrorBody)))]
pub(crate) async fn upgrade_group(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Data<UpgradeGroupResponse>>> {
    let group = group_id(&id)?;
    let req: UpgradeGroupRequest = json_body(&body)?;
    let target = application_id(&req.target_application_id)?;
    let status = if req.cascade {
        node.cascade_upgrade(&group, &target, req.force_code_only)
            .await?
    } else {
        node.upgrade_group(&group, &target, req.force_code_only)
            .await?
    };
    Ok(Json(Data::new(response(&status))))
}

/// The group's upgrade as this node sees it; `{"data": null}` if none.
#[utoipa::path(get, path = "/admin-api/groups/{id}/upgrade/status", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    responses((status = 200, body = Data<Option<GroupUpgradeStatus>>),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn upgrade_status(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Option<GroupUpgradeStatus>>>> {
    let status = node.upgrade_status(&group_id(&id)?)?;
    Ok(Json(Data::new(status.as_ref().map(status_dto))))
}

/// Runs a failed upgrade again.
#[utoipa::path(post, path = "/admin-api/groups/{id}/upgrade/retry", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    responses((status = 200, body = Data<UpgradeGroupResponse>),
        (status = 404, body = mero_api::ErrorBody),
        (status = 409, description = "Nothing to retry, or refused again", body = mero_api::ErrorBody)))]
pub(crate) async fn retry_upgrade(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<UpgradeGroupResponse>>> {
    let status = node.retry_upgrade(&group_id(&id)?).await?;
    Ok(Json(Data::new(response(&status))))
}

/// Every group of the subtree that has an upgrade here or is part of a
/// cascade, with where it stands on this node.
#[utoipa::path(get, path = "/admin-api/groups/{id}/cascade-status", tag = "groups",
    params(("id" = String, Path, description = "Hex namespace (or group) id")),
    responses((status = 200, body = Data<Vec<CascadeStatusEntry>>),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn cascade_status(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Vec<CascadeStatusEntry>>>> {
    let entries = node.cascade_status(&group_id(&id)?)?;
    Ok(Json(Data::new(
        entries
            .iter()
            .map(|e| CascadeStatusEntry {
                group_id: hex32(&e.group),
                upgrade: status_dto(&e.status),
                cascade_hlc: e.cascade_millis.map(|m| m.to_string()),
            })
            .collect(),
    )))
}

/// Where every member of the namespace stands, from their signed reports
/// (flat, as upstream).
#[utoipa::path(get, path = "/admin-api/groups/{id}/migration-status", tag = "groups",
    params(("id" = String, Path, description = "Hex namespace id")),
    responses((status = 200, body = MigrationStatusResponse),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn migration_status(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<MigrationStatusResponse>> {
    let s = node.migration_status(&group_id(&id)?)?;
    let r = s.rollup;
    Ok(Json(MigrationStatusResponse {
        target_version: s.target_version,
        expected_members: r.total,
        cohort_pinned_at_hlc: s.cascade_millis.map(|m| m.to_string()),
        fleet_completed_at: s.fleet_completed_at,
        members: s
            .members
            .iter()
            .map(|m| MemberMigrationStatus {
                peer: b58(&m.member),
                account: hex32(&m.member),
                state: m.state.as_str().into(),
                report: m.report.as_ref().map(|(r, at)| MemberMigrationReport {
                    schema_version: r.schema_version,
                    residue_auto: r.residue_auto,
                    residue_identity: 0,
                    synced_up_to_hlc: r.governance_ops,
                    reported_at: *at,
                    authored_remaining: r.authored_remaining,
                    authored_unacknowledged: r.authored_unacknowledged,
                    migration_failed: r.migration_failed.clone(),
                }),
            })
            .collect(),
        rollup: MigrationRollup {
            migrated: r.migrated,
            in_progress: r.in_progress,
            unknown: r.unknown,
            failed: r.failed,
            total: r.total,
            all_migrated: r.all_migrated,
            members_pending_signature: r.members_pending_signature,
        },
    }))
}

/// Stops the cascades of the subtree that still have groups to commit, on
/// every node: those groups stay on their application; committed ones
/// complete. `aborted: false` if nothing was ever upgraded; 409 once
/// everything committed (the way back is a forward upgrade).
#[utoipa::path(post, path = "/admin-api/groups/{id}/migration/abort", tag = "groups",
    params(("id" = String, Path, description = "Hex namespace (or group) id")),
    responses((status = 200, body = AbortMigrationResponse),
        (status = 403, description = "Not an admin", body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody),
        (status = 409, description = "Everything committed: nothing to abort", body = mero_api::ErrorBody)))]
pub(crate) async fn abort_migration(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<AbortMigrationResponse>> {
    let group = group_id(&id)?;
    let outcome = node.abort_migration(&group).await?;
    Ok(Json(AbortMigrationResponse {
        namespace_id: hex32(&group),
        aborted: outcome.aborted,
        aborted_group_ids: outcome.aborted_groups.iter().map(hex32).collect(),
        committed_group_ids: outcome.committed_groups.iter().map(hex32).collect(),
    }))
}

/// Takes a member's state of the context anew: the operator's tool for a
/// copy that went astray. Refused (409 `LocalStateExists`) while this node
/// has DAG heads of its own unless `force`, which drops its replicated
/// state (private storage is kept) first; refused, changing nothing, when
/// no member is connected to take it from (409 `NoMembers`).
#[utoipa::path(post, path = "/admin-api/contexts/{id}/resync", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    request_body(content = ResyncRequest, description = "Optional"),
    responses((status = 200, body = ResyncResponse),
        (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody),
        (status = 409, description = "Local heads without force, or nobody to resync from", body = mero_api::ErrorBody)))]
pub(crate) async fn resync_context(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ResyncResponse>> {
    let ctx = context_id(&id)?;
    let req: ResyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ResyncRequest::default()
    } else {
        json_body(&body)?
    };
    node.resync_context(&ctx, req.force).await?;
    Ok(Json(ResyncResponse {
        context_id: id,
        resync_started: true,
    }))
}

/// Every installed version of the application's package, oldest first.
#[utoipa::path(get, path = "/admin-api/applications/{id}/versions", tag = "applications",
    params(("id" = String, Path, description = "Base58 application id")),
    responses((status = 200, body = Data<Vec<ApplicationVersion>>),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn application_versions(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<Vec<ApplicationVersion>>>> {
    let versions = node.application_versions(&application_id(&id)?)?;
    Ok(Json(Data::new(
        versions
            .iter()
            .map(|a| ApplicationVersion {
                version: a.record.version.clone(),
                blob_id: b58(&a.record.blob),
                size: a.record.size,
                package: a.record.package.clone(),
                application_id: b58(&a.record.id),
                state_version: a.record.state_version,
            })
            .collect(),
    )))
}
