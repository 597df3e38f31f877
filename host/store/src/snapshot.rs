//! Read-only views of the database.

use std::sync::{Arc, Mutex};

use heed::{RoTxn, WithoutTls};
use mero_crdt::merkle::MerkleNode;
use mero_crdt::{ContextId, DeltaId, Entry, EntryId, Hash, NodeId, SignedDelta, StateRead};

use crate::engine::{Layers, Shared};
use crate::error::Result;
use crate::memtable::View;
use crate::read;
use crate::records::{ApplicationRecord, ContextMeta, GroupRecord, PendingHandler};
use crate::state::StateAt;
use crate::tables::Tables;

struct Inner {
    // LMDB lets a read transaction move between threads but not be used by
    // two at once; the lock makes the snapshot shareable.
    txn: Mutex<RoTxn<'static, WithoutTls>>,
    layers: Layers,
    tables: Tables,
}

/// A consistent read-only view of the database at one point in time. Cheap to
/// clone; `Send` and `Sync`, so it can be held across `.await`. Keep it short
/// lived: an open snapshot stops LMDB from reusing pages freed after it.
#[derive(Clone)]
pub struct Snapshot {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").finish_non_exhaustive()
    }
}

impl Snapshot {
    pub(crate) fn new(shared: &Shared) -> Result<Snapshot> {
        let (layers, txn) = shared.read()?;
        Ok(Snapshot {
            inner: Arc::new(Inner {
                txn: Mutex::new(txn),
                layers,
                tables: shared.tables,
            }),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> R {
        let txn = self
            .inner
            .txn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let view = View {
            mem: &self.inner.layers.mem,
            frozen: self.inner.layers.frozen.as_deref(),
            txn: &txn,
            tables: &self.inner.tables,
        };
        f(&view)
    }

    /// Whether a delta (or a stub of one) is stored.
    pub fn has_delta(&self, ctx: &ContextId, id: &DeltaId) -> Result<bool> {
        self.with(|v| read::has_delta(v, ctx, id))
    }

    /// Ids of every delta (and stub) stored for a context.
    pub fn delta_ids(&self, ctx: &ContextId) -> Result<Vec<DeltaId>> {
        self.with(|v| read::delta_ids(v, ctx))
    }

    /// A page of a context's raw entries: (node id ++ key, encoded entry),
    /// after the raw key `after`.
    pub fn entries_page(
        &self,
        ctx: &ContextId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.with(|v| read::entries_page(v, ctx, after, limit))
    }

    /// The signed governance ops stored for a namespace.
    pub fn governance(&self, ns: &[u8; 32]) -> Result<Vec<Vec<u8>>> {
        self.with(|v| read::governance(v, ns))
    }

    /// Event handlers still to run, oldest context first, at most `limit`.
    pub fn pending_handlers(&self, limit: usize) -> Result<Vec<PendingHandler>> {
        self.with(|v| read::pending_handlers(v, limit, &|_| false))
    }

    /// As [`pending_handlers`](Self::pending_handlers), passing over the
    /// contexts `skip` names: those waiting out a back-off do not hide the
    /// others' handlers, however many they have pending.
    pub fn pending_handlers_except(
        &self,
        limit: usize,
        skip: &dyn Fn(&ContextId) -> bool,
    ) -> Result<Vec<PendingHandler>> {
        self.with(|v| read::pending_handlers(v, limit, skip))
    }

    /// The state of one context.
    pub fn context(&self, ctx: ContextId) -> ContextReader {
        ContextReader {
            snapshot: self.clone(),
            ctx,
        }
    }

    /// An installed application.
    pub fn application(&self, id: &[u8; 32]) -> Result<Option<ApplicationRecord>> {
        self.with(|v| read::application(v, id))
    }

    /// Every installed application.
    pub fn applications(&self) -> Result<Vec<ApplicationRecord>> {
        self.with(read::applications)
    }

    /// Stored bytes by content hash.
    pub fn blob(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        self.with(|v| read::blob(v, hash))
    }

    /// A context's metadata.
    pub fn context_meta(&self, ctx: &ContextId) -> Result<Option<ContextMeta>> {
        self.with(|v| read::context_meta(v, ctx))
    }

    /// Every context on this node.
    pub fn contexts(&self) -> Result<Vec<ContextMeta>> {
        self.with(read::contexts)
    }

    /// A stored delta.
    pub fn delta(&self, ctx: &ContextId, id: &DeltaId) -> Result<Option<SignedDelta>> {
        self.with(|v| read::delta(v, ctx, id))
    }

    /// The context's DAG heads, in id order.
    pub fn heads(&self, ctx: &ContextId) -> Result<Vec<DeltaId>> {
        self.with(|v| read::heads(v, ctx))
    }

    /// A private-storage value.
    pub fn private_get(&self, ctx: &ContextId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with(|v| read::private_get(v, ctx, key))
    }

    /// How many private-storage values a context has, and their bytes:
    /// sizes only, for those who may not read them.
    pub fn private_usage(&self, ctx: &ContextId) -> Result<(u64, u64)> {
        self.with(|v| read::private_usage(v, ctx))
    }

    /// A group (namespace or subgroup).
    pub fn group(&self, id: &[u8; 32]) -> Result<Option<GroupRecord>> {
        self.with(|v| read::group(v, id))
    }

    /// Every group.
    pub fn groups(&self) -> Result<Vec<GroupRecord>> {
        self.with(read::groups)
    }

    /// The id an alias of `kind` ("context", "application") stands for.
    pub fn alias(&self, kind: &str, name: &str) -> Result<Option<[u8; 32]>> {
        self.with(|v| read::alias(v, kind, name))
    }

    /// Every alias of `kind`.
    pub fn aliases(&self, kind: &str) -> Result<Vec<(String, [u8; 32])>> {
        self.with(|v| read::aliases(v, kind))
    }

    /// A node-local record of `kind`.
    pub fn local(&self, kind: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with(|v| read::local(v, kind, key))
    }

    /// Every node-local record of `kind`: key and value.
    pub fn locals(&self, kind: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.with(|v| read::locals(v, kind))
    }

    /// One delta of a context refused for good here, if it was.
    pub fn refused_delta(&self, ctx: &ContextId, id: &DeltaId) -> Result<Option<SignedDelta>> {
        self.with(|v| read::refused_delta(v, ctx, id))
    }

    /// The deltas of a context refused for good here (see
    /// [`crate::WriteTxn::put_refused_delta`]).
    pub fn refused_deltas(&self, ctx: &ContextId) -> Result<Vec<SignedDelta>> {
        self.with(|v| read::refused_deltas(v, ctx))
    }

    /// The context's state root hash.
    pub fn root_hash(&self, ctx: &ContextId) -> Result<Hash> {
        Ok(self
            .context(*ctx)
            .merkle_node(0, 0)?
            .map_or([0; 32], |n| n.hash()))
    }
}

/// The state of one context in a [`Snapshot`]. Owns its snapshot, so it can
/// live in a wasm store.
#[derive(Clone, Debug)]
pub struct ContextReader {
    snapshot: Snapshot,
    ctx: ContextId,
}

impl ContextReader {
    fn at<R>(&self, f: impl FnOnce(StateAt<'_, '_>) -> R) -> R {
        self.snapshot.with(|view| {
            f(StateAt {
                view,
                ctx: self.ctx,
            })
        })
    }

    /// The snapshot this reads from.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The context.
    pub fn context_id(&self) -> ContextId {
        self.ctx
    }

    /// Leaf hashes in one Merkle bucket.
    pub fn bucket_leaves(&self, bucket: u16) -> mero_crdt::Result<Vec<(EntryId, Hash)>> {
        self.at(|s| s.bucket_leaves(bucket))
    }

    /// One inner node of the Merkle trie.
    pub fn merkle_node(&self, level: u8, prefix: u16) -> mero_crdt::Result<Option<MerkleNode>> {
        self.at(|s| s.merkle_node(level, prefix))
    }
}

impl StateRead for ContextReader {
    fn entry(&self, node: &NodeId, key: &[u8]) -> mero_crdt::Result<Option<Entry>> {
        self.at(|s| s.entry(node, key))
    }
    fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> mero_crdt::Result<Vec<(Vec<u8>, Entry)>> {
        self.at(|s| s.children(node, after, limit))
    }
    fn visible_count(&self, node: &NodeId) -> mero_crdt::Result<u64> {
        self.at(|s| s.visible_count(node))
    }
}
