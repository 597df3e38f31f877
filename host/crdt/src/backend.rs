//! Where state lives: traits for reading and writing entries and Merkle
//! nodes, the stored form of an inner trie node ([`MerkleNode`]), and
//! [`MemoryBackend`], an in-memory implementation for tests and simulations.
//! The LMDB implementation is in the store crate; how the trie is hashed and
//! updated is in [`merkle`](crate::merkle).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use crate::entry::Entry;
use crate::error::Result;
use crate::id::{EntryId, Hash, NodeId, ZERO_HASH, tagged_hash};

/// Inner-node fan-out.
pub const FANOUT: usize = 16;
/// The child hashes of one inner node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleNode(pub [Hash; FANOUT]);

impl Default for MerkleNode {
    fn default() -> Self {
        MerkleNode([ZERO_HASH; FANOUT])
    }
}

impl MerkleNode {
    /// This node's hash.
    pub fn hash(&self) -> Hash {
        if self.0.iter().all(|h| *h == ZERO_HASH) {
            return ZERO_HASH;
        }
        let parts: Vec<&[u8]> = self.0.iter().map(|h| h.as_slice()).collect();
        tagged_hash(b"mero.merkle.node", &parts)
    }

    /// Encodes as 512 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.concat()
    }

    /// Decodes 512 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 32 * FANOUT {
            return None;
        }
        let mut node = MerkleNode::default();
        for (slot, chunk) in node.0.iter_mut().zip(bytes.chunks_exact(32)) {
            slot.copy_from_slice(chunk);
        }
        Some(node)
    }
}

/// Reading the entries of one context.
pub trait StateRead {
    /// The entry at (`node`, `key`).
    fn entry(&self, node: &NodeId, key: &[u8]) -> Result<Option<Entry>>;
    /// Entries of `node` in key order, with keys strictly after `after`, at
    /// most `limit` of them (visible or not).
    fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>>;
    /// How many entries of `node` are visible.
    fn visible_count(&self, node: &NodeId) -> Result<u64>;
}

/// Writing the entries of one context.
pub trait StateWrite: StateRead {
    /// Stores the entry at (`node`, `key`).
    fn put_entry(&mut self, node: &NodeId, key: &[u8], entry: &Entry) -> Result<()>;
    /// Stores how many entries of `node` are visible.
    fn put_visible_count(&mut self, node: &NodeId, count: u64) -> Result<()>;
    /// One more (`up`) or one fewer (saturating at zero) entry of `node` is
    /// visible. A write buffer may keep the change without reading the
    /// count it changes.
    fn step_visible_count(&mut self, node: &NodeId, up: bool) -> Result<()> {
        let n = CountChange::default()
            .step(up)
            .apply(self.visible_count(node)?);
        self.put_visible_count(node, n)
    }
}

/// A change to a visible count, not yet applied to the count it changes:
/// a run of steps up and down, each down saturating at zero, as applying
/// them one by one would give. Applying it is `max(n + delta, floor)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountChange {
    delta: i64,
    /// The least the count can be after the steps, once a step down
    /// saturated (or could have).
    floor: Option<i64>,
}

impl CountChange {
    /// This change, then one step up or down.
    pub fn step(mut self, up: bool) -> Self {
        if up {
            self.delta = self.delta.saturating_add(1);
            self.floor = self.floor.map(|f| f.saturating_add(1));
        } else {
            self.delta = self.delta.saturating_sub(1);
            self.floor = Some(self.floor.map_or(0, |f| f.saturating_sub(1).max(0)));
        }
        self
    }

    /// The count `n` after the change.
    pub fn apply(self, n: u64) -> u64 {
        let mut v = i128::from(n) + i128::from(self.delta);
        if let Some(f) = self.floor {
            v = v.max(i128::from(f));
        }
        u64::try_from(v.max(0)).unwrap_or(u64::MAX)
    }
}

/// What [`MerkleStore::each_bucket_leaves`] hands each bucket's leaves to.
pub type BucketVisitor<'a> = dyn FnMut(u16, &[(EntryId, Hash)]) -> Result<()> + 'a;

