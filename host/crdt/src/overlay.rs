//! A write buffer over a read-only state.
//!
//! While a call runs, its writes go to an [`Overlay`] over a snapshot of the
//! committed state, so the call reads its own writes and nothing reaches the
//! store until the call has succeeded. Several calls in one commit batch share
//! one overlay; a [`checkpoint`](Overlay::checkpoint) before each call lets a
//! failing call be [rolled back](Overlay::rollback) without disturbing the
//! calls before it.
//!
//! An overlay holds whole entries (its base joined with every write), so
//! what it buffered can also be [taken out](Overlay::take_writes) and
//! stored as it is, without the ops that produced it: that is how a
//! migration, which may rewrite every entry of a state, commits. It is laid
//! out for that size: entries are grouped by collection (node), found by
//! node id first (held inline, so a lookup compares the map's own memory
//! rather than one allocation per key), most collections it touches being
//! registers of one entry; and entries are held encoded.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::backend::{CountChange, StateRead, StateWrite};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::id::NodeId;

/// An entry as an overlay holds it: its Borsh encoding, in one allocation
/// the size of it. Nearly half as much memory as the decoded entry with its
/// own allocations, for what a migration may hold a million of; and what a
/// store writes, as it is.
type Stored = Box<[u8]>;

/// `entry` encoded, through `scratch` (one pass, one allocation).
fn stored(entry: &Entry, scratch: &mut Vec<u8>) -> Result<Stored> {
    scratch.clear();
    borsh::to_writer(&mut *scratch, entry).map_err(|source| Error::Encode {
        what: "entry",
        source,
    })?;
    Ok(Box::from(&scratch[..]))
}

fn load(bytes: &[u8]) -> Result<Entry> {
    // Encoded by `stored` above: it decodes, unless memory is corrupt.
    borsh::from_slice(bytes).map_err(Error::backend)
}

/// A visible count an overlay holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// The count.
    Set(u64),
    /// A change to the count under the overlay, not read yet.
    Change(CountChange),
}

impl Count {
    /// The count, given the one under the overlay if it is a change.
    pub fn over(self, base: impl FnOnce() -> Result<u64>) -> Result<u64> {
        match self {
            Count::Set(n) => Ok(n),
            Count::Change(c) => Ok(c.apply(base()?)),
        }
    }
}

/// The entries buffered in one collection.
#[derive(Debug, Default)]
enum Entries {
    #[default]
    None,
    /// One, as in a register (its one entry is at the empty key, which
    /// takes no allocation).
    One(Box<[u8]>, Stored),
    Many(BTreeMap<Box<[u8]>, Stored>),
}

impl Entries {
    fn get(&self, key: &[u8]) -> Option<&Stored> {
        match self {
            Entries::None => None,
            Entries::One(k, v) => (**k == *key).then_some(v),
            Entries::Many(m) => m.get(key),
        }
    }

    /// Sets `key` to `value`; returns what it held.
    fn insert(&mut self, key: &[u8], value: Stored) -> Option<Stored> {
        match self {
            Entries::None => {
                *self = Entries::One(key.into(), value);
                None
            }
            Entries::One(k, v) if **k == *key => Some(std::mem::replace(v, value)),
            Entries::One(..) => {
                let Entries::One(k, v) = std::mem::take(self) else {
                    return None;
                };
                *self = Entries::Many(BTreeMap::from([(k, v), (key.into(), value)]));
                None
            }
            Entries::Many(m) => match m.get_mut(key) {
                Some(v) => Some(std::mem::replace(v, value)),
                None => {
                    m.insert(key.into(), value);
                    None
                }
            },
        }
    }

    /// Forgets `key`; returns what it held.
    fn remove(&mut self, key: &[u8]) -> Option<Stored> {
        match self {
            Entries::One(k, _) if **k == *key => match std::mem::take(self) {
                Entries::One(_, v) => Some(v),
                _ => None,
            },
            Entries::Many(m) => m.remove(key),
            _ => None,
        }
    }

    /// Keys strictly after `after` (all if `None`), in order.
    fn after<'a>(
        &'a self,
        after: Option<&'a [u8]>,
    ) -> Box<dyn Iterator<Item = (&'a [u8], &'a Stored)> + 'a> {
        match self {
            Entries::None => Box::new(std::iter::empty()),
            Entries::One(k, v) => Box::new(
                after
                    .is_none_or(|a| **k > *a)
                    .then_some((&**k, v))
                    .into_iter(),
            ),
            Entries::Many(m) => {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                Box::new(
                    m.range::<[u8], _>((from, Bound::Unbounded))
                        .map(|(k, v)| (&**k, v)),
                )
            }
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &Stored)> + '_> {
        self.after(None)
    }

    /// The entries in key order, freed as they go.
    fn drain(self) -> Box<dyn Iterator<Item = (Box<[u8]>, Stored)>> {
        match self {
            Entries::None => Box::new(std::iter::empty()),
            Entries::One(k, v) => Box::new(std::iter::once((k, v))),
            Entries::Many(m) => Box::new(m.into_iter()),
        }
    }
}

