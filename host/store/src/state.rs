//! CRDT state and Merkle trie of one context, over a view of the database.

use std::collections::BTreeSet;
use std::ops::Bound;

use mero_crdt::backend::BucketVisitor;
use mero_crdt::merkle::{self, MerkleNode};
use mero_crdt::overlay::{Drained, Writes};
use mero_crdt::{ContextId, Entry, EntryId, Hash, MerkleStore, NodeId, StateRead, StateWrite};

use crate::error::{Result, StoreError};
use crate::keys::{key, merkle_key};
use crate::memtable::View;
use crate::records::{decode, encode};
use crate::tables::Table;
use crate::write::WriteTxn;

fn crdt(e: impl Into<StoreError>) -> mero_crdt::Error {
    mero_crdt::Error::backend(e.into())
}

/// Read access shared by snapshots and write transactions.
pub(crate) struct StateAt<'v, 'a> {
    pub(crate) view: &'v View<'a>,
    pub(crate) ctx: ContextId,
}

impl StateAt<'_, '_> {
    pub(crate) fn entry(&self, node: &NodeId, k: &[u8]) -> mero_crdt::Result<Option<Entry>> {
        let raw = self
            .view
            .get(Table::Entries, &key(&[&self.ctx.0, &node.0, k]))
            .map_err(crdt)?;
        raw.map(|b| decode("entries", b).map_err(crdt)).transpose()
    }

    pub(crate) fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> mero_crdt::Result<Vec<(Vec<u8>, Entry)>> {
        let prefix = key(&[&self.ctx.0, &node.0]);
        let start = after.map(|a| key(&[&prefix, a]));
        let from = match &start {
            Some(s) => Bound::Excluded(s.as_slice()),
            None => Bound::Included(prefix.as_slice()),
        };
        let mut out = Vec::new();
        self.view
            .scan(Table::Entries, from, &prefix, |k, v| {
                if out.len() >= limit {
                    return Ok(false);
                }
                out.push((k[prefix.len()..].to_vec(), decode("entries", v)?));
                Ok(true)
            })
            .map_err(crdt)?;
        Ok(out)
    }

