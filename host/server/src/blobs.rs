//! `/admin-api/blobs`: upstream's blob API. Uploads stream to the node
//! (never held in memory whole); downloads stream from the file, fetched
//! first from the context's members when `?context_id=` names one and the
//! blob is not here. Metadata of a download rides in headers.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mero_api::Data;
use mero_api::blobs::{BlobDeleted, BlobDownloadQuery, BlobInfo, BlobList, BlobUploadQuery};
use mero_api::ids::{b58, parse_b58};
use mero_node::{BlobMeta, ContextId, Node};
use tokio::io::AsyncReadExt;

use crate::admin::context_id;
use crate::error::{ApiError, ApiResult};

/// How much of a file one body frame carries.
const FRAME: usize = 64 << 10;

fn blob_id(s: &str) -> ApiResult<[u8; 32]> {
    parse_b58(s, "blob id").map_err(|m| ApiError::bad("InvalidBlobId", m))
}

fn blob_not_found() -> ApiError {
    ApiError::not_found("BlobNotFound", "Blob not found")
}

fn context(q: Option<&String>) -> ApiResult<Option<ContextId>> {
    q.map(|c| context_id(c)).transpose()
}

/// The headers upstream's clients read a blob's metadata from.
fn headers(meta: &BlobMeta, resp: &mut Response) {
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set("content-length", meta.size.to_string());
    set("content-type", meta.mime.clone());
    set("etag", format!("\"{}\"", hex::encode(meta.id)));
    // Possibly private context data: no shared caches, and a deleted blob
    // must not keep being served from one.
    set("cache-control", "private, no-cache".into());
    set("x-blob-id", b58(&meta.id));
    set("x-blob-hash", hex::encode(meta.id));
    set("x-blob-mime-type", meta.mime.clone());
    set(
        "access-control-expose-headers",
        "X-Blob-ID, X-Blob-Hash, X-Blob-MIME-Type, ETag".into(),
    );
}

/// Stores the request body as a blob (at most `blobstore.max_blob_bytes`,
/// 1 GiB by default; a larger one is refused whole), streamed. With
/// `?context_id=`, the members of that context (which this node must hold)
/// may fetch it from here; with `?hash=`, the bytes must hash to it.
#[utoipa::path(put, path = "/admin-api/blobs", tag = "blobs",
    params(("context_id" = Option<String>, Query, description = "Base58 context whose members may fetch it"),
        ("hash" = Option<String>, Query, description = "Expected base58 hash of the bytes")),
    request_body(content = Vec<u8>, description = "The blob's bytes, any Content-Type", content_type = "application/octet-stream"),
    responses((status = 200, body = Data<BlobInfo>),
        (status = 400, description = "Bad id, too large, hash mismatch, upload broke off", body = mero_api::ErrorBody),
        (status = 403, description = "Not a member of the context", body = mero_api::ErrorBody),
        (status = 404, description = "Unknown context", body = mero_api::ErrorBody)))]
pub(crate) async fn upload(
    State(node): State<Node>,
    Query(q): Query<BlobUploadQuery>,
    body: Body,
) -> ApiResult<Json<Data<BlobInfo>>> {
    let ctx = context(q.context_id.as_ref())?;
    let expected = q
        .hash
        .as_deref()
        .map(|h| parse_b58(h, "hash"))
        .transpose()
        .map_err(|m| ApiError::bad("InvalidHash", m))?;
    let meta = node
        .add_blob(body.into_data_stream(), ctx.as_ref(), expected.as_ref())
        .await?;
    Ok(Json(Data::new(BlobInfo {
        blob_id: b58(&meta.id),
        size: meta.size,
    })))
}

/// Every blob on this node.
#[utoipa::path(get, path = "/admin-api/blobs", tag = "blobs",
    responses((status = 200, body = Data<BlobList>)))]
pub(crate) async fn list(State(node): State<Node>) -> ApiResult<Json<Data<BlobList>>> {
    let blobs = node
        .blobs()?
        .iter()
        .map(|m| BlobInfo {
            blob_id: b58(&m.id),
            size: m.size,
        })
        .collect();
    Ok(Json(Data::new(BlobList { blobs })))
}

/// A blob's bytes, streamed, with its metadata in headers. With
/// `?context_id=`, a blob not here is fetched first from that context's
/// members (in chunks, kept only if it hashes to its id).
#[utoipa::path(get, path = "/admin-api/blobs/{id}", tag = "blobs",
    params(("id" = String, Path, description = "Base58 blob id"),
        ("context_id" = Option<String>, Query, description = "Base58 context to fetch it from if it is not here")),
    responses((status = 200, description = "The bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = mero_api::ErrorBody), (status = 403, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody),
        (status = 504, description = "No member of the context connected", body = mero_api::ErrorBody)))]
pub(crate) async fn download(
    State(node): State<Node>,
    Path(id): Path<String>,
    Query(q): Query<BlobDownloadQuery>,
) -> ApiResult<Response> {
    let id = blob_id(&id)?;
    let ctx = context(q.context_id.as_ref())?;
    let (meta, file) = node
        .open_blob(&id, ctx.as_ref())
        .await?
        .ok_or_else(blob_not_found)?;
    let frames = futures::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0; FRAME];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
    // A read error ends the body: the client sees it cut short.
    .take_while(|r| std::future::ready(r.is_ok()));
    let mut resp = Body::from_stream(frames).into_response();
    headers(&meta, &mut resp);
    Ok(resp)
}

/// A blob's metadata in headers, without its bytes (404 if not here).
#[utoipa::path(head, path = "/admin-api/blobs/{id}", tag = "blobs",
    params(("id" = String, Path, description = "Base58 blob id")),
    responses((status = 200, description = "Content-Length, Content-Type, ETag, X-Blob-ID, X-Blob-Hash, X-Blob-MIME-Type"),
        (status = 400, body = mero_api::ErrorBody), (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn info(State(node): State<Node>, Path(id): Path<String>) -> ApiResult<Response> {
    let meta = node.blob(&blob_id(&id)?)?.ok_or_else(blob_not_found)?;
    let mut resp = StatusCode::OK.into_response();
    headers(&meta, &mut resp);
    Ok(resp)
}

/// Deletes a blob from this node.
#[utoipa::path(delete, path = "/admin-api/blobs/{id}", tag = "blobs",
    params(("id" = String, Path, description = "Base58 blob id")),
    responses((status = 200, body = BlobDeleted), (status = 400, body = mero_api::ErrorBody),
        (status = 404, body = mero_api::ErrorBody)))]
pub(crate) async fn delete(
    State(node): State<Node>,
    Path(id): Path<String>,
) -> ApiResult<Json<BlobDeleted>> {
    let raw = blob_id(&id)?;
    if !node.delete_blob(&raw).await? {
        return Err(blob_not_found());
    }
    Ok(Json(BlobDeleted {
        blob_id: b58(&raw),
        deleted: true,
    }))
}
