//! `/admin-api/contexts/:id/*` routes upstream's clients call beyond
//! create, join, delete and sync: the keys acting in a context, this
//! node's own, the bytes of its state here, and leaving it on this node.

use axum::Json;
use axum::extract::{Path, State};
use mero_api::Data;
use mero_api::ids::b58;
use mero_api::node::{ContextIdentities, ContextStorage, LeaveContextData};
use mero_node::Node;

use crate::admin::context_id;
use crate::error::ApiResult;

/// The keys acting in a context: the members of its group.
#[utoipa::path(get, path = "/admin-api/contexts/{id}/identities", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<ContextIdentities>), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn identities(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<ContextIdentities>>> {
    let keys = node.context_identities(&context_id(&id)?)?;
    Ok(Json(Data::new(ContextIdentities {
        identities: keys.iter().map(b58).collect(),
    })))
}

/// The keys this node acts as in a context: its own, if it is a member.
#[utoipa::path(get, path = "/admin-api/contexts/{id}/identities-owned", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<ContextIdentities>), (status = 400, body = mero_api::ErrorBody),
        (status = 403, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn identities_owned(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<ContextIdentities>>> {
    let me = node.public_key();
    let keys = node.context_identities(&context_id(&id)?)?;
    Ok(Json(Data::new(ContextIdentities {
        identities: keys.iter().filter(|k| **k == me).map(b58).collect(),
    })))
}

/// The bytes of a context's state on this node.
#[utoipa::path(get, path = "/admin-api/contexts/{id}/storage", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<ContextStorage>), (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn storage(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<ContextStorage>>> {
    let size_in_bytes = node.context_storage_size(&context_id(&id)?).await?;
    Ok(Json(Data::new(ContextStorage { size_in_bytes })))
}

/// Leaves a context on this node only (upstream's node-local opt-out): its
/// replica here is deleted and auto-follow no longer joins it; the other
/// members are not told. `POST /admin-api/contexts/:id/join` undoes it.
#[utoipa::path(post, path = "/admin-api/contexts/{id}/leave", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id")),
    responses((status = 200, body = Data<LeaveContextData>), (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn leave(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<Data<LeaveContextData>>> {
    let ctx = context_id(&id)?;
    node.leave_context(&ctx).await?;
    Ok(Json(Data::new(LeaveContextData {
        context_id: b58(&ctx.0),
        member_public_key: b58(&node.public_key()),
    })))
}
