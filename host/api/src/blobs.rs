//! The blob API (`PUT /admin-api/blobs[?context_id=]`, `GET /admin-api/blobs`,
//! `GET|HEAD|DELETE /admin-api/blobs/:id`), in upstream's shapes, which are
//! snake_case. Blob ids are base58 of the bytes' SHA-256. A download's
//! metadata rides in headers: `Content-Length`, `Content-Type`, `ETag`
//! (quoted hex hash), `X-Blob-ID`, `X-Blob-Hash` (hex), `X-Blob-MIME-Type`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A blob: its id and size (upstream's `BlobInfo`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobInfo {
    /// Base58 of its SHA-256.
    pub blob_id: String,
    /// Bytes.
    pub size: u64,
}

/// `GET /admin-api/blobs` (in `data`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BlobList {
    /// Every blob on the node.
    pub blobs: Vec<BlobInfo>,
}

/// `DELETE /admin-api/blobs/:id`; not wrapped in `data`, as upstream.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BlobDeleted {
    /// Base58 blob id.
    pub blob_id: String,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// `PUT /admin-api/blobs`'s query.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct BlobUploadQuery {
    /// Base58 context whose members may fetch it from this node.
    #[serde(default)]
    pub context_id: Option<String>,
    /// Expected base58 hash: the upload is refused if the bytes differ.
    #[serde(default)]
    pub hash: Option<String>,
}

/// `GET /admin-api/blobs/:id`'s query.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct BlobDownloadQuery {
    /// Base58 context to fetch it from (its members) if it is not here.
    #[serde(default)]
    pub context_id: Option<String>,
}
