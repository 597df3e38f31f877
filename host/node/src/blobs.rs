//! Blobs as the API shows them (upstream's blob API): uploading one
//! (streamed, optionally announced to a context), listing, reading (from
//! here, or fetched from the context's members when asked for a context),
//! and deleting. A member fetches a blob in bounded chunks from a member
//! that announced it, and keeps it only if its bytes hash to its id.

use std::time::Duration;

use futures::{Stream, StreamExt};
use mero_crdt::ContextId;
use mero_network::PeerId;

use crate::authz;
use crate::blobstore::BlobMeta;
use crate::error::{NodeError, Result};
use crate::node::Node;
use crate::peers::unreachable;
use crate::replication::MAX_BLOB_CHUNK;
use crate::sync::{Request, Response, key_of};

/// How long one chunk (or the size) may take to arrive.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// How asking the members for a blob ended.
#[derive(Debug, Clone)]
pub(crate) enum Fetched {
    /// One served it: it is here now.
    Got,
    /// Every member asked said it has no such blob for the context.
    Refused(String),
    /// Some member failed otherwise (no answer in time, a wrong chunk, a
    /// hash mismatch); the string says how each failed.
    Failed(String),
}

impl Node {
    /// The namespace governance of `ctx`, if this node holds it and may
    /// read it (a blob of a context is its members').
    fn blob_context(
        &self,
        ctx: &ContextId,
    ) -> Result<std::sync::Arc<crate::governance::Namespace>> {
        let meta = self
            .inner
            .store
            .snapshot()?
            .context_meta(ctx)?
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?;
        let ns = meta
            .group
            .and_then(|g| self.inner.members.get(&g))
            .ok_or(authz::Denied::NotAMember)?;
        authz::may_read(&ns, &self.public_key(), ctx)?;
        Ok(ns)
    }