/// What an overlay holds of one collection.
#[derive(Debug, Default)]
struct Node {
    entries: Entries,
    count: Option<Count>,
}

/// Buffered writes over a base state.
#[derive(Debug)]
pub struct Overlay<B> {
    base: B,
    nodes: BTreeMap<NodeId, Node>,
    /// Entries buffered, over all nodes.
    len: usize,
    /// Count changes are kept as changes (see [`Overlay::defer_counts`]).
    defer_counts: bool,
    journal: Option<Journal>,
    /// Where entries are encoded.
    scratch: Vec<u8>,
}

/// What undoes the writes made since the current checkpoint.
#[derive(Debug, Default)]
struct Journal {
    /// The overlay was empty at the checkpoint, so undoing is emptying it:
    /// nothing is recorded per write (a migration, which starts on an
    /// empty overlay, may write every entry of the state).
    fresh: bool,
    /// Values held before the checkpoint, for each key touched since.
    entries: HashMap<(NodeId, Box<[u8]>), Option<Stored>>,
    counts: HashMap<NodeId, Option<Count>>,
}

/// What an overlay buffered, taken out of it: whole entries (the base
/// joined with every write) and the visible counts that changed.
#[derive(Debug, Default)]
pub struct Writes {
    nodes: BTreeMap<NodeId, Node>,
    len: usize,
}

impl Writes {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes of the entries' keys (within their nodes) and encodings.
    pub fn bytes(&self) -> usize {
        self.entries().map(|(_, k, e)| k.len() + e.len()).sum()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0 && self.counts().next().is_none()
    }

    /// The entries, Borsh-encoded, in (node, key) order.
    pub fn entries(&self) -> impl Iterator<Item = (NodeId, &[u8], &[u8])> {
        self.nodes
            .iter()
            .flat_map(|(n, node)| node.entries.iter().map(move |(k, e)| (*n, k, &**e)))
    }

    /// The visible counts, by collection, in node order.
    pub fn counts(&self) -> impl Iterator<Item = (&NodeId, Count)> {
        self.nodes
            .iter()
            .filter_map(|(n, node)| node.count.map(|c| (n, c)))
    }

