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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

    use std::sync::Arc;

    use wasmtime::StoreLimitsBuilder;
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::WasiCtxBuilder;

    use super::*;
    use crate::config::RuntimeConfig;
    use crate::error::CallError;
    use crate::host::CallEnv;

    /// Holds every blob as 100 bytes of 7s.
    struct Sevens;

    impl Blobs for Sevens {
        fn size(&self, _: ContextId, _: [u8; 32], _: Duration) -> BlobFuture<'_, Option<u64>> {
            Box::pin(async { Ok(Some(100)) })
        }
        fn read(
            &self,
            _: ContextId,
            _: [u8; 32],
            _: u64,
            len: u32,
            _: Duration,
        ) -> BlobFuture<'_, Option<Vec<u8>>> {
            Box::pin(async move { Ok(Some(vec![7; len as usize])) })
        }
        fn create(&self, _: ContextId, _: Vec<u8>) -> BlobFuture<'_, [u8; 32]> {
            Box::pin(async { Ok([7; 32]) })
        }
    }

    fn state(mode: Mode, migration: bool, blobs: bool, config: RuntimeConfig) -> HostState {
        HostState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().build(),
            env: CallEnv::describe(),
            mode,
            migration,
            state_version: 0,
            config: Arc::new(config),
            blobs: blobs.then(|| Arc::new(Sevens) as Arc<dyn Blobs>),
            chain_identities: None,
            blob_read: 0,
            deadline: Some(Instant::now() + Duration::from_secs(2)),
        }
    }

    fn other(r: Result<impl std::fmt::Debug, StorageError>, says: &str) {
        match r {
            Err(StorageError::Other(m)) if m.contains(says) => {}
            r => panic!("expected `other` saying {says:?}, got {r:?}"),
        }
    }

    #[tokio::test]
    async fn calls_that_may_not_use_blobs_get_errors_not_traps() {
        let id = vec![1; 32];
        let cfg = RuntimeConfig::default;
        // A migration and its check: refused, whatever the store.
        let mut s = state(Mode::Mutating, true, true, cfg());
        other(
            blobs::Host::size(&mut s, id.clone()).await.unwrap(),
            "migration",
        );
        other(
            blobs::Host::create(&mut s, vec![1]).await.unwrap(),
            "migration",
        );
        let mut s = state(Mode::Mutating, false, true, cfg().deterministic(1000));
        other(
            blobs::Host::read(&mut s, id.clone(), 0, 1).await.unwrap(),
            "migration",
        );
        // Describing itself; a node with no store.
        let mut s = state(Mode::Describe, false, true, cfg());
        other(
            blobs::Host::size(&mut s, id.clone()).await.unwrap(),
            "describes",
        );
        let mut s = state(Mode::Mutating, false, false, cfg());
        other(
            blobs::Host::size(&mut s, id.clone()).await.unwrap(),
            "no blob store",
        );
        // Not an id.
        let mut s = state(Mode::Mutating, false, true, cfg());
        for bad in [vec![], vec![1; 31], vec![1; 33]] {
            other(
                blobs::Host::size(&mut s, bad.clone()).await.unwrap(),
                "32 bytes",
            );
            other(
                blobs::Host::read(&mut s, bad, 0, 1).await.unwrap(),
                "32 bytes",
            );
        }
        assert!(s.env.sticky.is_none(), "none of these fails the call");
        // A view may read but not make one, and the call fails with it.
        let mut s = state(Mode::ReadOnly("v".into()), false, true, cfg());
        let r = blobs::Host::size(&mut s, id.clone()).await.unwrap();
        assert!(matches!(r, Ok(Some(100))), "{r:?}");
        let r = blobs::Host::create(&mut s, vec![1]).await.unwrap();
        assert!(matches!(r, Err(StorageError::ReadOnly)), "{r:?}");
        assert!(matches!(s.env.sticky, Some(CallError::ReadOnly(_))));
    }

    #[tokio::test]
    async fn reads_are_capped_and_counted_and_makes_charged() {
        let id = vec![1; 32];
        let mut s = state(
            Mode::Mutating,
            false,
            true,
            RuntimeConfig {
                max_blob_bytes_read_per_call: 3 << 20,
                max_bytes_written_per_call: 1000,
                ..RuntimeConfig::default()
            },
        );
        // One read gives at most MAX_BLOB_READ, whatever is asked.
        let got = blobs::Host::read(&mut s, id.clone(), 0, u32::MAX)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), MAX_BLOB_READ as usize);
        for _ in 0..2 {
            blobs::Host::read(&mut s, id.clone(), 0, MAX_BLOB_READ)
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(s.blob_read, 3 << 20);
        // One byte more is past the budget: refused, and the call fails.
        let r = blobs::Host::read(&mut s, id.clone(), 0, 1).await.unwrap();
        assert!(matches!(r, Err(StorageError::LimitExceeded(_))), "{r:?}");
        assert!(matches!(s.env.sticky, Some(CallError::LimitExceeded(_))));
        // A made blob counts as bytes written.
        let mut s = state(
            Mode::Mutating,
            false,
            true,
            RuntimeConfig {
                max_bytes_written_per_call: 1000,
                ..RuntimeConfig::default()
            },
        );
        let r = blobs::Host::create(&mut s, vec![0; 600]).await.unwrap();
        assert!(matches!(&r, Ok(id) if *id == [7; 32]), "{r:?}");
        let r = blobs::Host::create(&mut s, vec![0; 600]).await.unwrap();
        assert!(matches!(r, Err(StorageError::LimitExceeded(_))), "{r:?}");
    }
}