    pub(crate) fn visible_count(&self, node: &NodeId) -> mero_crdt::Result<u64> {
        let raw = self
            .view
            .get(Table::Counts, &key(&[&self.ctx.0, &node.0]))
            .map_err(crdt)?;
        Ok(raw
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes))
    }

    pub(crate) fn bucket_leaves(&self, bucket: u16) -> mero_crdt::Result<Vec<(EntryId, Hash)>> {
        let prefix = key(&[&self.ctx.0, &bucket.to_be_bytes()]);
        let mut out = Vec::new();
        self.view
            .prefix(Table::Leaves, &prefix, |k, v| {
                let id = EntryId::from_slice(&k[32..]);
                let hash = <Hash>::try_from(v).ok();
                match (id, hash) {
                    (Some(id), Some(hash)) => out.push((id, hash)),
                    _ => return Err(corrupt("leaves", "bad leaf record")),
                }
                Ok(true)
            })
            .map_err(crdt)?;
        Ok(out)
    }

    /// `MerkleStore::each_bucket_leaves`: one scan per run of consecutive
    /// buckets, rather than one per bucket.
    pub(crate) fn each_bucket_leaves(
        &self,
        buckets: &BTreeSet<u16>,
        f: &mut BucketVisitor<'_>,
    ) -> mero_crdt::Result<()> {
        let mut todo = buckets.iter().copied().peekable();
        let mut leaves: Vec<(EntryId, Hash)> = Vec::new();
        while let Some(first) = todo.next() {
            let mut last = first;
            while last < u16::MAX && todo.peek() == Some(&(last + 1)) {
                last += 1;
                todo.next();
            }
            let from = key(&[&self.ctx.0, &first.to_be_bytes()]);
            // The bucket being read; `None` once the whole run is handed over.
            let mut bucket = Some(first);
            let mut failed = None;
            self.view
                .scan(
                    Table::Leaves,
                    Bound::Included(&from),
                    &self.ctx.0,
                    |k, v| {
                        let (Some(id), Ok(hash)) =
                            (EntryId::from_slice(&k[32..]), <Hash>::try_from(v))
                        else {
                            return Err(corrupt("leaves", "bad leaf record"));
                        };
                        // Buckets passed over are handed over, those with no
                        // leaves empty, as `bucket_leaves` would give them.
                        while let Some(b) = bucket
                            && id.bucket() > b
                        {
                            if let Err(e) = f(b, &leaves) {
                                failed = Some(e);
                                return Ok(false);
                            }
                            leaves.clear();
                            bucket = (b < last).then(|| b + 1);
                        }
                        if bucket.is_none() {
                            return Ok(false);
                        }
                        leaves.push((id, hash));
                        Ok(true)
                    },
                )
                .map_err(crdt)?;
            if let Some(e) = failed {
                return Err(e);
            }
            // The leaves ran out inside the run: the rest of it is handed
            // over, the bucket being read with what it has.
            while let Some(b) = bucket {
                f(b, &leaves)?;
                leaves.clear();
                bucket = (b < last).then(|| b + 1);
            }
        }
        Ok(())
    }

    pub(crate) fn merkle_node(
        &self,
        level: u8,
        prefix: u16,
    ) -> mero_crdt::Result<Option<MerkleNode>> {
        let k = merkle_key(&self.ctx, level, prefix);
        match self.view.get(Table::Merkle, &k).map_err(crdt)? {
            None => Ok(None),
            Some(b) => MerkleNode::from_bytes(b)
                .map(Some)
                .ok_or_else(|| crdt(corrupt("merkle", "bad node"))),
        }
    }
}

