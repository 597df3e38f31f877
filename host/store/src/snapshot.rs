//! Read-only views of the database.

use std::sync::Arc;

use heed::{Env, RoTxn, WithoutTls};
use mero_crdt::merkle::MerkleNode;
use mero_crdt::{ContextId, DeltaId, Entry, EntryId, Hash, NodeId, SignedDelta, StateRead};

use crate::records::{ApplicationRecord, ContextMeta};
use crate::state::StateAt;
use crate::tables::Tables;
use crate::{Result, read};

struct Inner {
    txn: RoTxn<'static, WithoutTls>,
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
    pub(crate) fn new(env: Env<WithoutTls>, tables: Tables) -> Result<Snapshot> {
        let txn = env.static_read_txn()?;
        Ok(Snapshot { inner: Arc::new(Inner { txn, tables }) })
    }

    fn txn(&self) -> &RoTxn<'_> {
        &self.inner.txn
    }

    fn tables(&self) -> &Tables {
        &self.inner.tables
    }

    /// The state of one context.
    pub fn context(&self, ctx: ContextId) -> ContextReader {
        ContextReader { snapshot: self.clone(), ctx }
    }

    /// An installed application.
    pub fn application(&self, id: &[u8; 32]) -> Result<Option<ApplicationRecord>> {
        read::application(self.txn(), self.tables(), id)
    }

    /// Every installed application.
    pub fn applications(&self) -> Result<Vec<ApplicationRecord>> {
        read::applications(self.txn(), self.tables())
    }

    /// Stored bytes by content hash.
    pub fn blob(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        read::blob(self.txn(), self.tables(), hash)
    }

    /// A context's metadata.
    pub fn context_meta(&self, ctx: &ContextId) -> Result<Option<ContextMeta>> {
        read::context_meta(self.txn(), self.tables(), ctx)
    }

    /// Every context on this node.
    pub fn contexts(&self) -> Result<Vec<ContextMeta>> {
        read::contexts(self.txn(), self.tables())
    }

    /// A stored delta.
    pub fn delta(&self, ctx: &ContextId, id: &DeltaId) -> Result<Option<SignedDelta>> {
        read::delta(self.txn(), self.tables(), ctx, id)
    }

    /// The context's DAG heads, in id order.
    pub fn heads(&self, ctx: &ContextId) -> Result<Vec<DeltaId>> {
        read::heads(self.txn(), self.tables(), ctx)
    }

    /// A private-storage value.
    pub fn private_get(&self, ctx: &ContextId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        read::private_get(self.txn(), self.tables(), ctx, key)
    }

    /// The context's state root hash.
    pub fn root_hash(&self, ctx: &ContextId) -> Result<Hash> {
        Ok(self.context(*ctx).merkle_node(0, 0)?.map_or([0; 32], |n| n.hash()))
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
    fn at(&self) -> StateAt<'_> {
        StateAt { txn: self.snapshot.txn(), tables: self.snapshot.tables(), ctx: self.ctx }
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
        self.at().bucket_leaves(bucket)
    }

    /// One inner node of the Merkle trie.
    pub fn merkle_node(&self, level: u8, prefix: u16) -> mero_crdt::Result<Option<MerkleNode>> {
        self.at().merkle_node(level, prefix)
    }
}

impl StateRead for ContextReader {
    fn entry(&self, node: &NodeId, key: &[u8]) -> mero_crdt::Result<Option<Entry>> {
        self.at().entry(node, key)
    }
    fn children(&self, node: &NodeId, after: Option<&[u8]>, limit: usize) -> mero_crdt::Result<Vec<(Vec<u8>, Entry)>> {
        self.at().children(node, after, limit)
    }
    fn visible_count(&self, node: &NodeId) -> mero_crdt::Result<u64> {
        self.at().visible_count(node)
    }
}
