//! Blobs: content-addressed files a user uploads (upstream's blob API),
//! kept under the node's blob directory as `objects/<hex of SHA-256>`, with
//! a record in the store's node-local table (size, MIME type) and the
//! contexts each was announced to. Members of a context fetch its blobs
//! from each other in chunks, checked against the id when complete (see
//! `blobs.rs`).
//!
//! A blob is written to `tmp/` while hashed and counted, synced, renamed
//! into place, and only then recorded: an object without a record is a
//! write cut short and is never listed or served.

use std::path::{Path, PathBuf};

use mero_crdt::ContextId;
use mero_store::Store;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::blocking::blocking;
use crate::error::{NodeError, Result};

/// Largest blob accepted by default, uploaded, fetched or made by an app
/// (upstream's upload cap); `blobstore.max_blob_bytes` sets another.
pub const MAX_BLOB_BYTES: u64 = mero_config::DEFAULT_MAX_BLOB_BYTES;

/// Node-local records of blobs: id -> (size, MIME type).
const BLOB: &str = "blob";
/// Node-local records of announcements: id ‖ context -> ().
const ANNOUNCED: &str = "blob-context";

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Its id: SHA-256 of its bytes.
    pub id: [u8; 32],
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type, sniffed from its first bytes.
    pub mime: String,
}

/// A blob being written: bytes go to a temporary file as they come.
pub(crate) struct Incoming {
    file: tokio::fs::File,
    path: PathBuf,
    hash: Sha256,
    size: u64,
    max: u64,
    head: Vec<u8>,
}

impl Incoming {
    /// Appends bytes; refuses past the store's largest blob (and the file
    /// is removed when this is dropped, so nothing of it stays).
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > self.max {
            return Err(too_large(self.max));
        }
        if self.head.len() < 16 {
            let take = (16 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.hash.update(bytes);
        self.file.write_all(bytes).await.map_err(io)
    }

    /// Bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Renamed away when kept; otherwise a write cut short.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The error of a blob over `max` bytes.
pub(crate) fn too_large(max: u64) -> NodeError {
    NodeError::bad(
        "BlobTooLarge",
        format!("a blob may be at most {max} bytes on this node"),
    )
}

fn io(e: std::io::Error) -> NodeError {
    NodeError::Internal(format!("blob storage: {e}"))
}

/// The MIME type of content starting with `head`.
fn sniff(head: &[u8]) -> &'static str {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"\0asm", "application/wasm"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
    ];
    MAGIC
        .iter()
        .find(|(m, _)| head.starts_with(m))
        .map_or("application/octet-stream", |(_, t)| t)
}

/// The blobs on this node.
pub(crate) struct BlobStore {
    root: PathBuf,
    store: Store,
    max: u64,
}

impl BlobStore {
    /// Blobs under `root` (the node's blob directory), each at most `max`
    /// bytes.
    pub(crate) fn new(root: &Path, store: Store, max: u64) -> BlobStore {
        BlobStore {
            root: root.to_path_buf(),
            store,
            max,
        }
    }

