//! `calimero:context/blobs`: the blobs a call references, read and made
//! through the node's blob store ([`Blobs`]), which this crate only sees as
//! a trait (the node fetches a blob it lacks from the context's members).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use mero_crdt::ContextId;

use super::{HostState, Mode};
use crate::bindings::StorageError;
use crate::bindings::calimero::context::blobs;

/// Most bytes one `read` returns: a guest asking for more gets this much
/// and reads on, so no single answer grows its memory by much.
pub const MAX_BLOB_READ: u32 = 1 << 20;

/// How long before the call's deadline a wait for a blob gives up, leaving
/// the guest time to handle the error rather than be stopped mid-read.
const DEADLINE_MARGIN: Duration = Duration::from_millis(200);

/// How long a read waits for a fetch in a call with no deadline.
const NO_DEADLINE_WAIT: Duration = Duration::from_secs(30);

/// The future a [`Blobs`] method returns.
pub type BlobFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BlobError>> + Send + 'a>>;

/// Why a blob operation failed. Every variant reaches the guest as a
/// `storage-error`; none traps it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The offset is past the blob's end.
    #[error("{0}")]
    OutOfRange(String),
    /// The blob is larger than the node takes.
    #[error("{0}")]
    TooLarge(String),
    /// The blob cannot be had now: still being fetched, no member to ask,
    /// the node's storage failed. The string says which.
    #[error("{0}")]
    Unavailable(String),
}

/// The node's blob store, as calls see it. Implemented by the node;
/// methods get the call's context and how long they may wait.
pub trait Blobs: Send + Sync + 'static {
    /// The size of blob `id`, fetching it first from the members of `ctx`
    /// if this node does not hold it (waiting at most `wait`; the fetch
    /// goes on after). `None`: no such blob here or at any member asked.
    fn size(&self, ctx: ContextId, id: [u8; 32], wait: Duration) -> BlobFuture<'_, Option<u64>>;

    /// Up to `len` bytes of blob `id` from `offset` (fewer at its end),
    /// fetched first as for [`size`](Self::size).
    fn read(
        &self,
        ctx: ContextId,
        id: [u8; 32],
        offset: u64,
        len: u32,
        wait: Duration,
    ) -> BlobFuture<'_, Option<Vec<u8>>>;

    /// Stores `data` as a blob that the members of `ctx` may fetch from
    /// here; returns its id (the SHA-256 of `data`).
    fn create(&self, ctx: ContextId, data: Vec<u8>) -> BlobFuture<'_, [u8; 32]>;
}

impl From<BlobError> for StorageError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::OutOfRange(m) => StorageError::OutOfRange(m),
            BlobError::TooLarge(m) => StorageError::TooLarge(m),
            BlobError::Unavailable(m) => StorageError::Other(m),
        }
    }
}

fn blob_id(id: &[u8]) -> Result<[u8; 32], StorageError> {
    id.try_into().map_err(|_| {
        StorageError::Other(format!(
            "a blob id is 32 bytes (the SHA-256 of the blob), not {}",
            id.len()
        ))
    })
}

impl HostState {
    /// The blob store and how long this call may wait on it, or why the
    /// call may not use blobs.
    fn blob_store(&self) -> Result<(std::sync::Arc<dyn Blobs>, Duration), StorageError> {
        if self.mode == Mode::Describe {
            return Err(StorageError::Other(
                "blobs are not available while the app describes itself".into(),
            ));
        }
        if self.migration || self.config.fuel.is_some() {
            return Err(StorageError::Other(
                "blobs are not available to a migration: nodes hold different blobs, \
                 and a migration must compute the same state on every node"
                    .into(),
            ));
        }
        let Some(store) = self.blobs.clone() else {
            return Err(StorageError::Other(
                "this node offers no blob store to apps".into(),
            ));
        };
        let wait = self
            .deadline
            .map(|d| {
                d.saturating_duration_since(Instant::now())
                    .saturating_sub(DEADLINE_MARGIN)
            })
            // No deadline: a timeout past the end of time.
            .unwrap_or(NO_DEADLINE_WAIT);
        Ok((store, wait))
    }
}

impl blobs::Host for HostState {
    async fn size(&mut self, id: Vec<u8>) -> wasmtime::Result<Result<Option<u64>, StorageError>> {
        let (store, wait, id) = match self
            .blob_store()
            .and_then(|(s, w)| Ok((s, w, blob_id(&id)?)))
        {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        Ok(store.size(self.env.ctx, id, wait).await.map_err(Into::into))
    }

    async fn read(
        &mut self,
        id: Vec<u8>,
        offset: u64,
        len: u32,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, StorageError>> {
        let (store, wait, id) = match self
            .blob_store()
            .and_then(|(s, w)| Ok((s, w, blob_id(&id)?)))
        {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let len = len.min(MAX_BLOB_READ);
        let r = store.read(self.env.ctx, id, offset, len, wait).await;
        let got = match r {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e.into())),
        };
        // Charged as read; one read (at most MAX_BLOB_READ) past the budget
        // is refused, not handed over.
        self.blob_read = self.blob_read.saturating_add(got.len() as u64);
        let max = self.config.max_blob_bytes_read_per_call;
        if self.blob_read > max {
            return Ok(Err(self.over_budget(format!(
                "more than {max} blob bytes read in one call"
            ))));
        }
        Ok(Ok(Some(got)))
    }

    async fn create(&mut self, data: Vec<u8>) -> wasmtime::Result<Result<Vec<u8>, StorageError>> {
        let store = match self.blob_store() {
            Ok((s, _)) => s,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(e) = self.deny_write().or_else(|| self.charge(data.len())) {
            return Ok(Err(e));
        }
        let r = store.create(self.env.ctx, data).await;
        Ok(r.map(|id| id.to_vec()).map_err(Into::into))
    }
}