/// Storage for the Merkle trie of one context.
pub trait MerkleStore {
    /// Stores the hash of an entry.
    fn put_leaf(&mut self, id: &EntryId, hash: &Hash) -> Result<()>;
    /// Leaf hashes of every entry in `bucket`, in id order.
    fn bucket_leaves(&self, bucket: u16) -> Result<Vec<(EntryId, Hash)>>;
    /// [`bucket_leaves`](Self::bucket_leaves) of each of `buckets`, in
    /// bucket order, handed to `f`: a store may read runs of neighbouring
    /// buckets in one pass (a migration dirties nearly all of them).
    fn each_bucket_leaves(&self, buckets: &BTreeSet<u16>, f: &mut BucketVisitor<'_>) -> Result<()> {
        for b in buckets {
            f(*b, &self.bucket_leaves(*b)?)?;
        }
        Ok(())
    }
    /// The inner node at `level` with `prefix`.
    fn merkle_node(&self, level: u8, prefix: u16) -> Result<Option<MerkleNode>>;
    /// Stores an inner node.
    fn put_merkle_node(&mut self, level: u8, prefix: u16, node: &MerkleNode) -> Result<()>;
}

impl<T: StateRead + ?Sized> StateRead for &T {
    fn entry(&self, node: &NodeId, key: &[u8]) -> Result<Option<Entry>> {
        (**self).entry(node, key)
    }
    fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>> {
        (**self).children(node, after, limit)
    }
    fn visible_count(&self, node: &NodeId) -> Result<u64> {
        (**self).visible_count(node)
    }
}

impl<T: StateRead + ?Sized> StateRead for std::sync::Arc<T> {
    fn entry(&self, node: &NodeId, key: &[u8]) -> Result<Option<Entry>> {
        (**self).entry(node, key)
    }
    fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>> {
        (**self).children(node, after, limit)
    }
    fn visible_count(&self, node: &NodeId) -> Result<u64> {
        (**self).visible_count(node)
    }
}

/// The whole state of one context in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryBackend {
    /// Entries by (node, key).
    pub entries: BTreeMap<(NodeId, Vec<u8>), Entry>,
    counts: HashMap<NodeId, u64>,
    leaves: BTreeMap<EntryId, Hash>,
    nodes: HashMap<(u8, u16), MerkleNode>,
}

impl MemoryBackend {
    /// Every entry as an op that writes it whole: what a snapshot of this
    /// state carries.
    pub fn to_ops(&self) -> Vec<crate::delta::Op> {
        self.entries
            .iter()
            .map(|((node, key), entry)| crate::delta::Op {
                node: *node,
                key: key.clone(),
                entry: entry.clone(),
            })
            .collect()
    }
}

impl StateRead for MemoryBackend {
    fn entry(&self, node: &NodeId, key: &[u8]) -> Result<Option<Entry>> {
        Ok(self.entries.get(&(*node, key.to_vec())).cloned())
    }

    fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>> {
        let start = match after {
            Some(k) => Bound::Excluded((*node, k.to_vec())),
            None => Bound::Included((*node, Vec::new())),
        };
        Ok(self
            .entries
            .range((start, Bound::Unbounded))
            .take_while(|((n, _), _)| n == node)
            .take(limit)
            .map(|((_, k), e)| (k.clone(), e.clone()))
            .collect())
    }

    fn visible_count(&self, node: &NodeId) -> Result<u64> {
        Ok(self.counts.get(node).copied().unwrap_or(0))
    }
}

impl StateWrite for MemoryBackend {
    fn put_entry(&mut self, node: &NodeId, key: &[u8], entry: &Entry) -> Result<()> {
        self.entries.insert((*node, key.to_vec()), entry.clone());
        Ok(())
    }

    fn put_visible_count(&mut self, node: &NodeId, count: u64) -> Result<()> {
        self.counts.insert(*node, count);
        Ok(())
    }
}

impl MerkleStore for MemoryBackend {
    fn put_leaf(&mut self, id: &EntryId, hash: &Hash) -> Result<()> {
        self.leaves.insert(*id, *hash);
        Ok(())
    }

    fn bucket_leaves(&self, bucket: u16) -> Result<Vec<(EntryId, Hash)>> {
        let [a, b] = bucket.to_be_bytes();
        let mut lo = [0u8; 32];
        lo[0] = a;
        lo[1] = b;
        Ok(self
            .leaves
            .range(EntryId(lo)..)
            .take_while(|(id, _)| id.bucket() == bucket)
            .map(|(id, h)| (*id, *h))
            .collect())
    }

    fn merkle_node(&self, level: u8, prefix: u16) -> Result<Option<MerkleNode>> {
        Ok(self.nodes.get(&(level, prefix)).cloned())
    }

    fn put_merkle_node(&mut self, level: u8, prefix: u16, node: &MerkleNode) -> Result<()> {
        self.nodes.insert((level, prefix), node.clone());
        Ok(())
    }
}
