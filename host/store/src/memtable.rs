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

/// Writes not yet in LMDB: one ordered map per table, over runs.
///
/// A run is what one large commit (a migration rewriting a whole state)
/// wrote, sorted, in one buffer per table: inserting a million writes one
/// by one into the maps costs a tree walk and two allocations each, where
/// a run costs a sort and a few bytes of index each. Runs sit under the
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
        self.runs
            .iter()
            .rev()
            .find_map(|r| r.tables[t as usize].get(k))
    }

    /// Whether a run holds a write of `k` in `t`: removing `k` then takes
    /// a deletion in the maps, not just forgetting it there.
    pub(crate) fn in_runs(&self, t: Table, k: &[u8]) -> bool {
        self.runs
            .iter()
            .any(|r| r.tables[t as usize].get(k).is_some())
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
        for (t, sorted) in run.tables.iter().enumerate() {
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
            sources.push(Box::new(r.tables[t as usize].range(from)));
        }
        Merged::Many(merge(sources))
    }

    /// Every write of table `t`, in key order, the newest of each key.
    pub(crate) fn iter(&self, t: Table) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.range(t, Bound::Unbounded)
    }
}

type Record<'a> = (&'a [u8], Option<&'a [u8]>);

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

/// One large commit's writes: per table, records sorted by key, one per
/// key, in one buffer.
pub(crate) struct Run {
    tables: [Sorted; COUNT],
    /// What the buffers take.
    bytes: usize,
}

/// Records in one buffer: `key len: u32 | key | 0 (deleted) or 1 | value
/// len: u32 | value`, and where each starts, in key order.
#[derive(Default)]
struct Sorted {
    data: Vec<u8>,
    starts: Vec<usize>,
}

impl Sorted {
    fn push(&mut self, k: &[u8], v: Option<&[u8]>) {
        self.starts.push(self.data.len());
        // Keys and values are bounded far below 4 GiB (as in the log).
        self.data.extend_from_slice(&(k.len() as u32).to_le_bytes());
        self.data.extend_from_slice(k);
        match v {
            None => self.data.push(0),
            Some(v) => {
                self.data.push(1);
                self.data.extend_from_slice(&(v.len() as u32).to_le_bytes());
                self.data.extend_from_slice(v);
            }
        }
    }

    /// The record starting at `at`. The buffer is only ever written by
    /// `push`, so the lengths in it hold.
    fn record(&self, at: usize) -> Record<'_> {
        let len = |at: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&self.data[at..at + 4]);
            u32::from_le_bytes(b) as usize
        };
        let klen = len(at);
        let key = &self.data[at + 4..at + 4 + klen];
        let tag = at + 4 + klen;
        let value = (self.data[tag] == 1).then(|| {
            let vlen = len(tag + 1);
            &self.data[tag + 5..tag + 5 + vlen]
        });
        (key, value)
    }

    fn key_at(&self, i: usize) -> Option<&[u8]> {
        self.starts.get(i).map(|&at| self.record(at).0)
    }

    fn last_key(&self) -> Option<&[u8]> {
        self.starts.last().map(|&at| self.record(at).0)
    }

    /// Sorts by key; of equal keys the last pushed stays.
    fn seal(&mut self) {
        let key = |at: usize| self.record(at).0;
        if self.starts.windows(2).all(|w| key(w[0]) < key(w[1])) {
            // Pushed in order, as a caller writing a sorted map does.
            return;
        }
        // Where the keys start to differ (a context's keys share its id):
        // eight bytes from there, kept beside each record's start, decide
        // most comparisons without reading the buffer at random.
        let first = self.starts.first().map_or(&[][..], |&at| key(at));
        let common = self.starts.iter().fold(first.len(), |n, &at| {
            first[..n]
                .iter()
                .zip(key(at))
                .take_while(|(a, b)| a == b)
                .count()
        });
        let window = |k: &[u8]| {
            let mut w = [0u8; 8];
            let tail = k.get(common..).unwrap_or_default();
            let n = tail.len().min(8);
            w[..n].copy_from_slice(&tail[..n]);
            u64::from_be_bytes(w)
        };
        let mut order: Vec<(u64, usize)> = self
            .starts
            .iter()
            .map(|&at| (window(key(at)), at))
            .collect();
        // Equal windows fall back to the keys; equal keys to the order they
        // were pushed in (a later record starts later in the buffer).
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| key(a.1).cmp(key(b.1)))
                .then(a.1.cmp(&b.1))
        });
        let mut starts: Vec<usize> = Vec::with_capacity(order.len());
        let mut last_window = None;
        for (w, at) in order {
            // Different windows, different keys: the buffer is read only
            // for keys that may be equal.
            match starts.last_mut() {
                Some(last) if last_window == Some(w) && key(*last) == key(at) => *last = at,
                _ => starts.push(at),
            }
            last_window = Some(w);
        }
        self.starts = starts;
    }

    fn get(&self, k: &[u8]) -> Option<Option<&[u8]>> {
        let i = self
            .starts
            .binary_search_by(|&at| self.record(at).0.cmp(k))
            .ok()?;
        Some(self.record(self.starts[i]).1)
    }

    fn range<'a>(&'a self, from: Bound<&[u8]>) -> impl Iterator<Item = Record<'a>> + 'a {
        let first = match from {
            Bound::Unbounded => 0,
            Bound::Included(k) => self.starts.partition_point(|&at| self.record(at).0 < k),
            Bound::Excluded(k) => self.starts.partition_point(|&at| self.record(at).0 <= k),
        };
        self.starts[first..].iter().map(|&at| self.record(at))
    }
}

