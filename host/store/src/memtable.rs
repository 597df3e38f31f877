//! Recent writes held in memory over LMDB, and reads that merge the two.
//!
//! A commit is made durable by the write-ahead log alone; its writes go to a
//! [`Mem`] layer and reach LMDB later, many commits at once (see `flush`).
//! `Mem` is a persistent map, so a snapshot or a write transaction takes a
//! copy of it in O(1) and later commits never disturb that copy.

use std::ops::Bound;
use std::sync::Arc;

use heed::{RoTxn, WithoutTls};
use imbl::OrdMap;

use crate::error::Result;
use crate::tables::{COUNT, Table, Tables};

/// A written value, or `None` for a deletion not yet applied to LMDB.
pub(crate) type Value = Option<Arc<[u8]>>;

/// Writes not yet in LMDB, one ordered map per table.
#[derive(Clone, Default)]
pub(crate) struct Mem {
    // Keys are shared, not owned: a commit's first write under a node of
    // a map shared with a snapshot copies the node, keys and all.
    maps: [OrdMap<Arc<[u8]>, Value>; COUNT],
    /// Roughly what the writes take in memory; decides when to flush.
    bytes: usize,
}

impl Mem {
    pub(crate) fn get(&self, t: Table, k: &[u8]) -> Option<&Value> {
        self.maps[t as usize].get(k)
    }

    pub(crate) fn insert(&mut self, t: Table, k: &[u8], v: Value) {
        let len = |v: &Value| v.as_ref().map_or(0, |v| v.len());
        let new = len(&v);
        self.bytes += match self.maps[t as usize].insert(Arc::from(k), v) {
            // Rewritten keys (the Merkle nodes near the root, a context's
            // metadata and counts, with every commit) hold one value each:
            // counting every rewrite in full would flush several times as
            // often as the memory held calls for.
            Some(old) => new.saturating_sub(len(&old)),
            None => k.len() + new + 64,
        };
    }

    pub(crate) fn remove(&mut self, t: Table, k: &[u8]) {
        self.maps[t as usize].remove(k);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.maps.iter().all(OrdMap::is_empty)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every write of table `t` from `from` on, in key order.
    pub(crate) fn range<'m>(
        &'m self,
        t: Table,
        from: Bound<&[u8]>,
    ) -> impl Iterator<Item = (&'m [u8], &'m Value)> + 'm {
        self.maps[t as usize]
            .range::<_, [u8]>((from, Bound::Unbounded))
            .map(|(k, v)| (&**k, v))
    }

    /// Every write of table `t`, in key order.
    pub(crate) fn iter(&self, t: Table) -> impl Iterator<Item = (&[u8], &Value)> {
        self.maps[t as usize].iter().map(|(k, v)| (&**k, v))
    }
}

/// A consistent view of the database: the newest layer first, then the layer
/// being flushed, then LMDB as of a read transaction that includes every
/// layer flushed before those two were taken.
pub(crate) struct View<'a> {
    pub(crate) mem: &'a Mem,
    pub(crate) frozen: Option<&'a Mem>,
    pub(crate) txn: &'a RoTxn<'a, WithoutTls>,
    pub(crate) tables: &'a Tables,
}

impl<'a> View<'a> {
    /// The value of `k` in table `t`.
    pub(crate) fn get(&self, t: Table, k: &[u8]) -> Result<Option<&'a [u8]>> {
        for layer in std::iter::once(self.mem).chain(self.frozen) {
            if let Some(v) = layer.get(t, k) {
                return Ok(v.as_deref());
            }
        }
        Ok(self.tables.db(t).get(self.txn, k)?)
    }

    /// Whether `k` is in `t` below the newest layer.
    pub(crate) fn below_newest(&self, t: Table, k: &[u8]) -> Result<bool> {
        if let Some(v) = self.frozen.and_then(|f| f.get(t, k)) {
            return Ok(v.is_some());
        }
        Ok(self.tables.db(t).get(self.txn, k)?.is_some())
    }

    /// Visits the entries of `t` whose keys start with `prefix`, in key
    /// order, until `visit` returns `false`.
    pub(crate) fn prefix(
        &self,
        t: Table,
        prefix: &[u8],
        visit: impl FnMut(&'a [u8], &'a [u8]) -> Result<bool>,
    ) -> Result<()> {
        self.scan(t, Bound::Included(prefix), prefix, visit)
    }

    /// Visits the entries of `t` from `from` on while their keys start with
    /// `prefix`, in key order, until `visit` returns `false`.
    pub(crate) fn scan(
        &self,
        t: Table,
        from: Bound<&[u8]>,
        prefix: &[u8],
        mut visit: impl FnMut(&'a [u8], &'a [u8]) -> Result<bool>,
    ) -> Result<()> {
        // LMDB refuses an empty key, even as a bound.
        let from = match from {
            Bound::Included([]) => Bound::Unbounded,
            b => b,
        };
        let mut newest = self.mem.range(t, from).peekable();
        let mut frozen = self
            .frozen
            .into_iter()
            .flat_map(|f| f.range(t, from))
            .peekable();
        let mut lmdb = self
            .tables
            .db(t)
            .range(self.txn, &(from, Bound::Unbounded))?
            .peekable();
        loop {
            let lmdb_key = match lmdb.peek() {
                None => None,
                Some(Ok((k, _))) => Some(*k),
                Some(Err(_)) => match lmdb.next() {
                    Some(Err(e)) => return Err(e.into()),
                    _ => None,
                },
            };
            let newest_key = newest.peek().map(|(k, _)| *k);
            let frozen_key = frozen.peek().map(|(k, _)| *k);
            let Some(key) = [newest_key, frozen_key, lmdb_key]
                .into_iter()
                .flatten()
                .min()
            else {
                return Ok(());
            };
            if !key.starts_with(prefix) {
                return Ok(());
            }
            // The same key may be in every source: the newest one wins and
            // the others are skipped past.
            let mut value: Option<Option<&'a [u8]>> = None;
            if newest_key == Some(key) {
                value = newest.next().map(|(_, v)| v.as_deref());
            }
            if frozen_key == Some(key) {
                let v = frozen.next().map(|(_, v)| v.as_deref());
                value = value.or(v);
            }
            if lmdb_key == Some(key) {
                let v = match lmdb.next() {
                    Some(Ok((_, v))) => Some(Some(v)),
                    Some(Err(e)) => return Err(e.into()),
                    None => None,
                };
                value = value.or(v);
            }
            if let Some(Some(v)) = value
                && !visit(key, v)?
            {
                return Ok(());
            }
        }
    }
}
