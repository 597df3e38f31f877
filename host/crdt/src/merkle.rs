//! The state root: a Merkle trie over entry ids, updated incrementally.
//!
//! Entry ids are uniform hashes, so the trie has a fixed shape: four levels of
//! 16-way inner nodes over 65,536 buckets (the first 16 bits of an id). A
//! bucket hashes its entries' leaf hashes in id order; an inner node hashes
//! its 16 children. Empty subtrees hash to [`ZERO_HASH`], so an empty state's
//! root is all zeros. Changing one entry rehashes its bucket (a handful of
//! leaves even at millions of entries) and four inner nodes: the cost does not
//! grow with the size of the state. Two replicas can also compare the trie
//! top-down to find where they differ.

use std::collections::{BTreeMap, BTreeSet};

// The stored node type lives with the storage traits that name it; it is
// re-exported here, where the trie that uses it is described.
pub use crate::backend::{FANOUT, MerkleNode};

use crate::backend::{MerkleStore, StateRead};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::id::{EntryId, Hash, NodeId, ZERO_HASH, tagged_hash};

/// Number of inner levels; level 0 is the root.
pub const LEVELS: u8 = 4;

/// The hash of one entry. Fails only if the entry cannot be encoded: hashing
/// an empty stand-in instead would let two different entries share a leaf.
pub fn leaf_hash(node: &NodeId, key: &[u8], entry: &Entry) -> Result<Hash> {
    let bytes = borsh::to_vec(entry).map_err(|source| Error::Encode {
        what: "entry",
        source,
    })?;
    Ok(leaf_hash_encoded(node, key, &bytes))
}

/// [`leaf_hash`] of an entry already encoded (its Borsh bytes), as a store
/// holds it.
pub fn leaf_hash_encoded(node: &NodeId, key: &[u8], entry: &[u8]) -> Hash {
    tagged_hash(b"mero.merkle.leaf", &[&node.0, key, entry])
}

/// The hash of one bucket from its leaves, in id order.
pub fn bucket_hash(leaves: &[(EntryId, Hash)]) -> Hash {
    if leaves.is_empty() {
        return ZERO_HASH;
    }
    let parts: Vec<&[u8]> = leaves
        .iter()
        .flat_map(|(id, h)| [id.0.as_slice(), h.as_slice()])
        .collect();
    tagged_hash(b"mero.merkle.bucket", &parts)
}

/// The current root hash.
pub fn root<B: MerkleStore + ?Sized>(store: &B) -> Result<Hash> {
    Ok(store.merkle_node(0, 0)?.map_or(ZERO_HASH, |n| n.hash()))
}

/// Re-hashes the entries at the `changed` addresses and every trie node above
/// them; returns the new root.
pub fn update<B>(
    store: &mut B,
    changed: impl IntoIterator<Item = (NodeId, Vec<u8>)>,
) -> Result<Hash>
where
    B: StateRead + MerkleStore + ?Sized,
{
    let buckets = put_leaves(store, changed)?;
    rehash(store, buckets)
}

/// Stores the leaf hashes of the entries at the `changed` addresses; returns
/// the buckets to [`rehash`].
pub fn put_leaves<B>(
    store: &mut B,
    changed: impl IntoIterator<Item = (NodeId, Vec<u8>)>,
) -> Result<BTreeSet<u16>>
where
    B: StateRead + MerkleStore + ?Sized,
{
    let mut buckets = BTreeSet::new();
    for (node, key) in changed {
        let Some(entry) = store.entry(&node, &key)? else {
            continue;
        };
        let id = EntryId::of(&node, &key);
        store.put_leaf(&id, &leaf_hash(&node, &key, &entry)?)?;
        buckets.insert(id.bucket());
    }
    Ok(buckets)
}

