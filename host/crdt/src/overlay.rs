//! A write buffer over a read-only state.
//!
//! While a call runs, its writes go to an [`Overlay`] over a snapshot of the
//! committed state, so the call reads its own writes and nothing reaches the
//! store until the call has succeeded. Several calls in one commit batch share
//! one overlay; a [`checkpoint`](Overlay::checkpoint) before each call lets a
//! failing call be [rolled back](Overlay::rollback) without disturbing the
//! calls before it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::backend::{StateRead, StateWrite};
use crate::entry::Entry;
use crate::error::Result;
use crate::id::NodeId;

type Key = (NodeId, Vec<u8>);

/// Buffered writes over a base state.
#[derive(Debug)]
pub struct Overlay<B> {
    base: B,
    entries: BTreeMap<Key, Entry>,
    counts: HashMap<NodeId, u64>,
    journal: Option<Journal>,
}

/// Values the overlay held before the current checkpoint, for each key
/// touched since.
#[derive(Debug, Default)]
struct Journal {
    entries: HashMap<Key, Option<Entry>>,
    counts: HashMap<NodeId, Option<u64>>,
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

    /// Starts recording what to undo. Replaces any earlier checkpoint.
    pub fn checkpoint(&mut self) {
        self.journal = Some(Journal::default());
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
        match self.entries.get(&(*node, key.to_vec())) {
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
            Some(k) => Bound::Excluded((*node, k.to_vec())),
            None => Bound::Included((*node, Vec::new())),
        };
        let mut buffered = self
            .entries
            .range((start, Bound::Unbounded))
            .take_while(|((n, k), _)| n == node && upper.as_ref().is_none_or(|u| k <= u))
            .map(|((_, k), e)| (k.clone(), e.clone()))
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
        let k = (*node, key.to_vec());
        let old = self.entries.insert(k.clone(), entry.clone());
        if let Some(j) = &mut self.journal {
            j.entries.entry(k).or_insert(old);
        }
        Ok(())
    }

    fn put_visible_count(&mut self, node: &NodeId, count: u64) -> Result<()> {
        let old = self.counts.insert(*node, count);
        if let Some(j) = &mut self.journal {
            j.counts.entry(*node).or_insert(old);
        }
        Ok(())
    }
}
