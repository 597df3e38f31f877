//! The collection operations apps see, over any state.
//!
//! Reads are free functions over a [`StateRead`]. Writes go through a
//! [`Mutator`], which applies each op to the state right away (so the caller
//! reads its own writes) and records it for the delta.
//!
//! Layout of each collection kind under its node id:
//! - register: one [`Register`] entry at the empty key;
//! - map: a [`Presence`] entry per key; the value at a key is the collection
//!   at [`NodeId::child`] of that key;
//! - set: a [`Presence`] entry per element;
//! - vector: a [`Register`] entry per element, keyed by the [`Stamp`] of its
//!   push (so keys sort in push order); removal tombstones it;
//! - counter: a [`CounterSlot`] per author, keyed by the author's key;
//! - authored map: an [`Authored`] entry per key, holding the value;
//! - authored vector: an [`Authored`] entry per element, keyed like a
//!   vector's.

use crate::apply::join_into;
use crate::backend::{StateRead, StateWrite};
use crate::delta::Op;
use crate::entry::{Authored, Clocks, CounterSlot, Entry, Presence, Register, Stamp};
use crate::error::{Error, Result};
use crate::hlc::Clock;
use crate::id::{Author, NodeId};
use crate::limits::{MAX_KEY_LEN, MAX_VALUE_LEN};

const PAGE: usize = 256;

/// The value of a register.
pub fn register_get<S: StateRead + ?Sized>(s: &S, node: &NodeId) -> Result<Option<Vec<u8>>> {
    Ok(match s.entry(node, &[])? {
        Some(Entry::Register(r)) => r.value,
        _ => None,
    })
}

fn presence<S: StateRead + ?Sized>(s: &S, node: &NodeId, key: &[u8]) -> Result<Option<Presence>> {
    Ok(match s.entry(node, key)? {
        Some(Entry::Presence(p)) => Some(p),
        _ => None,
    })
}

/// Whether a map key or set element is present.
pub fn contains<S: StateRead + ?Sized>(s: &S, node: &NodeId, key: &[u8]) -> Result<bool> {
    Ok(presence(s, node, key)?.is_some_and(|p| p.is_present()))
}

/// Number of present keys, elements or vector items of a collection.
pub fn len<S: StateRead + ?Sized>(s: &S, node: &NodeId) -> Result<u64> {
    s.visible_count(node)
}

