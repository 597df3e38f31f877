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
//! migration, which may rewrite every entry of a state, commits.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::backend::{StateRead, StateWrite};
use crate::entry::Entry;
use crate::error::Result;
use crate::id::NodeId;

/// `node ‖ key`: one allocation per buffered key, in (node, key) order (a
/// node id is 32 bytes), and looked up with a borrowed slice.
type Key = Box<[u8]>;

/// Runs `f` on `node ‖ key`, built on the stack when it is short: a lookup
/// should not allocate.
fn with_key<R>(node: &NodeId, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    const INLINE: usize = 96;
    if key.len() <= INLINE {
        let mut buf = [0u8; 32 + INLINE];
        buf[..32].copy_from_slice(&node.0);
        buf[32..32 + key.len()].copy_from_slice(key);
        f(&buf[..32 + key.len()])
    } else {
        f(&[&node.0[..], key].concat())
    }
}

fn make_key(node: &NodeId, key: &[u8]) -> Key {
    [&node.0[..], key].concat().into_boxed_slice()
}

/// Splits a buffered key into its node and the key within the node.
fn split(k: &[u8]) -> (NodeId, &[u8]) {
    let (node, key) = k.split_at(32);
    let mut id = [0u8; 32];
    id.copy_from_slice(node);
    (NodeId(id), key)
}

/// Buffered writes over a base state.
#[derive(Debug)]
pub struct Overlay<B> {
    base: B,
    entries: BTreeMap<Key, Entry>,
    counts: HashMap<NodeId, u64>,
    journal: Option<Journal>,
}

/// What undoes the writes made since the current checkpoint.
#[derive(Debug, Default)]
struct Journal {
    /// The overlay was empty at the checkpoint, so undoing is emptying it:
    /// nothing is recorded per write (a migration, which starts on an
    /// empty overlay, may write every entry of the state).
    fresh: bool,
    /// Values held before the checkpoint, for each key touched since.
    entries: HashMap<Key, Option<Entry>>,
    counts: HashMap<NodeId, Option<u64>>,
}

/// What an overlay buffered, taken out of it: whole entries (the base
/// joined with every write) and the visible counts that changed.
#[derive(Debug, Default)]
pub struct Writes {
    entries: BTreeMap<Key, Entry>,
    counts: HashMap<NodeId, u64>,
}

impl Writes {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.counts.is_empty()
    }

    /// The entries, in (node, key) order.
    pub fn entries(&self) -> impl Iterator<Item = (NodeId, &[u8], &Entry)> {
        self.entries.iter().map(|(k, e)| {
            let (node, key) = split(k);
            (node, key, e)
        })
    }

    /// The visible counts, by collection.
    pub fn counts(&self) -> impl Iterator<Item = (&NodeId, u64)> {
        self.counts.iter().map(|(n, c)| (n, *c))
    }

    /// Takes the visible counts out, in node order.
    pub fn take_counts(&mut self) -> Vec<(NodeId, u64)> {
        let mut counts: Vec<(NodeId, u64)> = std::mem::take(&mut self.counts).into_iter().collect();
        counts.sort_unstable();
        counts
    }

    /// Visits the entries in (node, key) order, freeing each as it goes:
    /// storing a large set of writes need not hold it twice.
    pub fn drain<E>(
        self,
        mut f: impl FnMut(&NodeId, &[u8], &Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        for (k, e) in self.entries {
            let (node, key) = split(&k);
            f(&node, key, &e)?;
        }
        Ok(())
    }
}

impl<B: StateRead> Overlay<B> {
    /// An empty overlay over `base`.
    pub fn new(base: B) -> Self {
        Overlay {
            base,
            entries: BTreeMap::new(),
            counts: HashMap::new(),
            journal: None,
        }
    }

