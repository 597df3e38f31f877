//! Read-only looks at the node for its operator (the dashboard): what it
//! holds on disk, the peers it is connected to, and a context's state as stored here, collection by collection and
//! page by page. Private storage is reported as sizes only: it is the
//! app's node-local secret, not the operator's to read.

use std::path::Path;

use mero_crdt::{ContextId, Entry, NodeId, StateRead};

use crate::blocking::blocking;
use crate::error::{NodeError, Result};
use crate::node::Node;

/// Entries one state page holds at most.
pub const MAX_STATE_PAGE: usize = 500;

/// What the node holds on disk, and whom it is connected to.
#[derive(Debug, Clone)]
pub struct NodeStats {
    /// Bytes of the database directory (allocated on disk).
    pub store_bytes: u64,
    /// Bytes of the blob directory (uploaded blobs, compiled components).
    pub blob_bytes: u64,
    /// Peer ids connected now.
    pub peers: Vec<String>,
    /// When the node started, Unix milliseconds.
    pub started_at_millis: u64,
    /// Commits whose events subscribers missed because forwarding fell
    /// behind (each announced as a `Gap` event), since start.
    pub missed_event_commits: u64,
    /// Gossip messages refused before they were passed on (malformed, or
    /// a stranger's deltas or sealed bytes), since start.
    pub refused_gossip: u64,
}

/// One field of a context's state, as its app declares it.
#[derive(Debug, Clone)]
pub struct StateField {
    /// The field's name (its collection's root name).
    pub name: String,
    /// Its collection type as declared in source.
    pub kind: String,
    /// The collection's id.
    pub collection: [u8; 32],
    /// Its visible entries (a set register counts one).
    pub entries: u64,
}

/// What one stored entry of a collection is.
#[derive(Debug, Clone)]
pub enum StateValue {
    /// A register (a map value, a vector element): its bytes.
    Register(Vec<u8>),
    /// A map key or set element. `child` is the collection stored at the
    /// key, with its visible entries; `value`, its register's bytes when
    /// that collection is one register (a map of registers).
    Key {
        /// The nested collection and its visible entries, if any.
        child: Option<([u8; 32], u64)>,
        /// The register value at the key, if the value is a register.
        value: Option<Vec<u8>>,
    },
    /// One author's counter slot.
    Counter {
        /// Sum of increments.
        increments: u64,
        /// Sum of decrements.
        decrements: u64,
    },
    /// An element of an authored map or vector.
    Authored {
        /// Its value.
        value: Vec<u8>,
        /// The member that owns it.
        owner: [u8; 32],
        /// The state version it was written under.
        version: u32,
    },
}

/// A visible entry.
#[derive(Debug, Clone)]
pub struct StateEntry {
    /// Its key in the collection (opaque bytes the SDK encoded).
    pub key: Vec<u8>,
    /// What it holds.
    pub value: StateValue,
}

/// A context's state as stored here: its fields, private storage sizes,
/// and (when asked) one page of one collection.
#[derive(Debug, Clone)]
pub struct StatePage {
    /// The state layout version of the app it runs.
    pub state_version: u32,
    /// Its root fields.
    pub fields: Vec<StateField>,
    /// Private values stored here for it, and their bytes.
    pub private_entries: u64,
    /// Bytes of those values (with their keys).
    pub private_bytes: u64,
    /// The page: visible entries in key order.
    pub entries: Vec<StateEntry>,
    /// The raw key to pass as `after` for the next page, if there is one.
    pub next: Option<Vec<u8>>,
}

/// Bytes allocated on disk under `dir` (0 if it is missing).
fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total = total.saturating_add(allocated(&m));
            }
        }
    }
    total
}

#[cfg(unix)]
fn allocated(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    // A sparse database file takes what is allocated, not its length.
    m.blocks().saturating_mul(512)
}

#[cfg(not(unix))]
fn allocated(m: &std::fs::Metadata) -> u64 {
    m.len()
}

fn crdt(e: mero_crdt::Error) -> NodeError {
    NodeError::Internal(format!("reading state: {e}"))
}

