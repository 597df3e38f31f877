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
use crate::run::{Record, Run};
use crate::tables::{COUNT, Table, Tables};

/// A written value, or `None` for a deletion not yet applied to LMDB.
pub(crate) type Value = Option<Arc<[u8]>>;

/// Writes not yet in LMDB: one ordered map per table, over runs.
///
/// A run is what one large commit (a migration rewriting a whole state)
/// wrote, sorted, in one file per table (see `run`): inserting a million
/// writes one by one into the maps costs a tree walk and two allocations
/// each, and holds them all in memory, where a run costs a sort and 8 bytes
/// of index each. Runs sit under the
/// maps, newest first: a run added takes the place of the maps' older
/// values of its keys, and later writes go to the maps, above it.
#[derive(Clone, Default)]
pub(crate) struct Mem {
    // Keys are shared, not owned: a commit's first write under a node of
    // a map shared with a snapshot copies the node, keys and all.
    maps: [OrdMap<Arc<[u8]>, Value>; COUNT],
    /// Oldest first.
    runs: Vec<Arc<Run>>,
    /// Roughly what the maps' writes take in memory; with `run_bytes`,
    /// decides when to flush.
    bytes: usize,
    run_bytes: usize,
}

impl Mem {
    /// The write of `k` in `t`: `Some(None)` if it was deleted.
    pub(crate) fn get(&self, t: Table, k: &[u8]) -> Option<Option<&[u8]>> {
        if let Some(v) = self.maps[t as usize].get(k) {
            return Some(v.as_deref());
        }
        self.runs.iter().rev().find_map(|r| r.table(t).get(k))
    }

    /// Whether a run holds a write of `k` in `t`: removing `k` then takes
    /// a deletion in the maps, not just forgetting it there.
    pub(crate) fn in_runs(&self, t: Table, k: &[u8]) -> bool {
        self.runs.iter().any(|r| r.table(t).get(k).is_some())
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

    /// Adds `run` above the runs there are and under the maps, dropping
    /// the maps' (older) writes of its keys.
    pub(crate) fn add_run(&mut self, run: Run) {
        for (t, sorted) in run.tables().enumerate() {
            let (Some(first), Some(last)) = (sorted.key_at(0), sorted.last_key()) else {
                continue;
            };
            let shadowed: Vec<Arc<[u8]>> = self.maps[t]
                .range::<_, [u8]>((Bound::Included(first), Bound::Included(last)))
                .filter(|(k, _)| sorted.get(k).is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for k in shadowed {
                self.maps[t].remove(&*k);
            }
        }
        self.run_bytes += run.bytes;
        self.runs.push(Arc::new(run));
    }

    /// Unmaps the pages of its runs that reads touched (see `Run`).
    pub(crate) fn release_run_pages(&self) {
        for r in &self.runs {
            r.release_pages();
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.maps.iter().all(OrdMap::is_empty) && self.runs.is_empty()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes + self.run_bytes
    }

    /// What the maps take: the writes of ordinary commits, which keep
    /// coming while a flush is stuck (runs come one per migration).
    pub(crate) fn map_bytes(&self) -> usize {
        self.bytes
    }

    /// Every write of table `t` from `from` on, in key order, the newest
    /// of each key.
    pub(crate) fn range<'m>(
        &'m self,
        t: Table,
        from: Bound<&[u8]>,
    ) -> impl Iterator<Item = (&'m [u8], Option<&'m [u8]>)> + 'm {
        let maps = self.maps[t as usize]
            .range::<_, [u8]>((from, Bound::Unbounded))
            .map(|(k, v)| (&**k, v.as_deref()));
        if self.runs.is_empty() {
            // The usual case: no merge to pay for.
            return Merged::One(maps);
        }
        let mut sources: Vec<Box<dyn Iterator<Item = Record<'m>> + 'm>> = vec![Box::new(maps)];
        for r in self.runs.iter().rev() {
            sources.push(Box::new(r.table(t).range(from)));
        }
        Merged::Many(merge(sources))
    }

    /// Every write of table `t`, in key order, the newest of each key.
    pub(crate) fn iter(&self, t: Table) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.range(t, Bound::Unbounded)
    }
}

enum Merged<A, B> {
    One(A),
    Many(B),
}