/// Visits visible entries of `node` in key order, after `after`, until `f`
/// returns false.
fn scan_visible<S: StateRead + ?Sized>(
    s: &S,
    node: &NodeId,
    after: Option<&[u8]>,
    mut f: impl FnMut(Vec<u8>, Entry) -> Result<bool>,
) -> Result<()> {
    let mut cursor = after.map(<[u8]>::to_vec);
    loop {
        let page = s.children(node, cursor.as_deref(), PAGE)?;
        let full = page.len() == PAGE;
        for (k, e) in page {
            cursor = Some(k.clone());
            if e.is_visible() && !f(k, e)? {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Present keys (or set elements) after `after`, at most `limit`.
pub fn keys<S: StateRead + ?Sized>(
    s: &S,
    node: &NodeId,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    scan_visible(s, node, after, |k, _| {
        out.push(k);
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// Present keys of a map with the values of the registers under them, after
/// `after`, at most `limit`. Keys whose value is not a set register are
/// skipped.
pub fn register_entries<S: StateRead + ?Sized>(
    s: &S,
    map: &NodeId,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    scan_visible(s, map, after, |k, _| {
        if let Some(v) = register_get(s, &map.child(&k))? {
            out.push((k, v));
        }
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// The key and element at `index` of a vector.
fn vector_nth<S: StateRead + ?Sized>(
    s: &S,
    vector: &NodeId,
    index: u64,
) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut seen = 0u64;
    let mut found = None;
    scan_visible(s, vector, None, |k, e| {
        if seen == index {
            if let Entry::Register(Register { value: Some(v), .. }) = e {
                found = Some((k, v));
            }
            return Ok(false);
        }
        seen += 1;
        Ok(true)
    })?;
    Ok(found)
}

/// The element at `index` of a vector.
pub fn vector_get<S: StateRead + ?Sized>(
    s: &S,
    vector: &NodeId,
    index: u64,
) -> Result<Option<Vec<u8>>> {
    if index >= s.visible_count(vector)? {
        return Ok(None);
    }
    Ok(vector_nth(s, vector, index)?.map(|(_, v)| v))
}

/// Up to `limit` elements of a vector from index `start`.
pub fn vector_range<S: StateRead + ?Sized>(
    s: &S,
    vector: &NodeId,
    start: u64,
    limit: usize,
) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut index = 0u64;
    scan_visible(s, vector, None, |_, e| {
        if index >= start
            && let Entry::Register(Register { value: Some(v), .. }) = e
        {
            out.push(v);
        }
        index += 1;
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// The authored element at `key`, visible or not.
pub fn authored_get<S: StateRead + ?Sized>(
    s: &S,
    node: &NodeId,
    key: &[u8],
) -> Result<Option<Authored>> {
    Ok(match s.entry(node, key)? {
        Some(Entry::Authored(a)) => Some(a),
        _ => None,
    })
}

/// Visible authored elements after `after` with their keys, at most
/// `limit`: an authored map's entries.
pub fn authored_entries<S: StateRead + ?Sized>(
    s: &S,
    node: &NodeId,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Authored)>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    scan_visible(s, node, after, |k, e| {
        if let Entry::Authored(a) = e {
            out.push((k, a));
        }
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// Up to `limit` visible authored elements from index `start`, with their
/// keys: an authored vector's range.
pub fn authored_range<S: StateRead + ?Sized>(
    s: &S,
    vector: &NodeId,
    start: u64,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Authored)>> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut index = 0u64;
    scan_visible(s, vector, None, |k, e| {
        if index >= start
            && let Entry::Authored(a) = e
        {
            out.push((k, a));
        }
        index += 1;
        Ok(out.len() < limit)
    })?;
    Ok(out)
}

/// A counter's value: all increments minus all decrements, saturated to i64.
pub fn counter_value<S: StateRead + ?Sized>(s: &S, counter: &NodeId) -> Result<i64> {
    let mut total: i128 = 0;
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let page = s.children(counter, cursor.as_deref(), PAGE)?;
        let full = page.len() == PAGE;
        for (k, e) in page {
            if let Entry::Counter(slot) = e {
                total = total.saturating_add(slot.net());
            }
            cursor = Some(k);
        }
        if !full {
            break;
        }
    }
    Ok(i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX }))
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLong {
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLarge {
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

/// Where a [`Mutator`]'s ops go.
pub enum Ops<'a> {
    /// Kept, for the delta.
    Record(&'a mut Vec<Op>),
    /// Only counted: the state written to keeps every write whole and is
    /// what gets stored (a migration's overlay), so keeping the ops as well
    /// would hold each write twice.
    Count(&'a mut usize),
}

/// Writes to a state on behalf of one author, recording the ops.
pub struct Mutator<'a, S: StateWrite + ?Sized> {
    state: &'a mut S,
    author: Author,
    clock: &'a mut Clock,
    wall_millis: u64,
    ops: Ops<'a>,
}

impl<'a, S: StateWrite + ?Sized> Mutator<'a, S> {
    /// A mutator that stamps writes with `clock` (given the wall clock) and
    /// appends their ops to `ops`.
    pub fn new(
        state: &'a mut S,
        author: Author,
        clock: &'a mut Clock,
        wall_millis: u64,
        ops: &'a mut Vec<Op>,
    ) -> Self {
        Self::with_ops(state, author, clock, wall_millis, Ops::Record(ops))
    }

    /// A mutator whose ops go to `ops`.
    pub fn with_ops(
        state: &'a mut S,
        author: Author,
        clock: &'a mut Clock,
        wall_millis: u64,
        ops: Ops<'a>,
    ) -> Self {
        Mutator {
            state,
            author,
            clock,
            wall_millis,
            ops,
        }
    }

    /// The state, for reads.
    pub fn state(&self) -> &S {
        self.state
    }

    fn stamp(&mut self) -> Stamp {
        Stamp {
            hlc: self.clock.tick(self.wall_millis),
            author: self.author,
        }
    }

    fn emit(&mut self, node: NodeId, key: &[u8], entry: Entry) -> Result<()> {
        let current = self.state.entry(&node, key)?;
        self.emit_over(node, key, entry, current)
    }

    /// [`emit`](Self::emit) at an address just read as `current`.
    fn emit_over(
        &mut self,
        node: NodeId,
        key: &[u8],
        entry: Entry,
        current: Option<Entry>,
    ) -> Result<()> {
        join_into(self.state, &node, key, &entry, current)?;
        match &mut self.ops {
            Ops::Record(ops) => ops.push(Op {
                node,
                key: key.to_vec(),
                entry,
            }),
            Ops::Count(n) => **n += 1,
        }
        Ok(())
    }

    fn present(&mut self) -> Presence {
        let hlc = self.clock.tick(self.wall_millis);
        Presence {
            adds: Clocks::one(self.author, hlc),
            removes: Clocks::default(),
        }
    }

    /// Sets (or with `None`, clears) a register.
    pub fn register_set(&mut self, node: &NodeId, value: Option<Vec<u8>>) -> Result<()> {
        if let Some(v) = &value {
            check_value(v)?;
        }
        let stamp = self.stamp();
        self.emit(*node, &[], Entry::Register(Register { stamp, value }))
    }

    /// Marks `key` present (add-wins: a concurrent remove does not undo it).
    /// Returns whether it was absent.
    pub fn insert_key(&mut self, node: &NodeId, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        let current = self.state.entry(node, key)?;
        let was = matches!(&current, Some(Entry::Presence(p)) if p.is_present());
        let p = self.present();
        self.emit_over(*node, key, Entry::Presence(p), current)?;
        Ok(!was)
    }

    /// Removes a map key (clearing the value under it as observed) or a set
    /// element. Returns whether it was present.
    pub fn remove_key(&mut self, node: &NodeId, key: &[u8]) -> Result<bool> {
        check_key(key)?;
        let current = self.state.entry(node, key)?;
        let removal = match &current {
            Some(Entry::Presence(p)) if p.is_present() => p.removal(),
            _ => return Ok(false),
        };
        self.emit_over(*node, key, Entry::Presence(removal), current)?;
        self.clear(&node.child(key))?;
        Ok(true)
    }

    /// Inserts `key` into a map and sets the register under it. Returns the
    /// previous register value if the key was present.
    pub fn put_register(
        &mut self,
        map: &NodeId,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        check_value(&value)?;
        let child = map.child(key);
        // Each address is read once: the key's presence, the register
        // under it; the writes join into what was read.
        let current = self.state.entry(map, key)?;
        let present = matches!(&current, Some(Entry::Presence(p)) if p.is_present());
        let child_current = self.state.entry(&child, &[])?;
        let old = match &child_current {
            Some(Entry::Register(r)) if present => r.value.clone(),
            _ => None,
        };
        let p = self.present();
        self.emit_over(*map, key, Entry::Presence(p), current)?;
        let stamp = self.stamp();
        let value = Entry::Register(Register {
            stamp,
            value: Some(value),
        });
        self.emit_over(child, &[], value, child_current)?;
        Ok(old)
    }

    /// Appends to a vector.
    pub fn vector_push(&mut self, vector: &NodeId, value: Vec<u8>) -> Result<()> {
        check_value(&value)?;
        let stamp = self.stamp();
        self.emit(
            *vector,
            &stamp.to_sortable_bytes(),
            Entry::Register(Register {
                stamp,
                value: Some(value),
            }),
        )
    }

    fn vector_write(
        &mut self,
        vector: &NodeId,
        index: u64,
        value: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        if let Some(v) = &value {
            check_value(v)?;
        }
        let len = self.state.visible_count(vector)?;
        let Some((key, old)) = (if index < len {
            vector_nth(self.state, vector, index)?
        } else {
            None
        }) else {
            return Err(Error::OutOfRange { index, len });
        };
        let stamp = self.stamp();
        self.emit(*vector, &key, Entry::Register(Register { stamp, value }))?;
        Ok(old)
    }

    /// Replaces the element at `index`; returns the old one.
    pub fn vector_set(&mut self, vector: &NodeId, index: u64, value: Vec<u8>) -> Result<Vec<u8>> {
        self.vector_write(vector, index, Some(value))
    }

    /// Removes the element at `index`; returns it.
    pub fn vector_remove(&mut self, vector: &NodeId, index: u64) -> Result<Vec<u8>> {
        self.vector_write(vector, index, None)
    }

    /// Removes the last element, if any.
    pub fn vector_pop(&mut self, vector: &NodeId) -> Result<Option<Vec<u8>>> {
        match self.state.visible_count(vector)? {
            0 => Ok(None),
            n => self.vector_remove(vector, n - 1).map(Some),
        }
    }

    /// Refuses a write to `current` unless this mutator's author owns it.
    fn own(&self, current: &Authored) -> Result<()> {
        if current.owner() != self.author {
            return Err(Error::NotOwner {
                owner: hex(&current.owner().0),
            });
        }
        Ok(())
    }

    /// Writes `value` (`None` removes it) at `key` of an authored map,
    /// under state version `version`: creates the element, owned by this
    /// author, or rewrites it if this author owns it. Returns the value
    /// it replaced, if it was visible.
    pub fn authored_put(
        &mut self,
        node: &NodeId,
        key: &[u8],
        value: Option<Vec<u8>>,
        version: u32,
    ) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        if let Some(v) = &value {
            check_value(v)?;
        }
        let current = self.state.entry(node, key)?;
        let (created, old) = match &current {
            Some(Entry::Authored(a)) => {
                self.own(a)?;
                (a.created, a.register.value.clone())
            }
            _ if value.is_none() => return Ok(None),
            _ => (self.stamp(), None),
        };
        let stamp = self.stamp();
        let entry = Entry::Authored(Authored {
            created,
            version,
            register: Register { stamp, value },
        });
        self.emit_over(*node, key, entry, current)?;
        Ok(old)
    }

    /// Appends an element owned by this author to an authored vector.
    pub fn authored_push(&mut self, vector: &NodeId, value: Vec<u8>, version: u32) -> Result<()> {
        check_value(&value)?;
        let stamp = self.stamp();
        self.emit(
            *vector,
            &stamp.to_sortable_bytes(),
            Entry::Authored(Authored {
                created: stamp,
                version,
                register: Register {
                    stamp,
                    value: Some(value),
                },
            }),
        )
    }

    /// Rewrites (`None` removes) the element at `index` of an authored
    /// vector, if this author owns it; returns the old value.
    pub fn authored_write_at(
        &mut self,
        vector: &NodeId,
        index: u64,
        value: Option<Vec<u8>>,
        version: u32,
    ) -> Result<Vec<u8>> {
        let len = self.state.visible_count(vector)?;
        let found = if index < len {
            authored_range(self.state, vector, index, 1)?.pop()
        } else {
            None
        };
        let Some((key, current)) = found else {
            return Err(Error::OutOfRange { index, len });
        };
        let old = current.register.value.clone().unwrap_or_default();
        self.own(&current)?;
        self.authored_put(vector, &key, value, version)?;
        Ok(old)
    }

    /// Adds `delta` (positive or negative) to a counter; returns the new value.
    pub fn counter_add(&mut self, counter: &NodeId, delta: i128) -> Result<i64> {
        let key = self.author.0;
        let current = self.state.entry(counter, &key)?;
        let mut slot = match &current {
            Some(Entry::Counter(s)) => *s,
            _ => CounterSlot::default(),
        };
        let magnitude = u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX);
        if delta >= 0 {
            slot.increments = slot.increments.saturating_add(magnitude);
        } else {
            slot.decrements = slot.decrements.saturating_add(magnitude);
        }
        self.emit_over(*counter, &key, Entry::Counter(slot), current)?;
        counter_value(self.state, counter)
    }

    /// Clears everything this replica sees in the collection at `node`, and
    /// in the collections nested under it, whatever their kind: registers and
    /// vector items are tombstoned, keys and elements removed, counters
    /// brought back to zero by this author's slot. Concurrent writes on other
    /// replicas survive.
    pub fn clear(&mut self, node: &NodeId) -> Result<()> {
        // An explicit stack: nesting depth is app-controlled.
        let mut stack = vec![*node];
        while let Some(node) = stack.pop() {
            let mut cursor: Option<Vec<u8>> = None;
            let mut counter_total: Option<i128> = None;
            loop {
                let page = self.state.children(&node, cursor.as_deref(), PAGE)?;
                let full = page.len() == PAGE;
                for (key, entry) in page {
                    // The page holds each entry as it is: the writes join
                    // into it without reading it again.
                    match &entry {
                        Entry::Register(r) => {
                            if r.value.is_some() {
                                let stamp = self.stamp();
                                let tombstone = Entry::Register(Register { stamp, value: None });
                                self.emit_over(node, &key, tombstone, Some(entry))?;
                            }
                        }
                        Entry::Presence(p) => {
                            if p.is_present() {
                                let removal = Entry::Presence(p.removal());
                                self.emit_over(node, &key, removal, Some(entry))?;
                            }
                            stack.push(node.child(&key));
                        }
                        Entry::Counter(slot) => {
                            *counter_total.get_or_insert(0) += slot.net();
                        }
                        // Only an owner removes its elements: the others'
                        // stay, as a concurrent write would.
                        Entry::Authored(a) => {
                            if a.owner() == self.author && a.register.value.is_some() {
                                let removed = Entry::Authored(Authored {
                                    created: a.created,
                                    version: a.version,
                                    register: Register {
                                        stamp: self.stamp(),
                                        value: None,
                                    },
                                });
                                self.emit_over(node, &key, removed, Some(entry))?;
                            }
                        }
                    }
                    cursor = Some(key);
                }
                if !full {
                    break;
                }
            }
            if let Some(total) = counter_total.filter(|t| *t != 0) {
                self.counter_add(&node, -total)?;
            }
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