    /// Visits each collection's visible count, then its entries
    /// (Borsh-encoded, as a store keeps them), in (node, key) order,
    /// freeing each as it goes: storing a large set of writes need not hold
    /// it twice. A store reads the counts the changes apply to in the
    /// order it keeps them.
    pub fn drain<E>(self, mut f: impl FnMut(Drained<'_>) -> Result<(), E>) -> Result<(), E> {
        for (n, node) in self.nodes {
            if let Some(count) = node.count {
                f(Drained::Count(&n, count))?;
            }
            for (k, e) in node.entries.drain() {
                f(Drained::Entry(&n, &k, &e))?;
            }
        }
        Ok(())
    }
}

/// One item of [`Writes::drain`].
#[derive(Debug)]
pub enum Drained<'a> {
    /// A collection's visible count.
    Count(&'a NodeId, Count),
    /// An entry of a collection: its key in it and its encoding.
    Entry(&'a NodeId, &'a [u8], &'a [u8]),
}

impl<B: StateRead> Overlay<B> {
    /// An empty overlay over `base`.
    pub fn new(base: B) -> Self {
        Overlay {
            base,
            nodes: BTreeMap::new(),
            len: 0,
            defer_counts: false,
            journal: None,
            scratch: Vec::new(),
        }
    }

    /// Keeps each change of a visible count as a change, without reading
    /// the count under the overlay, until something reads the count: for
    /// writes that will be [taken out](Self::take_writes) and stored, where
    /// the store reads the counts in order (a migration's, which changes a
    /// count per collection it writes, scattered over the state). Such an
    /// overlay must not be [rebased](Self::rebase): its changes are to the
    /// base it was over.
    pub fn defer_counts(&mut self) {
        self.defer_counts = true;
    }

    /// The state under the overlay.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// The same buffered writes over another base (any checkpoint is
    /// dropped). Writes hold whole entries, so they stay right over a base
    /// that already includes them.
    pub fn rebase<C: StateRead>(self, base: C) -> Overlay<C> {
        debug_assert!(
            !self
                .nodes
                .values()
                .any(|n| matches!(n.count, Some(Count::Change(_)))),
            "an overlay deferring counts is never rebased"
        );
        Overlay {
            base,
            nodes: self.nodes,
            len: self.len,
            defer_counts: false,
            journal: None,
            scratch: self.scratch,
        }
    }

    /// Whether no write is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many entries are buffered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Takes the buffered writes out, leaving the overlay empty (any
    /// checkpoint dropped, counts no longer deferred).
    pub fn take_writes(&mut self) -> Writes {
        self.journal = None;
        self.defer_counts = false;
        Writes {
            nodes: std::mem::take(&mut self.nodes),
            len: std::mem::take(&mut self.len),
        }
    }

    /// Starts recording what to undo. Replaces any earlier checkpoint.
    pub fn checkpoint(&mut self) {
        self.journal = Some(Journal {
            fresh: self.nodes.is_empty(),
            ..Journal::default()
        });
    }

    /// Keeps the writes made since the checkpoint and forgets it.
    pub fn release(&mut self) {
        self.journal = None;
    }

    /// Undoes every write made since the checkpoint.
    pub fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        if journal.fresh {
            self.nodes.clear();
            self.len = 0;
            self.defer_counts = false;
            return;
        }
        for ((node, key), old) in journal.entries {
            let entries = &mut self.nodes.entry(node).or_default().entries;
            let had = match old {
                Some(e) => entries.insert(&key, e),
                None => entries.remove(&key),
            };
            match (had.is_some(), entries.get(&key).is_some()) {
                (true, false) => self.len -= 1,
                (false, true) => self.len += 1,
                _ => {}
            }
        }
        for (node, old) in journal.counts {
            self.nodes.entry(node).or_default().count = old;
        }
    }

    fn set_count(&mut self, node: &NodeId, count: Count) {
        let slot = &mut self.nodes.entry(*node).or_default().count;
        let old = slot.replace(count);
        if let Some(j) = &mut self.journal
            && !j.fresh
        {
            j.counts.entry(*node).or_insert(old);
        }
    }
}

impl<B: StateRead> StateRead for Overlay<B> {
    fn entry(&self, node: &NodeId, key: &[u8]) -> Result<Option<Entry>> {
        match self.nodes.get(node).and_then(|n| n.entries.get(key)) {
            Some(e) => load(e).map(Some),
            None => self.base.entry(node, key),
        }
    }

    fn children(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>> {
        let base = self.base.children(node, after, limit)?;
        // If the base page is full, the base may hold more keys past its last
        // one; buffered keys beyond it belong to a later page.
        let upper = if base.len() == limit {
            base.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        let mut buffered = match self.nodes.get(node) {
            Some(n) => n.entries.after(after),
            None => Box::new(std::iter::empty()),
        }
        .take_while(|(k, _)| upper.as_deref().is_none_or(|u| *k <= u))
        .peekable();
        let mut out = Vec::with_capacity(limit.min(base.len() + 16));
        let mut base = base.into_iter().peekable();
        while out.len() < limit {
            let order = match (base.peek(), buffered.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((bk, _)), Some((ok, _))) => (**bk).cmp(*ok),
            };
            if order != Ordering::Greater {
                // On a tie the buffered write shadows the base entry.
                let Some(b) = base.next() else { break };
                if order == Ordering::Less {
                    out.push(b);
                    continue;
                }
            }
            // Decoded only once taken: a page reads no more than it returns.
            if let Some((k, e)) = buffered.next() {
                out.push((k.to_vec(), load(e)?));
            }
        }
        Ok(out)
    }

    fn visible_count(&self, node: &NodeId) -> Result<u64> {
        match self.nodes.get(node).and_then(|n| n.count) {
            Some(c) => c.over(|| self.base.visible_count(node)),
            None => self.base.visible_count(node),
        }
    }
}

impl<B: StateRead> StateWrite for Overlay<B> {
    fn put_entry(&mut self, node: &NodeId, key: &[u8], entry: &Entry) -> Result<()> {
        let entry = stored(entry, &mut self.scratch)?;
        let old = self
            .nodes
            .entry(*node)
            .or_default()
            .entries
            .insert(key, entry);
        if old.is_none() {
            self.len += 1;
        }
        if let Some(j) = &mut self.journal
            && !j.fresh
        {
            j.entries.entry((*node, key.into())).or_insert(old);
        }
        Ok(())
    }

    fn put_visible_count(&mut self, node: &NodeId, count: u64) -> Result<()> {
        self.set_count(node, Count::Set(count));
        Ok(())
    }