    /// The state under the overlay.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// The same buffered writes over another base (any checkpoint is
    /// dropped). Writes hold whole entries, so they stay right over a base
    /// that already includes them.
    pub fn rebase<C: StateRead>(self, base: C) -> Overlay<C> {
        Overlay {
            base,
            entries: self.entries,
            counts: self.counts,
            journal: None,
        }
    }

    /// Whether no write is buffered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries are buffered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Takes the buffered writes out, leaving the overlay empty (and any
    /// checkpoint dropped).
    pub fn take_writes(&mut self) -> Writes {
        self.journal = None;
        Writes {
            entries: std::mem::take(&mut self.entries),
            counts: std::mem::take(&mut self.counts),
        }
    }

    /// Starts recording what to undo. Replaces any earlier checkpoint.
    pub fn checkpoint(&mut self) {
        self.journal = Some(Journal {
            fresh: self.entries.is_empty() && self.counts.is_empty(),
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
            self.entries.clear();
            self.counts.clear();
            return;
        }
        for (key, old) in journal.entries {
            match old {
                Some(e) => self.entries.insert(key, e),
                None => self.entries.remove(&key),
            };
        }
        for (node, old) in journal.counts {
            match old {
                Some(c) => self.counts.insert(node, c),
                None => self.counts.remove(&node),
            };
        }
    }
}

impl<B: StateRead> StateRead for Overlay<B> {
    fn entry(&self, node: &NodeId, key: &[u8]) -> Result<Option<Entry>> {
        match with_key(node, key, |k| self.entries.get(k)) {
            Some(e) => Ok(Some(e.clone())),
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
        let start = match after {
            Some(k) => make_key(node, k),
            None => make_key(node, &[]),
        };
        let range = match after {
            Some(_) => (Bound::Excluded(&*start), Bound::Unbounded),
            None => (Bound::Included(&*start), Bound::Unbounded),
        };
        let mut buffered = self
            .entries
            .range::<[u8], _>(range)
            .map(|(k, e)| (split(k), e))
            .take_while(|((n, k), _)| n == node && upper.as_deref().is_none_or(|u| *k <= u))
            .map(|((_, k), e)| (k.to_vec(), e.clone()))
            .peekable();
        let mut out = Vec::with_capacity(limit.min(base.len() + 16));
        let mut base = base.into_iter().peekable();
        while out.len() < limit {
            let order = match (base.peek(), buffered.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((bk, _)), Some((ok, _))) => bk.cmp(ok),
            };
            let next = match order {
                Ordering::Less => base.next(),
                Ordering::Greater => buffered.next(),
                Ordering::Equal => {
                    // The buffered write shadows the base entry.
                    base.next();
                    buffered.next()
                }
            };
            out.extend(next);
        }
        Ok(out)
    }

    fn visible_count(&self, node: &NodeId) -> Result<u64> {
        match self.counts.get(node) {
            Some(c) => Ok(*c),
            None => self.base.visible_count(node),
        }
    }
}

impl<B: StateRead> StateWrite for Overlay<B> {
    fn put_entry(&mut self, node: &NodeId, key: &[u8], entry: &Entry) -> Result<()> {
        let recording = self.journal.as_ref().is_some_and(|j| !j.fresh);
        if !recording {
            // Replaces in place when the key is there: no new key to build.
            match with_key(node, key, |k| self.entries.get_mut(k)) {
                Some(e) => *e = entry.clone(),
                None => {
                    self.entries.insert(make_key(node, key), entry.clone());
                }
            }
            return Ok(());
        }
        let k = make_key(node, key);
        let old = self.entries.insert(k.clone(), entry.clone());
        if let Some(j) = &mut self.journal {
            j.entries.entry(k).or_insert(old);
        }
        Ok(())
    }

    fn put_visible_count(&mut self, node: &NodeId, count: u64) -> Result<()> {
        let old = self.counts.insert(*node, count);
        if let Some(j) = &mut self.journal
            && !j.fresh
        {
            j.counts.entry(*node).or_insert(old);
        }
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
