//! The lattices entries are made of. Each `join` is commutative, associative
//! and idempotent; that is the whole convergence argument.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::hlc::Hlc;
use crate::id::Author;

/// Who wrote when: a timestamp made unique by its author.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize,
)]
pub struct Stamp {
    /// When.
    pub hlc: Hlc,
    /// Who.
    pub author: Author,
}

impl Stamp {
    /// Bytes that sort like the stamp: used as vector positions.
    pub fn to_sortable_bytes(self) -> [u8; 44] {
        let mut out = [0; 44];
        out[..12].copy_from_slice(&self.hlc.to_sortable_bytes());
        out[12..].copy_from_slice(&self.author.0);
        out
    }
}

/// A last-writer-wins register. `None` is a cleared (tombstoned) value.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Register {
    /// The write that produced this value.
    pub stamp: Stamp,
    /// The value, or `None` once cleared.
    pub value: Option<Vec<u8>>,
}

impl Register {
    fn join(&mut self, other: &Register) -> bool {
        // Ties on the stamp only happen with a misbehaving author; break them
        // by value so the result is still the same everywhere.
        if (other.stamp, &other.value) > (self.stamp, &self.value) {
            *self = other.clone();
            true
        } else {
            false
        }
    }
}

/// Add-wins presence of a map key or set element.
///
/// For each author, `adds` holds the clock of its latest insert and `removes`
/// the latest of its inserts that some remove observed. The element is present
/// if any author has an insert no remove observed. Because an author's clock
/// only grows, one timestamp per author is enough: space is bounded by the
/// number of authors, not the number of updates.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Presence {
    /// Latest insert per author.
    pub adds: BTreeMap<Author, Hlc>,
    /// Latest observed-and-removed insert per author.
    pub removes: BTreeMap<Author, Hlc>,
}

impl Presence {
    /// Whether the element is present.
    pub fn is_present(&self) -> bool {
        self.adds
            .iter()
            .any(|(a, t)| self.removes.get(a).is_none_or(|r| r < t))
    }

    /// The state a remove by an observer of `self` contributes.
    pub fn removal(&self) -> Presence {
        Presence {
            adds: BTreeMap::new(),
            removes: self.adds.clone(),
        }
    }

    fn join(&mut self, other: &Presence) -> bool {
        join_max(&mut self.adds, &other.adds) | join_max(&mut self.removes, &other.removes)
    }
}

fn join_max(into: &mut BTreeMap<Author, Hlc>, from: &BTreeMap<Author, Hlc>) -> bool {
    let mut changed = false;
    for (a, t) in from {
        match into.get_mut(a) {
            Some(cur) if *cur >= *t => {}
            Some(cur) => {
                *cur = *t;
                changed = true;
            }
            None => {
                into.insert(*a, *t);
                changed = true;
            }
        }
    }
    changed
}

/// One author's share of a counter: totals of its increments and decrements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CounterSlot {
    /// Sum of the author's increments.
    pub increments: u64,
    /// Sum of the author's decrements.
    pub decrements: u64,
}

impl CounterSlot {
    fn join(&mut self, other: &CounterSlot) -> bool {
        let before = *self;
        self.increments = self.increments.max(other.increments);
        self.decrements = self.decrements.max(other.decrements);
        *self != before
    }

    /// This slot's contribution to the counter's value.
    pub fn net(&self) -> i128 {
        i128::from(self.increments) - i128::from(self.decrements)
    }
}

/// The state of one entry.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Entry {
    /// A register value, or a vector element.
    Register(Register),
    /// A map key or set element.
    Presence(Presence),
    /// One author's slot of a counter.
    Counter(CounterSlot),
}

impl Entry {
    fn rank(&self) -> u8 {
        match self {
            Entry::Register(_) => 0,
            Entry::Presence(_) => 1,
            Entry::Counter(_) => 2,
        }
    }

    /// Joins `other` into `self`; returns whether `self` changed.
    ///
    /// Entries of different kinds at one address only arise from a buggy or
    /// hostile app; the higher-ranked kind wins outright, which keeps the join
    /// a lattice.
    pub fn join(&mut self, other: &Entry) -> bool {
        match (self, other) {
            (Entry::Register(a), Entry::Register(b)) => a.join(b),
            (Entry::Presence(a), Entry::Presence(b)) => a.join(b),
            (Entry::Counter(a), Entry::Counter(b)) => a.join(b),
            (this, other) => {
                if other.rank() > this.rank() {
                    *this = other.clone();
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether the entry counts towards its collection's length.
    pub fn is_visible(&self) -> bool {
        match self {
            Entry::Register(r) => r.value.is_some(),
            Entry::Presence(p) => p.is_present(),
            Entry::Counter(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(ms: u64, a: u8) -> Stamp {
        Stamp {
            hlc: Hlc {
                millis: ms,
                counter: 0,
            },
            author: Author([a; 32]),
        }
    }

    #[test]
    fn register_keeps_latest_and_ignores_older() {
        let mut r = Entry::Register(Register {
            stamp: st(2, 1),
            value: Some(b"b".to_vec()),
        });
        assert!(!r.join(&Entry::Register(Register {
            stamp: st(1, 9),
            value: Some(b"a".to_vec())
        })));
        assert!(r.join(&Entry::Register(Register {
            stamp: st(3, 0),
            value: None
        })));
        assert!(!r.is_visible());
    }

    #[test]
    fn concurrent_insert_survives_remove() {
        let a = Author([1; 32]);
        let b = Author([2; 32]);
        let mut base = Presence::default();
        base.adds.insert(
            a,
            Hlc {
                millis: 1,
                counter: 0,
            },
        );
        // b removes what it saw; a concurrently re-inserts.
        let removal = base.removal();
        let mut reinsert = Presence::default();
        reinsert.adds.insert(
            a,
            Hlc {
                millis: 2,
                counter: 0,
            },
        );
        let mut x = base.clone();
        x.join(&removal);
        assert!(!x.is_present());
        x.join(&reinsert);
        assert!(x.is_present());
        let mut y = base;
        y.join(&reinsert);
        y.join(&removal);
        assert_eq!(x, y);
        let _ = b;
    }

    #[test]
    fn mixed_kinds_resolve_the_same_both_ways() {
        let r = Entry::Register(Register {
            stamp: st(1, 1),
            value: Some(vec![1]),
        });
        let c = Entry::Counter(CounterSlot {
            increments: 3,
            decrements: 0,
        });
        let mut x = r.clone();
        x.join(&c);
        let mut y = c.clone();
        y.join(&r);
        assert_eq!(x, y);
    }
}
