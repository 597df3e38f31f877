//! `/admin-api/contexts/:id/*` routes upstream's clients call beyond
//! create, join, delete and sync: the keys acting in a context, this
//! node's own, the bytes of its state here, and leaving it on this node;
//! and `GET /admin-api/contexts/:id/state` (our own, read-only): its state
//! as stored here, collection by collection, page by page, private storage
//! as sizes only.

use axum::Json;
use axum::extract::{Path, Query, State};
use mero_api::Data;
use mero_api::ids::b58;
use mero_api::inspect::{
    AuthoredInfo, ContextState, CounterSums, PrivateStorageSize, StateBytes, StateChild,
    StateEntryInfo, StateFieldInfo, StateQuery,
};
use mero_api::node::{ContextIdentities, ContextStorage, LeaveContextData};
use mero_node::{Node, StateValue};

use crate::admin::context_id;
use crate::error::{ApiError, ApiResult};

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

/// Entries of a state page when the query names no limit.
const DEFAULT_STATE_PAGE: usize = 50;

fn hex_arg(s: Option<&str>, what: &str) -> ApiResult<Option<Vec<u8>>> {
    s.filter(|s| !s.is_empty())
        .map(|s| {
            hex::decode(s)
                .map_err(|_| ApiError::bad("InvalidQuery", format!("`{what}` must be hex")))
        })
        .transpose()
}

/// A context's state as stored on this node: the app's root fields with
/// their sizes and private storage as sizes; with `collection` (a field's
/// or a nested collection's hex id), a page of its visible entries in key
/// order, `next` naming where the following page starts. Values are shown
/// as hex and, when UTF-8, as text (the SDKs write JSON).
#[utoipa::path(get, path = "/admin-api/contexts/{id}/state", tag = "contexts",
    params(("id" = String, Path, description = "Base58 context id"),
        ("collection" = Option<String>, Query, description = "Hex collection id to page through"),
        ("after" = Option<String>, Query, description = "Hex raw key: the previous page's `next`"),
        ("limit" = Option<usize>, Query, description = "Entries per page (default 50, at most 500)")),
    responses((status = 200, body = Data<ContextState>), (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn state(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<StateQuery>,
) -> ApiResult<Json<Data<ContextState>>> {
    let ctx = context_id(&id)?;
    let collection = hex_arg(q.collection.as_deref(), "collection")?
        .map(|c| {
            <[u8; 32]>::try_from(c.as_slice())
                .map_err(|_| ApiError::bad("InvalidQuery", "`collection` is 32 bytes of hex"))
        })
        .transpose()?;
    let after = hex_arg(q.after.as_deref(), "after")?;
    let page = node
        .state_page(
            &ctx,
            collection,
            after,
            q.limit.unwrap_or(DEFAULT_STATE_PAGE),
        )
        .await?;
    let entries = page
        .entries
        .iter()
        .map(|e| {
            let mut info = StateEntryInfo {
                kind: String::new(),
                key: StateBytes::of(&e.key),
                value: None,
                child: None,
                counter: None,
                authored: None,
            };
            match &e.value {
                StateValue::Register(v) => {
                    info.kind = "register".into();
                    info.value = Some(StateBytes::of(v));
                }
                StateValue::Key { child, value } => {
                    info.kind = "key".into();
                    info.value = value.as_deref().map(StateBytes::of);
                    info.child = child.map(|(c, entries)| StateChild {
                        collection: hex::encode(c),
                        entries,
                    });
                }
                StateValue::Counter {
                    increments,
                    decrements,
                } => {
                    info.kind = "counter".into();
                    info.counter = Some(CounterSums {
                        increments: *increments,
                        decrements: *decrements,
                    });
                }
                StateValue::Authored {
                    value,
                    owner,
                    version,
                } => {
                    info.kind = "authored".into();
                    info.value = Some(StateBytes::of(value));
                    info.authored = Some(AuthoredInfo {
                        owner: b58(owner),
                        version: *version,
                    });
                }
            }
            info
        })
        .collect();
    Ok(Json(Data::new(ContextState {
        state_version: page.state_version,
        fields: page
            .fields
            .iter()
            .map(|f| StateFieldInfo {
                name: f.name.clone(),
                kind: f.kind.clone(),
                collection: hex::encode(f.collection),
                entries: f.entries,
            })
            .collect(),
        private: PrivateStorageSize {
            entries: page.private_entries,
            size_in_bytes: page.private_bytes,
        },
        collection: collection.map(hex::encode),
        entries,
        next: page.next.map(hex::encode),
    })))
}
