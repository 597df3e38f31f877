//! Metadata records of a group, of a member of a group, and of a context
//! registered in a group: `GET`/`PUT` on `…/metadata`, upstream's routes
//! and shapes. The node replicates them through governance; a payload over
//! the limits is a 400, a writer without the right a 403.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use mero_api::ids::b58;
use mero_api::metadata::{GetMetadataResponse, MetadataRecord, SetMetadataRequest};
use mero_node::Node;
use mero_node::governance::metadata::{Record, Target};

use crate::admin::{context_id, group_id, json_body, member_id};
use crate::error::ApiResult;

pub(crate) fn record_dto(r: Record) -> MetadataRecord {
    MetadataRecord {
        name: r.name,
        data: r.data,
        updated_at: r.updated_at,
        updated_by: b58(&r.updated_by),
    }
}

fn get(node: &Node, group: &str, target: Target) -> ApiResult<Json<GetMetadataResponse>> {
    let record = node.membership().metadata(&group_id(group)?, &target)?;
    Ok(Json(GetMetadataResponse {
        data: record.map(record_dto),
    }))
}

async fn set(
    node: &Node,
    group: &str,
    target: Target,
    body: &Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    let req: SetMetadataRequest = json_body(body)?;
    node.membership()
        .set_metadata(&group_id(group)?, target, req.name, req.data)
        .await?;
    Ok(Json(serde_json::json!({})))
}

/// A group's metadata record (`{"data": null}` if never set).
#[utoipa::path(get, path = "/admin-api/groups/{id}/metadata", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    responses((status = 200, body = GetMetadataResponse), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_group(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<GetMetadataResponse>> {
    get(&node, &id, Target::Group)
}

/// Replaces a group's metadata record: admins and holders of
/// manage-metadata.
#[utoipa::path(put, path = "/admin-api/groups/{id}/metadata", tag = "groups",
    params(("id" = String, Path, description = "Hex group id")),
    request_body = SetMetadataRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_group(
    State(node): State<Node>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    set(&node, &id, Target::Group, &body).await
}

/// A member's metadata record in a group.
#[utoipa::path(get, path = "/admin-api/groups/{id}/members/{account}/metadata", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("account" = String, Path, description = "Hex member key")),
    responses((status = 200, body = GetMetadataResponse), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_member(
    State(node): State<Node>,
    Path((id, account)): Path<(String, String)>,
) -> ApiResult<Json<GetMetadataResponse>> {
    get(&node, &id, Target::Member(member_id(&account)?))
}

/// Replaces a member's metadata record: the member itself, admins and
/// holders of manage-metadata.
#[utoipa::path(put, path = "/admin-api/groups/{id}/members/{account}/metadata", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("account" = String, Path, description = "Hex member key")),
    request_body = SetMetadataRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_member(
    State(node): State<Node>,
    Path((id, account)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    set(&node, &id, Target::Member(member_id(&account)?), &body).await
}

/// A context's metadata record in its group.
#[utoipa::path(get, path = "/admin-api/groups/{id}/contexts/{context}/metadata", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("context" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = GetMetadataResponse), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn get_context(
    State(node): State<Node>,
    Path((id, ctx)): Path<(String, String)>,
) -> ApiResult<Json<GetMetadataResponse>> {
    get(&node, &id, Target::Context(context_id(&ctx)?.0))
}

/// Replaces a context's metadata record: admins and holders of
/// manage-metadata.
#[utoipa::path(put, path = "/admin-api/groups/{id}/contexts/{context}/metadata", tag = "groups",
    params(("id" = String, Path, description = "Hex group id"), ("context" = String, Path, description = "Base58 context id")),
    request_body = SetMetadataRequest,
    responses((status = 200, description = "Done: `{}`"), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn set_context(
    State(node): State<Node>,
    Path((id, ctx)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<serde_json::Value>> {
    set(&node, &id, Target::Context(context_id(&ctx)?.0), &body).await
}
