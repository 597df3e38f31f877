//! `/admin-api/groups/:id/upgrade*` and `/admin-api/applications/:id/versions`:
//! moving a group to another version of its application, and the versions
//! installed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use mero_api::Data;
use mero_api::ids::{b58, hex32};
use mero_api::upgrade::{
    ApplicationVersion, ContextUpgradeStatus, GroupUpgradeStatus, UpgradeGroupRequest,
    UpgradeGroupResponse,
};
use mero_node::{Node, Phase, UpgradeStatus};

use crate::admin::{application_id, group_id, json_body};
use crate::error::{ApiError, ApiResult};

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

fn status_dto(s: &UpgradeStatus) -> GroupUpgradeStatus {
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
/// nothing (409 with the reason).
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
    if req.cascade {
        return Err(ApiError::bad(
            "CascadeNotSupported",
            "cascading an upgrade through subgroups is not supported yet: upgrade each group",
        ));
    }
    let status = node
        .upgrade_group(&group, &target, req.force_code_only)
        .await?;
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