/// Collects a run's writes, in any order.
#[derive(Default)]
pub(crate) struct RunBuilder {
    tables: [Sorted; COUNT],
}

impl RunBuilder {
    /// Makes room for `records` more records of `t` taking `bytes` (keys
    /// and values): a buffer grown by doubling holds up to twice what it
    /// needs, and for a moment, while it moves, three times.
    pub(crate) fn reserve(&mut self, t: Table, records: usize, bytes: usize) {
        let s = &mut self.tables[t as usize];
        s.starts.reserve_exact(records);
        s.data.reserve_exact(bytes + records * 9);
    }

    pub(crate) fn push(&mut self, t: Table, k: &[u8], v: Option<&[u8]>) {
        self.tables[t as usize].push(k, v);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tables.iter().all(|s| s.starts.is_empty())
    }

    /// The run, sorted.
    pub(crate) fn seal(mut self) -> Run {
        let mut bytes = 0;
        for s in &mut self.tables {
            s.seal();
            s.data.shrink_to_fit();
            bytes += s.data.len() + s.starts.len() * std::mem::size_of::<usize>();
        }
        Run {
            tables: self.tables,
            bytes,
        }
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

    fn run(writes: &[(&[u8], Option<&[u8]>)]) -> Run {
        let mut b = RunBuilder::default();
        for (k, v) in writes {
            b.push(Table::Entries, k, *v);
        }
        b.seal()
    }

    fn all(mem: &Mem) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        mem.iter(Table::Entries)
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn a_run_sorts_keys_with_a_long_common_prefix_and_keeps_the_last_of_each() {
        // Keys sharing 32 bytes, some equal in the next eight, some
        // repeated, some prefixes of others.
        let mut b = RunBuilder::default();
        let mut expected = std::collections::BTreeMap::new();
        let mut x: u32 = 7;
        for i in 0..2000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let mut k = vec![9u8; 32];
            k.extend_from_slice(&(x % 97).to_be_bytes());
            k.extend_from_slice(&[0; 4][..(x % 5) as usize]);
            if x.is_multiple_of(3) {
                k.extend_from_slice(&(x % 11).to_be_bytes());
            }
            let v = i.to_be_bytes();
            b.push(Table::Leaves, &k, Some(&v));
            expected.insert(k, v.to_vec());
        }
        let mut mem = Mem::default();
        mem.add_run(b.seal());
        let got: Vec<(Vec<u8>, Vec<u8>)> = mem
            .iter(Table::Leaves)
            .map(|(k, v)| (k.to_vec(), v.unwrap_or_default().to_vec()))
            .collect();
        assert_eq!(got, expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn a_run_is_under_later_writes_and_over_earlier_ones() {
        let mut mem = Mem::default();
        mem.insert(Table::Entries, b"a", Some(Arc::from(&b"map a"[..])));
        mem.insert(Table::Entries, b"c", Some(Arc::from(&b"map c"[..])));
        mem.insert(Table::Entries, b"x", None);
        // The last write of a key in a run wins; "c" is older in the maps.
        mem.add_run(run(&[
            (b"d", Some(b"run d")),
            (b"c", Some(b"run c")),
            (b"b", None),
            (b"d", Some(b"run d2")),
        ]));
        assert_eq!(mem.get(Table::Entries, b"c"), Some(Some(&b"run c"[..])));
        assert_eq!(mem.get(Table::Entries, b"d"), Some(Some(&b"run d2"[..])));
        assert_eq!(mem.get(Table::Entries, b"b"), Some(None));
        assert_eq!(mem.get(Table::Entries, b"a"), Some(Some(&b"map a"[..])));
        assert_eq!(mem.get(Table::Entries, b"z"), None);
        assert_eq!(mem.get(Table::Counts, b"c"), None);
        assert!(mem.in_runs(Table::Entries, b"b") && !mem.in_runs(Table::Entries, b"a"));
        // Written after the run: over it.
        mem.insert(Table::Entries, b"d", Some(Arc::from(&b"map d"[..])));
        let newer = run(&[(b"a", Some(b"run2 a")), (b"e", Some(b"run2 e"))]);
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
