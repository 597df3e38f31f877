//! `/admin-api/groups/*` routes beyond membership and upgrades: reading a
//! group, its subgroups, a member's auto-follow setting; and the
//! namespaces running an application.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use mero_api::Data;
use mero_api::ids::{b58, hex32};
use mero_api::node::{GroupInfo, PageQuery, SubgroupEntry, SubgroupList};
use mero_node::Node;
use mero_node::governance::metadata::Target;

use crate::admin::{application_id, group_id, json_body, member_id, namespace_dto};
use crate::error::ApiResult;

/// Sets what a member's node joins on its own in a group: its contexts
/// (on by default) and subgroups. The member itself or an admin may; the
/// change is a governance op every member folds.
#[utoipa::path(put, path = "/admin-api/groups/{id}/members/{account}/auto-follow", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("account" = String, Path, description = "Hex member key")),
    request_body = mero_api::SetAutoFollowRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_auto_follow(
    State(node): State<Node>,
    Path((id, account)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: mero_api::SetAutoFollowRequest = json_body(&body)?;
    node.membership()
        .set_auto_follow(
            &group_id(&id)?,
            &member_id(&account)?,
            req.auto_follow_contexts,
            req.auto_follow_subgroups,
        )
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// A group (a namespace or a subgroup): its application, counts, its
/// upgrade (`activeUpgrade`, if it had one), default capabilities,
/// visibility, metadata and a digest of its governance (`groupStateHash`,
/// equal on nodes that agree on it).
#[utoipa::path(get, path = "/admin-api/groups/{id}", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    responses((status = 200, body = Data<GroupInfo>), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_group(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<GroupInfo>>> {
    let group = group_id(&id)?;
    let info = node.membership().group_info(&group)?;
    let metadata = node
        .membership()
        .metadata(&group, &Target::Group)?
        .map(crate::metadata::record_dto);
    let active_upgrade = node
        .upgrade_status(&group)?
        .as_ref()
        .map(crate::upgrade::status_dto);
    Ok(Json(Data::new(GroupInfo {
        group_id: hex32(&info.id),
        app_key: hex32(&info.app.blob),
        target_application_id: b58(&info.app.id),
        member_count: info.members as u64,
        context_count: info.contexts as u64,
        active_upgrade,
        default_capabilities: info.default_capabilities,
        subgroup_visibility: match info.open {
            Some(true) => "open",
            Some(false) | None => "restricted",
        }
        .into(),
        metadata,
        group_state_hash: hex32(&info.state_hash),
        namespace_id: hex32(&info.namespace),
        parent_group_id: info.parent.as_ref().map(hex32),
        name: info.name,
    })))
}

/// The direct subgroups of a group.
#[utoipa::path(get, path = "/admin-api/groups/{id}/subgroups", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    responses((status = 200, body = SubgroupList), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn list_subgroups(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<SubgroupList>> {
    let subgroups = node
        .membership()
        .child_groups(&group_id(&id)?)?
        .into_iter()
        .map(|(id, name)| SubgroupEntry {
            group_id: hex32(&id),
            name,
        })
        .collect();
    Ok(Json(SubgroupList { subgroups }))
}

/// The namespaces running an application (`?offset=&limit=` pages them).
#[utoipa::path(get, path = "/admin-api/namespaces/for-application/{app}", tag = "namespaces",
    params(("app" = String, Path, description = "Base58 application id"),
        ("offset" = Option<usize>, Query, description = "Skip this many"),
        ("limit" = Option<usize>, Query, description = "At most this many")),
    responses((status = 200, body = Data<Vec<mero_api::Namespace>>), (status = 400, body = mero_api::ErrorBody)))]
pub(crate) async fn namespaces_for_application(
    State(node): State<Node>,
    Path(app): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Data<Vec<mero_api::Namespace>>>> {
    let app = application_id(&app)?;
    let namespaces = node
        .namespaces()?
        .iter()
        .filter(|n| n.group.application == app)
        .skip(page.offset.unwrap_or(0))
        .take(page.limit.unwrap_or(usize::MAX))
        .map(namespace_dto)
        .collect();
    Ok(Json(Data::new(namespaces)))
}
