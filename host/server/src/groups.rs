//! `/admin-api/groups/*` routes beyond membership and upgrades: reading a
//! group, its subgroups, and a member's auto-follow setting.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use mero_node::Node;

use crate::admin::{group_id, json_body, member_id};
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