    fn step_visible_count(&mut self, node: &NodeId, up: bool) -> Result<()> {
        let count = match self.nodes.get(node).and_then(|n| n.count) {
            Some(Count::Set(n)) => Count::Set(CountChange::default().step(up).apply(n)),
            Some(Count::Change(c)) => Count::Change(c.step(up)),
            None if self.defer_counts => Count::Change(CountChange::default().step(up)),
            None => Count::Set(
                CountChange::default()
                    .step(up)
                    .apply(self.base.visible_count(node)?),
            ),
        };
        self.set_count(node, count);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBackend;
    use crate::entry::{Register, Stamp};
    use crate::hlc::Hlc;
    use crate::id::Author;

    fn reg(ms: u64, v: &[u8]) -> Entry {
        Entry::Register(Register {
            stamp: Stamp {
                hlc: Hlc {
                    millis: ms,
                    counter: 0,
                },
                author: Author([1; 32]),
            },
            value: Some(v.to_vec()),
        })
    }

    #[test]
    fn a_rollback_to_an_empty_checkpoint_empties_and_others_restore() {
        let mut base = MemoryBackend::default();
        let n = NodeId::root("n");
        base.put_entry(&n, b"a", &reg(1, b"base")).unwrap();
        let mut o = Overlay::new(&base);
        o.checkpoint();
        o.put_entry(&n, b"a", &reg(2, b"one")).unwrap();
        o.put_visible_count(&n, 7).unwrap();
        o.rollback();
        assert!(o.is_empty());
        assert_eq!(o.visible_count(&n).unwrap(), 0);
        assert_eq!(o.entry(&n, b"a").unwrap(), Some(reg(1, b"base")));

        o.put_entry(&n, b"a", &reg(2, b"kept")).unwrap();
        o.checkpoint();
        o.put_entry(&n, b"a", &reg(3, b"undone")).unwrap();
        o.put_entry(&n, &[7; 200], &reg(3, b"long key")).unwrap();
        o.rollback();
        assert_eq!(o.len(), 1);
        assert_eq!(o.entry(&n, b"a").unwrap(), Some(reg(2, b"kept")));
        assert_eq!(o.entry(&n, &[7; 200]).unwrap(), None);
    }

    #[test]
    fn deferred_count_changes_come_to_what_each_step_would_have() {
        let n = NodeId::root("n");
        // Every run of up to 8 steps, over counts 0 to 3.
        for steps in 0u32..(1 << 8) {
            for len in 0..=8u32 {
                for start in 0..4u64 {
                    let mut base = MemoryBackend::default();
                    base.put_visible_count(&n, start).unwrap();
                    let mut eager = Overlay::new(&base);
                    let mut deferred = Overlay::new(&base);
                    deferred.defer_counts();
                    for i in 0..len {
                        let up = steps & (1 << i) != 0;
                        eager.step_visible_count(&n, up).unwrap();
                        deferred.step_visible_count(&n, up).unwrap();
                    }
                    assert_eq!(
                        eager.visible_count(&n).unwrap(),
                        deferred.visible_count(&n).unwrap(),
                        "{start} then {steps:08b} ({len} steps)"
                    );
                }
            }
        }
    }

    #[test]
    fn children_merge_buffered_and_base_keys_of_one_node_only() {
        let mut base = MemoryBackend::default();
        let n = NodeId::root("n");
        let other = NodeId::root("other");
        for k in [b"a", b"c", b"e"] {
            base.put_entry(&n, k, &reg(1, k)).unwrap();
        }
        let mut o = Overlay::new(&base);
        o.put_entry(&n, b"b", &reg(2, b"b")).unwrap();
        o.put_entry(&n, b"c", &reg(2, b"c2")).unwrap();
        o.put_entry(&other, b"a", &reg(2, b"x")).unwrap();
        let all = o.children(&n, None, 10).unwrap();
        let keys: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![&b"a"[..], b"b", b"c", b"e"]);
        assert_eq!(all[2].1, reg(2, b"c2"));
        let page = o.children(&n, Some(b"a"), 2).unwrap();
        let keys: Vec<&[u8]> = page.iter().map(|(k, _)| k.as_slice()).collect();
        assert_eq!(keys, vec![&b"b"[..], b"c"]);
        let writes = o.take_writes();
        assert!(o.is_empty());
        let taken: Vec<(NodeId, Vec<u8>)> =
            writes.entries().map(|(n, k, _)| (n, k.to_vec())).collect();
        assert_eq!(taken.len(), 3);
        assert!(taken.contains(&(other, b"a".to_vec())));
    }
}
