//! CRDT state and Merkle trie of one context, over an LMDB transaction.

use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use mero_crdt::merkle::MerkleNode;
use mero_crdt::{ContextId, Entry, EntryId, Hash, MerkleStore, NodeId, StateRead, StateWrite};

use crate::records::{decode, encode};
use crate::tables::Tables;
use crate::{StoreError, key};

fn crdt(e: impl Into<StoreError>) -> mero_crdt::Error {
    mero_crdt::Error::backend(e.into())
}

/// Read access shared by snapshots and write transactions.
pub(crate) struct StateAt<'t> {
    pub(crate) txn: &'t RoTxn<'t>,
    pub(crate) tables: &'t Tables,
    pub(crate) ctx: ContextId,
}

impl StateAt<'_> {
    pub(crate) fn entry(&self, node: &NodeId, k: &[u8]) -> mero_crdt::Result<Option<Entry>> {
        let raw = self
            .tables
            .entries
            .get(self.txn, &key(&[&self.ctx.0, &node.0, k]))
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
        let mut out = Vec::new();
        let mut push = |k: &[u8], v: &[u8]| -> mero_crdt::Result<bool> {
            if !k.starts_with(&prefix) || out.len() >= limit {
                return Ok(false);
            }
            out.push((
                k[prefix.len()..].to_vec(),
                decode("entries", v).map_err(crdt)?,
            ));
            Ok(true)
        };
        match after {
            None => {
                for item in self
                    .tables
                    .entries
                    .prefix_iter(self.txn, &prefix)
                    .map_err(crdt)?
                {
                    let (k, v) = item.map_err(crdt)?;
                    if !push(k, v)? {
                        break;
                    }
                }
            }
            Some(after) => {
                let start = key(&[&prefix, after]);
                let range = (Bound::Excluded(start.as_slice()), Bound::Unbounded);
                for item in self.tables.entries.range(self.txn, &range).map_err(crdt)? {
                    let (k, v) = item.map_err(crdt)?;
                    if !push(k, v)? {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn visible_count(&self, node: &NodeId) -> mero_crdt::Result<u64> {
        let raw = self
            .tables
            .counts
            .get(self.txn, &key(&[&self.ctx.0, &node.0]))
            .map_err(crdt)?;
        Ok(raw
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes))
    }

    pub(crate) fn bucket_leaves(&self, bucket: u16) -> mero_crdt::Result<Vec<(EntryId, Hash)>> {
        let prefix = key(&[&self.ctx.0, &bucket.to_be_bytes()]);
        let mut out = Vec::new();
        for item in self
            .tables
            .leaves
            .prefix_iter(self.txn, &prefix)
            .map_err(crdt)?
        {
            let (k, v) = item.map_err(crdt)?;
            let id = EntryId::from_slice(&k[32..]);
            let hash = <Hash>::try_from(v).ok();
            match (id, hash) {
                (Some(id), Some(hash)) => out.push((id, hash)),
                _ => return Err(crdt(corrupt("leaves", "bad leaf record"))),
            }
        }
        Ok(out)
    }

    pub(crate) fn merkle_node(
        &self,
        level: u8,
        prefix: u16,
    ) -> mero_crdt::Result<Option<MerkleNode>> {
        let k = key(&[&self.ctx.0, &[level], &prefix.to_be_bytes()]);
        match self.tables.merkle.get(self.txn, &k).map_err(crdt)? {
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
    pub(crate) txn: &'a mut RwTxn<'e>,
    pub(crate) tables: &'a Tables,
    pub(crate) ctx: ContextId,
}

impl ContextWriter<'_, '_> {
    fn at(&self) -> StateAt<'_> {
        StateAt {
            txn: self.txn,
            tables: self.tables,
            ctx: self.ctx,
        }
    }
}

impl StateRead for ContextWriter<'_, '_> {
    fn entry(&self, node: &NodeId, key: &[u8]) -> mero_crdt::Result<Option<Entry>> {
        self.at().entry(node, key)
    }
    fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> mero_crdt::Result<Vec<(Vec<u8>, Entry)>> {
        self.at().children(node, after, limit)
    }
    fn visible_count(&self, node: &NodeId) -> mero_crdt::Result<u64> {
        self.at().visible_count(node)
    }
}

impl StateWrite for ContextWriter<'_, '_> {
    fn put_entry(&mut self, node: &NodeId, k: &[u8], entry: &Entry) -> mero_crdt::Result<()> {
        let k = key(&[&self.ctx.0, &node.0, k]);
        self.tables
            .entries
            .put(self.txn, &k, &encode(entry))
            .map_err(crdt)
    }

    fn put_visible_count(&mut self, node: &NodeId, count: u64) -> mero_crdt::Result<()> {
        let k = key(&[&self.ctx.0, &node.0]);
        self.tables
            .counts
            .put(self.txn, &k, &count.to_be_bytes())
            .map_err(crdt)
    }
}

impl MerkleStore for ContextWriter<'_, '_> {
    fn put_leaf(&mut self, id: &EntryId, hash: &Hash) -> mero_crdt::Result<()> {
        self.tables
            .leaves
            .put(self.txn, &key(&[&self.ctx.0, &id.0]), hash)
            .map_err(crdt)
    }

    fn bucket_leaves(&self, bucket: u16) -> mero_crdt::Result<Vec<(EntryId, Hash)>> {
        self.at().bucket_leaves(bucket)
    }

    fn merkle_node(&self, level: u8, prefix: u16) -> mero_crdt::Result<Option<MerkleNode>> {
        self.at().merkle_node(level, prefix)
    }

    fn put_merkle_node(
        &mut self,
        level: u8,
        prefix: u16,
        node: &MerkleNode,
    ) -> mero_crdt::Result<()> {
        let k = key(&[&self.ctx.0, &[level], &prefix.to_be_bytes()]);
        self.tables
            .merkle
            .put(self.txn, &k, &node.to_bytes())
            .map_err(crdt)
    }
}