    /// The largest blob this store takes.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    fn object(&self, id: &[u8; 32]) -> PathBuf {
        self.root.join("objects").join(hex::encode(id))
    }

    /// A new blob to write.
    pub(crate) async fn incoming(&self) -> Result<Incoming> {
        let tmp = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp).await.map_err(io)?;
        let path = tmp.join(hex::encode(rand::random::<[u8; 16]>()));
        let file = tokio::fs::File::create(&path).await.map_err(io)?;
        Ok(Incoming {
            file,
            path,
            hash: Sha256::new(),
            size: 0,
            max: self.max,
            head: Vec::new(),
        })
    }

    /// Keeps a written blob: synced, moved into place and recorded. With
    /// `expected`, its hash must be that (a fetched blob).
    pub(crate) async fn keep(
        &self,
        mut incoming: Incoming,
        expected: Option<&[u8; 32]>,
    ) -> Result<BlobMeta> {
        incoming.file.flush().await.map_err(io)?;
        incoming.file.sync_all().await.map_err(io)?;
        let id: [u8; 32] = incoming.hash.clone().finalize().into();
        if let Some(want) = expected
            && *want != id
        {
            return Err(NodeError::bad(
                "BlobHashMismatch",
                format!(
                    "the bytes received hash to {}, not to the blob asked for",
                    bs58::encode(id).into_string()
                ),
            ));
        }
        let meta = BlobMeta {
            id,
            size: incoming.size,
            mime: sniff(&incoming.head).into(),
        };
        let objects = self.root.join("objects");
        tokio::fs::create_dir_all(&objects).await.map_err(io)?;
        tokio::fs::rename(&incoming.path, self.object(&id))
            .await
            .map_err(io)?;
        let store = self.store.clone();
        let record = borsh::to_vec(&(meta.size, meta.mime.clone()))
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        blocking(move || {
            let mut w = store.write()?;
            w.put_local(BLOB, &id, &record)?;
            w.commit()?;
            Ok(())
        })
        .await?;
        Ok(meta)
    }

    fn decode(id: [u8; 32], record: &[u8]) -> Option<BlobMeta> {
        let (size, mime) = borsh::from_slice::<(u64, String)>(record).ok()?;
        Some(BlobMeta { id, size, mime })
    }

    /// A stored blob's record.
    pub(crate) fn get(&self, id: &[u8; 32]) -> Result<Option<BlobMeta>> {
        Ok(self
            .store
            .snapshot()?
            .local(BLOB, id)?
            .and_then(|r| Self::decode(*id, &r)))
    }

    /// Every stored blob.
    pub(crate) fn list(&self) -> Result<Vec<BlobMeta>> {
        Ok(self
            .store
            .snapshot()?
            .locals(BLOB)?
            .into_iter()
            .filter_map(|(k, v)| Self::decode(k.try_into().ok()?, &v))
            .collect())
    }

    /// Opens a stored blob for reading.
    pub(crate) async fn open(&self, id: &[u8; 32]) -> Result<Option<(BlobMeta, tokio::fs::File)>> {
        let Some(meta) = self.get(id)? else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(self.object(id)).await.map_err(io)?;
        Ok(Some((meta, file)))
    }

    /// Up to `len` bytes of a stored blob from `offset`.
    pub(crate) async fn read_at(&self, id: &[u8; 32], offset: u64, len: u32) -> Result<Vec<u8>> {
        let mut file = tokio::fs::File::open(self.object(id)).await.map_err(io)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io)?;
        let mut out = Vec::with_capacity(len as usize);
        (&mut file)
            .take(u64::from(len))
            .read_to_end(&mut out)
            .await
            .map_err(io)?;
        Ok(out)
    }

    /// Records that `id` belongs to `ctx`: its members may fetch it here.
    pub(crate) async fn announce(&self, id: &[u8; 32], ctx: &ContextId) -> Result<()> {
        let store = self.store.clone();
        let key = [id.as_slice(), &ctx.0].concat();
        blocking(move || {
            let mut w = store.write()?;
            w.put_local(ANNOUNCED, &key, &[])?;
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// Whether `id` was announced to `ctx` here.
    pub(crate) fn announced(&self, id: &[u8; 32], ctx: &ContextId) -> Result<bool> {
        let key = [id.as_slice(), &ctx.0].concat();
        Ok(self.store.snapshot()?.local(ANNOUNCED, &key)?.is_some())
    }

    /// Deletes a blob and its announcements; false if it was not here.
    pub(crate) async fn delete(&self, id: &[u8; 32]) -> Result<bool> {
        let store = self.store.clone();
        let id_ = *id;
        let existed = blocking(move || {
            let snap = store.snapshot()?;
            let announced: Vec<Vec<u8>> = snap
                .locals(ANNOUNCED)?
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| k.starts_with(&id_))
                .collect();
            drop(snap);
            let mut w = store.write()?;
            let existed = w.delete_local(BLOB, &id_)?;
            for k in announced {
                w.delete_local(ANNOUNCED, &k)?;
            }
            w.commit()?;
            Ok(existed)
        })
        .await?;
        match tokio::fs::remove_file(self.object(id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[tokio::test]
    async fn blobs_are_content_addressed_checked_listed_and_deleted() {
        let dir = std::env::temp_dir().join(format!(
            "mero-blobstore-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let store = Store::open(&dir.join("db"), &Default::default()).unwrap();
        let blobs = BlobStore::new(&dir.join("blobs"), store, MAX_BLOB_BYTES);
        let bytes = b"\x89PNG\r\n\x1a\nsome picture".to_vec();
        let mut w = blobs.incoming().await.unwrap();
        w.write(&bytes[..5]).await.unwrap();
        w.write(&bytes[5..]).await.unwrap();
        let meta = blobs.keep(w, None).await.unwrap();
        let id: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(meta.id, id);
        assert_eq!(
            (meta.size, meta.mime.as_str()),
            (bytes.len() as u64, "image/png")
        );
        assert_eq!(blobs.list().unwrap(), vec![meta.clone()]);
        assert_eq!(blobs.read_at(&id, 8, 4).await.unwrap(), b"some");
        // A fetched blob must hash to the id asked for.
        let mut w = blobs.incoming().await.unwrap();
        w.write(b"other").await.unwrap();
        let e = blobs.keep(w, Some(&id)).await.unwrap_err();
        assert_eq!(e.kind(), "BlobHashMismatch");
        assert_eq!(blobs.list().unwrap().len(), 1);
        assert_eq!(std::fs::read_dir(dir.join("blobs/tmp")).unwrap().count(), 0);
        // Announced to a context, then deleted with its announcements.
        let ctx = ContextId([3; 32]);
        blobs.announce(&id, &ctx).await.unwrap();
        assert!(blobs.announced(&id, &ctx).unwrap());
        assert!(!blobs.announced(&id, &ContextId([4; 32])).unwrap());
        assert!(blobs.delete(&id).await.unwrap());
        assert!(!blobs.delete(&id).await.unwrap());
        assert!(!blobs.announced(&id, &ctx).unwrap() && blobs.get(&id).unwrap().is_none());
        drop(blobs);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_blob_over_the_cap_is_refused_and_nothing_of_it_stays() {
        assert_eq!(MAX_BLOB_BYTES, 1 << 30, "the default cap is 1 GiB");
        let dir = std::env::temp_dir().join(format!(
            "mero-blobstore-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let store = Store::open(&dir.join("db"), &Default::default()).unwrap();
        let blobs = BlobStore::new(&dir.join("blobs"), store, 10);
        let mut w = blobs.incoming().await.unwrap();
        w.write(b"0123456789").await.unwrap();
        let e = w.write(b"x").await.unwrap_err();
        assert_eq!(e.kind(), "BlobTooLarge");
        assert!(e.to_string().contains("at most 10 bytes"), "{e}");
        drop(w);
        assert!(blobs.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.join("blobs/tmp")).unwrap().count(), 0);
        // At the cap exactly: kept.
        let mut w = blobs.incoming().await.unwrap();
        w.write(b"0123456789").await.unwrap();
        assert_eq!(blobs.keep(w, None).await.unwrap().size, 10);
        drop(blobs);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