/// Re-hashes the given buckets from their stored leaves and every trie node
/// above them; returns the new root.
pub fn rehash<B>(store: &mut B, buckets: BTreeSet<u16>) -> Result<Hash>
where
    B: MerkleStore + ?Sized,
{
    if buckets.is_empty() {
        return root(store);
    }
    // (prefix of the parent node) -> [(slot, new child hash)]
    let mut dirty: BTreeMap<u16, Vec<(usize, Hash)>> = BTreeMap::new();
    store.each_bucket_leaves(&buckets, &mut |bucket, leaves| {
        dirty
            .entry(bucket >> 4)
            .or_default()
            .push((usize::from(bucket & 0xf), bucket_hash(leaves)));
        Ok(())
    })?;
    for level in (0..LEVELS).rev() {
        let mut next: BTreeMap<u16, Vec<(usize, Hash)>> = BTreeMap::new();
        for (prefix, updates) in dirty {
            let mut node = store.merkle_node(level, prefix)?.unwrap_or_default();
            for (slot, h) in updates {
                node.0[slot] = h;
            }
            store.put_merkle_node(level, prefix, &node)?;
            if level == 0 {
                return Ok(node.hash());
            }
            next.entry(prefix >> 4)
                .or_default()
                .push((usize::from(prefix & 0xf), node.hash()));
        }
        dirty = next;
    }
    root(store)
}

/// Inner trie nodes written during a run of updates, keyed by (level,
/// prefix). The nodes near the root change with every update: holding them
/// here writes each to the backend once per run instead of once per update.
pub type NodeCache = BTreeMap<(u8, u16), MerkleNode>;

/// `inner` with its inner trie nodes read from and written to a
/// [`NodeCache`], for [`rehash`]; leaves go straight through. The caller
/// writes the cache back with [`write_back`].
pub struct Cached<'a, B: ?Sized> {
    inner: &'a mut B,
    nodes: &'a mut NodeCache,
}

impl<'a, B: ?Sized> Cached<'a, B> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut B, nodes: &'a mut NodeCache) -> Self {
        Cached { inner, nodes }
    }
}

impl<B: MerkleStore + ?Sized> MerkleStore for Cached<'_, B> {
    fn put_leaf(&mut self, id: &EntryId, hash: &Hash) -> Result<()> {
        self.inner.put_leaf(id, hash)
    }
    fn bucket_leaves(&self, bucket: u16) -> Result<Vec<(EntryId, Hash)>> {
        self.inner.bucket_leaves(bucket)
    }
    fn merkle_node(&self, level: u8, prefix: u16) -> Result<Option<MerkleNode>> {
        match self.nodes.get(&(level, prefix)) {
            Some(node) => Ok(Some(node.clone())),
            None => self.inner.merkle_node(level, prefix),
        }
    }
    fn put_merkle_node(&mut self, level: u8, prefix: u16, node: &MerkleNode) -> Result<()> {
        self.nodes.insert((level, prefix), node.clone());
        Ok(())
    }
}

/// Writes the nodes a [`Cached`] run collected to `store`.
pub fn write_back<B: MerkleStore + ?Sized>(store: &mut B, nodes: NodeCache) -> Result<()> {
    for ((level, prefix), node) in nodes {
        store.put_merkle_node(level, prefix, &node)?;
    }
    Ok(())
}

/// The root hash of a set of entries computed from scratch, without any
/// stored trie. Used to check the incremental trie and to verify snapshots.
pub fn full_root<'a>(
    entries: impl IntoIterator<Item = (&'a NodeId, &'a [u8], &'a Entry)>,
) -> Result<Hash> {
    let mut buckets: BTreeMap<u16, Vec<(EntryId, Hash)>> = BTreeMap::new();
    for (node, key, entry) in entries {
        let id = EntryId::of(node, key);
        buckets
            .entry(id.bucket())
            .or_default()
            .push((id, leaf_hash(node, key, entry)?));
    }
    let mut level_hashes: BTreeMap<u16, Vec<(usize, Hash)>> = BTreeMap::new();
    for (bucket, mut leaves) in buckets {
        leaves.sort();
        level_hashes
            .entry(bucket >> 4)
            .or_default()
            .push((usize::from(bucket & 0xf), bucket_hash(&leaves)));
    }
    for level in (0..LEVELS).rev() {
        let mut next: BTreeMap<u16, Vec<(usize, Hash)>> = BTreeMap::new();
        for (prefix, children) in level_hashes {
            let mut node = MerkleNode::default();
            for (slot, h) in children {
                node.0[slot] = h;
            }
            if level == 0 {
                return Ok(node.hash());
            }
            next.entry(prefix >> 4)
                .or_default()
                .push((usize::from(prefix & 0xf), node.hash()));
        }
        level_hashes = next;
    }
    Ok(ZERO_HASH)
}