fn corrupt(table: &'static str, detail: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

/// The state of one context inside a write transaction: applying ops through
/// it writes entries, counts and the Merkle trie.
pub struct ContextWriter<'a, 'e> {
    txn: &'a mut WriteTxn<'e>,
    ctx: ContextId,
}

impl<'e> WriteTxn<'e> {
    /// The state of one context, for applying ops. Defined here, beside the
    /// writer it returns, so that `write.rs` need not know that type.
    pub fn context_state(&mut self, ctx: ContextId) -> ContextWriter<'_, 'e> {
        ContextWriter::new(self, ctx)
    }

    /// Stores what an overlay over `ctx`'s state, as this transaction
    /// holds it, buffered (a migration's writes: whole entries, and visible
    /// counts), with the Merkle trie above them; returns the new root, the
    /// one applying the ops that made the writes would give.
    ///
    /// A migration may rewrite every entry of a large state, so this holds
    /// them as little as it can: each entry (held encoded) is freed as soon
    /// as it is written to a file per table (a memtable run, see `run`)
    /// and, past a few MiB, written ahead to the log.
    pub fn put_writes(&mut self, ctx: ContextId, writes: Writes) -> Result<Hash> {
        let mut run = self.run_builder();
        // Each entry has a leaf; its index is sized once, not grown.
        run.reserve(Table::Entries, writes.len());
        run.reserve(Table::Leaves, writes.len());
        let mut k = Vec::with_capacity(128);
        let mut buckets = BTreeSet::new();
        let mut freed = 0;
        writes.drain(|item| -> Result<()> {
            match item {
                Drained::Count(node, count) => {
                    // A deferred change applies to the count stored: read
                    // here, in node order, where the migration would have
                    // read them at random.
                    let count = count.over(|| self.context_state(ctx).visible_count(node))?;
                    k.clear();
                    k.extend_from_slice(&ctx.0);
                    k.extend_from_slice(&node.0);
                    self.log_run(&mut run, Table::Counts, &k, Some(&count.to_be_bytes()));
                }
                Drained::Entry(node, key, value) => {
                    k.clear();
                    k.extend_from_slice(&ctx.0);
                    k.extend_from_slice(&node.0);
                    k.extend_from_slice(key);
                    self.log_run(&mut run, Table::Entries, &k, Some(value));
                    // Leaves are written as they come; sealing the run sorts
                    // them by id.
                    let id = EntryId::of(node, key);
                    buckets.insert(id.bucket());
                    k.clear();
                    k.extend_from_slice(&ctx.0);
                    k.extend_from_slice(&id.0);
                    let leaf = merkle::leaf_hash_encoded(node, key, value);
                    self.log_run(&mut run, Table::Leaves, &k, Some(&leaf));
                    // What the overlay held is freed as this goes: given
                    // back now and then, it makes room for what follows.
                    freed += key.len() + value.len();
                    if freed >= RELEASE_BYTES {
                        crate::release_free_memory();
                        freed = 0;
                    }
                }
            }
            Ok(())
        })?;
        self.put_run(run)?;
        crate::release_free_memory();
        let root = merkle::rehash(&mut self.context_state(ctx), buckets)?;
        // The re-hash read every leaf of the run: its pages need not stay.
        self.release_run_pages();
        Ok(root)
    }
}

/// Bytes of a migration's writes stored between two hand-backs of the
/// memory their overlay freed.
const RELEASE_BYTES: usize = 8 << 20;

impl<'a, 'e> ContextWriter<'a, 'e> {
    /// The state of `ctx` inside `txn`.
    pub(crate) fn new(txn: &'a mut WriteTxn<'e>, ctx: ContextId) -> Self {
        ContextWriter { txn, ctx }
    }
}

impl ContextWriter<'_, '_> {
    fn at<R>(&self, f: impl FnOnce(StateAt<'_, '_>) -> R) -> R {
        let view = self.txn.view();
        f(StateAt {
            view: &view,
            ctx: self.ctx,
        })
    }
}

impl StateRead for ContextWriter<'_, '_> {
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

impl StateWrite for ContextWriter<'_, '_> {
    fn put_entry(&mut self, node: &NodeId, k: &[u8], entry: &Entry) -> mero_crdt::Result<()> {
        let k = key(&[&self.ctx.0, &node.0, k]);
        let value = encode("entries", entry).map_err(crdt)?;
        self.txn.put(Table::Entries, &k, &value);
        Ok(())
    }

    fn put_visible_count(&mut self, node: &NodeId, count: u64) -> mero_crdt::Result<()> {
        let k = key(&[&self.ctx.0, &node.0]);
        self.txn.put(Table::Counts, &k, &count.to_be_bytes());
        Ok(())
    }
}

impl MerkleStore for ContextWriter<'_, '_> {
    fn put_leaf(&mut self, id: &EntryId, hash: &Hash) -> mero_crdt::Result<()> {
        self.txn
            .put(Table::Leaves, &key(&[&self.ctx.0, &id.0]), hash);
        Ok(())
    }

    fn bucket_leaves(&self, bucket: u16) -> mero_crdt::Result<Vec<(EntryId, Hash)>> {
        self.at(|s| s.bucket_leaves(bucket))
    }

    fn each_bucket_leaves(
        &self,
        buckets: &BTreeSet<u16>,
        f: &mut BucketVisitor<'_>,
    ) -> mero_crdt::Result<()> {
        self.at(|s| s.each_bucket_leaves(buckets, f))
    }

    fn merkle_node(&self, level: u8, prefix: u16) -> mero_crdt::Result<Option<MerkleNode>> {
        self.at(|s| s.merkle_node(level, prefix))
    }

    fn put_merkle_node(
        &mut self,
        level: u8,
        prefix: u16,
        node: &MerkleNode,
    ) -> mero_crdt::Result<()> {
        self.txn.put(
            Table::Merkle,
            &merkle_key(&self.ctx, level, prefix),
            &node.to_bytes(),
        );
        Ok(())
    }
}
