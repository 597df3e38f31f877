//! Blobs as apps' calls see them (`calimero:context/blobs`): the node's
//! blob store behind the runtime's [`Blobs`] trait. A call reads the blobs
//! this node holds for the call's context (uploaded with its id, made by a
//! call in it, or fetched for it); any other is fetched from the context's
//! members (as `GET /blobs/<id>?context_id=` does), the call waiting for it
//! until shortly before its deadline. The fetch runs as a task of its own,
//! shared by every call that asks for the same blob meanwhile, and goes on
//! when a call stops waiting, so a later call finds the blob here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use mero_crdt::ContextId;
use mero_runtime::{BlobError, BlobFuture, Blobs};

use crate::blobs::Fetched;
use crate::error::NodeError;
use crate::node::{Inner, Node};

/// How a fetch for a call ended: `Ok(true)` here now, `Ok(false)` no
/// member has it for the context.
type FetchOutcome = Result<bool, String>;
type Fetch = Shared<BoxFuture<'static, FetchOutcome>>;
/// The fetches under way, by blob and context.
type Fetching = Arc<Mutex<HashMap<([u8; 32], ContextId), Fetch>>>;

/// The blob store apps' calls use. Holds the node weakly: the runtime it is
/// offered to belongs to the node.
pub(crate) struct AppBlobs {
    node: Weak<Inner>,
    fetching: Fetching,
}

fn unavailable(e: NodeError) -> BlobError {
    match e.kind() {
        "BlobTooLarge" => BlobError::TooLarge(e.to_string()),
        _ => BlobError::Unavailable(e.to_string()),
    }
}

impl AppBlobs {
    pub(crate) fn new(node: Weak<Inner>) -> AppBlobs {
        AppBlobs {
            node,
            fetching: Arc::default(),
        }
    }

    fn node(&self) -> Result<Node, BlobError> {
        self.node
            .upgrade()
            .map(|inner| Node { inner })
            .ok_or_else(|| BlobError::Unavailable("the node is shutting down".into()))
    }

    /// Whether blob `id` is here, fetching it from the members of `ctx`
    /// first if it is not (waiting at most `wait`).
    async fn ensure(
        &self,
        ctx: ContextId,
        id: [u8; 32],
        wait: Duration,
    ) -> Result<bool, BlobError> {
        let node = self.node()?;
        // Only a blob of this context: one this node holds for another
        // context (or for none) is not this app's to read just because it
        // knows its id; a member that holds it for the context may send it.
        let blobs = &node.inner.blobs;
        if blobs.get(&id).map_err(unavailable)?.is_some()
            && blobs.announced(&id, &ctx).map_err(unavailable)?
        {
            return Ok(true);
        }
        let fetch = {
            let Ok(mut fetching) = self.fetching.lock() else {
                return Err(BlobError::Unavailable(
                    "blob fetches are in disarray".into(),
                ));
            };
            fetching
                .entry((id, ctx))
                .or_insert_with(|| {
                    let fetch = async move {
                        match node.fetch_blob_from_members(&id, &ctx).await {
                            Ok(Fetched::Got) => Ok(true),
                            Ok(Fetched::Refused(_)) => Ok(false),
                            Ok(Fetched::Failed(why)) => {
                                Err(format!("no member of the context served the blob: {why}"))
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    .boxed()
                    .shared();
                    // Driven to its end by a task of its own, whoever waits.
                    let (done, fetching) = (fetch.clone(), self.fetching.clone());
                    tokio::spawn(async move {
                        let _ = done.await;
                        if let Ok(mut f) = fetching.lock() {
                            f.remove(&(id, ctx));
                        }
                    });
                    fetch
                })
                .clone()
        };
        match tokio::time::timeout(wait, fetch).await {
            Ok(Ok(here)) => Ok(here),
            Ok(Err(why)) => Err(BlobError::Unavailable(why)),
            Err(_) => Err(BlobError::Unavailable(format!(
                "blob {} is being fetched from the context's members; call again later",
                bs58::encode(id).into_string()
            ))),
        }
    }
}

impl Blobs for AppBlobs {
    fn size(&self, ctx: ContextId, id: [u8; 32], wait: Duration) -> BlobFuture<'_, Option<u64>> {
        Box::pin(async move {
            if !self.ensure(ctx, id, wait).await? {
                return Ok(None);
            }
            let node = self.node()?;
            let meta = node.inner.blobs.get(&id).map_err(unavailable)?;
            Ok(meta.map(|m| m.size))
        })
    }

    fn read(
        &self,
        ctx: ContextId,
        id: [u8; 32],
        offset: u64,
        len: u32,
        wait: Duration,
    ) -> BlobFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            if !self.ensure(ctx, id, wait).await? {
                return Ok(None);
            }
            let node = self.node()?;
            let Some(meta) = node.inner.blobs.get(&id).map_err(unavailable)? else {
                // Deleted between the two looks.
                return Ok(None);
            };
            if offset > meta.size {
                return Err(BlobError::OutOfRange(format!(
                    "offset {offset} is past the end of a blob of {} bytes",
                    meta.size
                )));
            }
            let bytes = node
                .inner
                .blobs
                .read_at(&id, offset, len)
                .await
                .map_err(unavailable)?;
            Ok(Some(bytes))
        })
    }

    fn create(&self, ctx: ContextId, data: Vec<u8>) -> BlobFuture<'_, [u8; 32]> {
        Box::pin(async move {
            let node = self.node()?;
            let body =
                futures::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
            let meta = node
                .add_blob(Box::pin(body), Some(&ctx), None)
                .await
                .map_err(unavailable)?;
            Ok(meta.id)
        })
    }
}