impl Node {
    /// Disk use and connected peers.
    pub async fn stats(&self) -> NodeStats {
        let store = self.inner.config.datastore_dir(&self.inner.dir);
        let blobs = self.inner.config.blobstore_dir(&self.inner.dir);
        let (store_bytes, blob_bytes) =
            tokio::task::spawn_blocking(move || (disk_bytes(&store), disk_bytes(&blobs)))
                .await
                .unwrap_or_default();
        NodeStats {
            store_bytes,
            blob_bytes,
            peers: self
                .inner
                .peers
                .connected()
                .await
                .iter()
                .map(ToString::to_string)
                .collect(),
            started_at_millis: self.inner.started_at_millis,
            missed_event_commits: self.inner.events.missed_commits(),
            refused_gossip: self.inner.replication.refused_gossip(),
        }
    }

    /// `ctx`'s state here: its declared fields with their sizes, its
    /// private storage as sizes, and with `collection`, that collection's
    /// visible entries after the raw key `after`, at most `limit` (capped
    /// at [`MAX_STATE_PAGE`]).
    pub async fn state_page(
        &self,
        ctx: &ContextId,
        collection: Option<[u8; 32]>,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<StatePage> {
        let info = self.context(ctx)?;
        let snap = self.inner.store.snapshot()?;
        let app = self.inner.exec.app(&snap, &info.meta.blob).await?;
        let schema = app.description().schema.clone();
        let ctx = *ctx;
        let limit = limit.clamp(1, MAX_STATE_PAGE);
        blocking(move || {
            let reader = snap.context(ctx);
            let mut fields = Vec::with_capacity(schema.len());
            for (name, kind) in schema {
                let node = NodeId::root(&name);
                fields.push(StateField {
                    entries: reader.visible_count(&node).map_err(crdt)?,
                    collection: node.0,
                    name,
                    kind,
                });
            }
            let (private_entries, private_bytes) = snap.private_usage(&ctx)?;
            let (entries, next) = match collection {
                Some(c) => page(&reader, &NodeId(c), after, limit)?,
                None => (Vec::new(), None),
            };
            Ok(StatePage {
                state_version: info.meta.state_version,
                fields,
                private_entries,
                private_bytes,
                entries,
                next,
            })
        })
        .await
    }
}

/// Up to `limit` visible entries of `node` after `after`, and where the
/// next page starts. Tombstones are skipped but still move the cursor.
fn page(
    reader: &impl StateRead,
    node: &NodeId,
    mut after: Option<Vec<u8>>,
    limit: usize,
) -> Result<(Vec<StateEntry>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    loop {
        let batch = reader
            .children(node, after.as_deref(), limit)
            .map_err(crdt)?;
        let full = batch.len() == limit;
        for (key, entry) in batch {
            after = Some(key.clone());
            if !entry.is_visible() {
                continue;
            }
            let value = match entry {
                Entry::Register(r) => StateValue::Register(r.value.unwrap_or_default()),
                Entry::Counter(c) => StateValue::Counter {
                    increments: c.increments,
                    decrements: c.decrements,
                },
                Entry::Authored(a) => StateValue::Authored {
                    owner: a.owner().0,
                    version: a.version,
                    value: a.register.value.unwrap_or_default(),
                },
                Entry::Presence(_) => {
                    let child = node.child(&key);
                    let count = reader.visible_count(&child).map_err(crdt)?;
                    let value = match reader.entry(&child, &[]).map_err(crdt)? {
                        Some(Entry::Register(r)) => r.value,
                        _ => None,
                    };
                    StateValue::Key {
                        child: (count > 0).then_some((child.0, count)),
                        value,
                    }
                }
            };
            out.push(StateEntry { key, value });
            if out.len() == limit {
                // More only if the store has more past this key.
                let more = !reader
                    .children(node, after.as_deref(), 1)
                    .map_err(crdt)?
                    .is_empty();
                return Ok((out, after.filter(|_| more)));
            }
        }
        if !full {
            return Ok((out, None));
        }
    }
}