impl<'a, A, B> Iterator for Merged<A, B>
where
    A: Iterator<Item = Record<'a>>,
    B: Iterator<Item = Record<'a>>,
{
    type Item = Record<'a>;
    fn next(&mut self) -> Option<Record<'a>> {
        match self {
            Merged::One(a) => a.next(),
            Merged::Many(b) => b.next(),
        }
    }
}

/// Merges sorted sources, newest first: of equal keys, the first source's
/// record.
fn merge<'a>(
    sources: Vec<Box<dyn Iterator<Item = Record<'a>> + 'a>>,
) -> impl Iterator<Item = Record<'a>> + 'a {
    let mut sources: Vec<std::iter::Peekable<_>> =
        sources.into_iter().map(Iterator::peekable).collect();
    std::iter::from_fn(move || {
        let key = sources
            .iter_mut()
            .filter_map(|s| s.peek().map(|(k, _)| *k))
            .min()?;
        let mut out = None;
        for s in &mut sources {
            if s.peek().is_some_and(|(k, _)| *k == key) {
                let r = s.next();
                out = out.or(r);
            }
        }
        out
    })
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
                return Ok(v);
            }
        }
        Ok(self.tables.db(t).get(self.txn, k)?)
    }

    /// Whether `k` is in `t` below the newest layer.
    pub(crate) fn below_newest(&self, t: Table, k: &[u8]) -> Result<bool> {
        if self.mem.in_runs(t, k) {
            return Ok(true);
        }
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
                value = newest.next().map(|(_, v)| v);
            }
            if frozen_key == Some(key) {
                let v = frozen.next().map(|(_, v)| v);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunBuilder;

    fn run(dir: &tempfile::TempDir, writes: &[(&[u8], Option<&[u8]>)]) -> Run {
        let mut b = RunBuilder::new(dir.path());
        for (k, v) in writes {
            b.push(Table::Entries, k, *v);
        }
        b.seal().unwrap()
    }

    fn all(mem: &Mem) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        mem.iter(Table::Entries)
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn a_run_is_under_later_writes_and_over_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = Mem::default();
        mem.insert(Table::Entries, b"a", Some(Arc::from(&b"map a"[..])));
        mem.insert(Table::Entries, b"c", Some(Arc::from(&b"map c"[..])));
        mem.insert(Table::Entries, b"x", None);
        // The last write of a key in a run wins; "c" is older in the maps.
        mem.add_run(run(
            &dir,
            &[
                (b"d", Some(b"run d")),
                (b"c", Some(b"run c")),
                (b"b", None),
                (b"d", Some(b"run d2")),
            ],
        ));
        assert_eq!(mem.get(Table::Entries, b"c"), Some(Some(&b"run c"[..])));
        assert_eq!(mem.get(Table::Entries, b"d"), Some(Some(&b"run d2"[..])));
        assert_eq!(mem.get(Table::Entries, b"b"), Some(None));
        assert_eq!(mem.get(Table::Entries, b"a"), Some(Some(&b"map a"[..])));
        assert_eq!(mem.get(Table::Entries, b"z"), None);
        assert_eq!(mem.get(Table::Counts, b"c"), None);
        assert!(mem.in_runs(Table::Entries, b"b") && !mem.in_runs(Table::Entries, b"a"));
        // Written after the run: over it.
        mem.insert(Table::Entries, b"d", Some(Arc::from(&b"map d"[..])));
        let newer = run(&dir, &[(b"a", Some(b"run2 a")), (b"e", Some(b"run2 e"))]);
        let snapshot = mem.clone();
        mem.add_run(newer);
        let v = |s: &str| Some(s.as_bytes().to_vec());
        assert_eq!(
            all(&mem),
            vec![
                (b"a".to_vec(), v("run2 a")),
                (b"b".to_vec(), None),
                (b"c".to_vec(), v("run c")),
                (b"d".to_vec(), v("map d")),
                (b"e".to_vec(), v("run2 e")),
                (b"x".to_vec(), None),
            ]
        );
        // A copy taken before is unchanged.
        assert_eq!(
            snapshot.get(Table::Entries, b"a"),
            Some(Some(&b"map a"[..]))
        );
        let from_c: Vec<&[u8]> = mem
            .range(Table::Entries, Bound::Excluded(b"c"))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(from_c, vec![&b"d"[..], b"e", b"x"]);
    }
}