    /// Stores the bytes `body` streams as a blob (at most
    /// `blobstore.max_blob_bytes`, 1 GiB by default; with `expected`, only if they hash to it); with
    /// `context`, its members may fetch it from here. Returns its id
    /// (SHA-256), size and type.
    pub async fn add_blob<S, B, E>(
        &self,
        mut body: S,
        context: Option<&ContextId>,
        expected: Option<&[u8; 32]>,
    ) -> Result<BlobMeta>
    where
        S: Stream<Item = std::result::Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        if let Some(ctx) = context {
            self.blob_context(ctx)?;
        }
        let blobs = &self.inner.blobs;
        let mut incoming = blobs.incoming().await?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                NodeError::bad("BlobUploadFailed", format!("the upload broke off: {e}"))
            })?;
            incoming.write(chunk.as_ref()).await?;
        }
        let meta = blobs.keep(incoming, expected).await?;
        if let Some(ctx) = context {
            blobs.announce(&meta.id, ctx).await?;
        }
        Ok(meta)
    }

    /// Every blob on this node.
    pub fn blobs(&self) -> Result<Vec<BlobMeta>> {
        self.inner.blobs.list()
    }

    /// A blob on this node.
    pub fn blob(&self, id: &[u8; 32]) -> Result<Option<BlobMeta>> {
        self.inner.blobs.get(id)
    }

    /// Opens a blob: this node's, else (with `context`) fetched first from
    /// the members of that context. `None` if it is not here and no
    /// context was named.
    pub async fn open_blob(
        &self,
        id: &[u8; 32],
        context: Option<&ContextId>,
    ) -> Result<Option<(BlobMeta, tokio::fs::File)>> {
        if let Some(open) = self.inner.blobs.open(id).await? {
            return Ok(Some(open));
        }
        let Some(ctx) = context else {
            return Ok(None);
        };
        self.fetch_blob(id, ctx).await?;
        self.inner.blobs.open(id).await
    }

    /// Deletes a blob from this node; false if it was not here.
    pub async fn delete_blob(&self, id: &[u8; 32]) -> Result<bool> {
        self.inner.blobs.delete(id).await
    }

    /// Fetches blob `id` of `ctx` from a connected member that has it.
    async fn fetch_blob(&self, id: &[u8; 32], ctx: &ContextId) -> Result<()> {
        match self.fetch_blob_from_members(id, ctx).await? {
            Fetched::Got => Ok(()),
            Fetched::Refused(why) | Fetched::Failed(why) => Err(NodeError::not_found(
                "BlobNotFound",
                format!("no member served the blob: {why}"),
            )),
        }
    }

    /// Asks the connected members of `ctx` for blob `id` in turn until one
    /// serves it. An error only if there is no member to ask.
    pub(crate) async fn fetch_blob_from_members(
        &self,
        id: &[u8; 32],
        ctx: &ContextId,
    ) -> Result<Fetched> {
        let ns = self.blob_context(ctx)?;
        let me = self.public_key();
        let peers: Vec<PeerId> = self
            .inner
            .peers
            .connected()
            .await
            .into_iter()
            .filter(|p| key_of(p).is_some_and(|k| k != me && authz::may_read(&ns, &k, ctx).is_ok()))
            .collect();
        drop(ns);
        if peers.is_empty() {
            return Err(unreachable(
                "no other member of the context is connected to fetch the blob from",
            ));
        }
        let mut why = Vec::new();
        let mut all_refused = true;
        for p in peers {
            match self.fetch_blob_from(p, id, ctx).await {
                Ok(()) => return Ok(Fetched::Got),
                Err(e) => {
                    all_refused &= e.kind() == "BlobRefused";
                    why.push(e.to_string());
                }
            }
        }
        let why = why.join("; ");
        Ok(if all_refused {
            Fetched::Refused(why)
        } else {
            Fetched::Failed(why)
        })
    }

    async fn ask(&self, peer: PeerId, req: &Request) -> Result<Response> {
        match tokio::time::timeout(CHUNK_TIMEOUT, self.inner.peers.fetch(peer, req)).await {
            Ok(Ok(Response::Refused(why))) => Err(NodeError::Forbidden {
                kind: "BlobRefused",
                message: format!("the member refused: {why}"),
            }),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(unreachable(e)),
            Err(_) => Err(unreachable("the member did not answer in time")),
        }
    }

    async fn fetch_blob_from(&self, peer: PeerId, id: &[u8; 32], ctx: &ContextId) -> Result<()> {
        let (hash, context) = (*id, ctx.0);
        let size = match self.ask(peer, &Request::BlobMeta { hash, context }).await? {
            Response::BlobMeta { size } => size,
            other => return Err(NodeError::Internal(format!("unexpected answer: {other:?}"))),
        };
        let blobs = &self.inner.blobs;
        if size > blobs.max() {
            return Err(NodeError::bad(
                "BlobTooLarge",
                format!(
                    "the blob is {size} bytes; at most {} are taken",
                    blobs.max()
                ),
            ));
        }
        let mut incoming = blobs.incoming().await?;
        while incoming.size() < size {
            let offset = incoming.size();
            let len = u32::try_from((size - offset).min(u64::from(MAX_BLOB_CHUNK)))
                .unwrap_or(MAX_BLOB_CHUNK);
            let req = Request::BlobChunk {
                hash,
                context,
                offset,
                len,
            };
            let bytes = match self.ask(peer, &req).await? {
                Response::Blob(bytes) => bytes,
                other => return Err(NodeError::Internal(format!("unexpected answer: {other:?}"))),
            };
            // Exactly what was asked: a short or long chunk is not the blob.
            if bytes.len() != len as usize {
                return Err(NodeError::bad(
                    "BlobChunkInvalid",
                    format!("asked for {len} bytes at {offset}, got {}", bytes.len()),
                ));
            }
            incoming.write(&bytes).await?;
        }
        blobs.keep(incoming, Some(id)).await?;
        // Fetched by a member: it may serve the others too.
        blobs.announce(id, ctx).await
    }
}
