//! The lattices entries are made of. Each `join` is commutative, associative
//! and idempotent; that is the whole convergence argument.

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
    pub adds: Clocks,
    /// Latest observed-and-removed insert per author.
    pub removes: Clocks,
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
            adds: Clocks::default(),
            removes: self.adds.clone(),
        }
    }

    fn join(&mut self, other: &Presence) -> bool {
        self.adds.join_max(&other.adds) | self.removes.join_max(&other.removes)
    }
}

/// One clock per author, in author order: what a `BTreeMap<Author, Hlc>`
/// would hold, encoded the same way (a `u32` count, then the pairs in
/// author order), but in one allocation the size of its pairs. Nearly
/// every presence has one author, and a B-tree node is sized for eleven:
/// over 500 bytes for each map key written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clocks(Vec<(Author, Hlc)>);

impl Clocks {
    /// `author`'s clock alone.
    pub fn one(author: Author, hlc: Hlc) -> Self {
        Clocks(vec![(author, hlc)])
    }

    /// `author`'s clock, if any.
    pub fn get(&self, author: &Author) -> Option<&Hlc> {
        self.0
            .binary_search_by(|(a, _)| a.cmp(author))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Sets `author`'s clock; returns the one it replaced.
    pub fn insert(&mut self, author: Author, hlc: Hlc) -> Option<Hlc> {
        match self.0.binary_search_by(|(a, _)| a.cmp(&author)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, hlc)),
            Err(i) => {
                self.0.insert(i, (author, hlc));
                None
            }
        }
    }

    /// Each author with its clock, in author order.
    pub fn iter(&self) -> impl Iterator<Item = (&Author, &Hlc)> {
        self.0.iter().map(|(a, t)| (a, t))
    }

    /// How many authors have a clock.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no author has a clock.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the later clock of each author; returns whether any changed.
    fn join_max(&mut self, from: &Clocks) -> bool {
        let mut changed = false;
        for (a, t) in &from.0 {
            match self.0.binary_search_by(|(x, _)| x.cmp(a)) {
                Ok(i) if self.0[i].1 >= *t => {}
                Ok(i) => {
                    self.0[i].1 = *t;
                    changed = true;
                }
                Err(i) => {
                    self.0.insert(i, (*a, *t));
                    changed = true;
                }
            }
        }
        changed
    }
}

impl FromIterator<(Author, Hlc)> for Clocks {
    /// As a `BTreeMap` collects: in author order, the last clock of an
    /// author repeated winning.
    fn from_iter<I: IntoIterator<Item = (Author, Hlc)>>(iter: I) -> Self {
        let mut pairs: Vec<(Author, Hlc)> = iter.into_iter().collect();
        // Stable, so that of equal authors the later pair stays later.
        pairs.sort_by_key(|p| p.0);
        let mut out: Vec<(Author, Hlc)> = Vec::with_capacity(pairs.len());
        for (a, t) in pairs {
            match out.last_mut() {
                Some(last) if last.0 == a => last.1 = t,
                _ => out.push((a, t)),
            }
        }
        Clocks(out)
    }
}

impl BorshSerialize for Clocks {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        // The encoding of a `BTreeMap<Author, Hlc>`: entries and hashes
        // stay byte for byte what they were.
        let len = u32::try_from(self.0.len()).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "too many authors")
        })?;
        len.serialize(writer)?;
        for (a, t) in &self.0 {
            a.serialize(writer)?;
            t.serialize(writer)?;
        }
        Ok(())
    }
}

impl BorshDeserialize for Clocks {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        // As borsh reads a `BTreeMap`: any order, normalised on the way in.
        let pairs = Vec::<(Author, Hlc)>::deserialize_reader(reader)?;
        Ok(pairs.into_iter().collect())
    }
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

/// An element of an authored map or vector: it belongs to the member that
/// created it, and only that member writes it (receivers refuse an op on
/// one that its delta's author does not own; see `Delta::validate`).
///
/// Of two concurrent creations at one address the earlier (by stamp, then
/// author) owns it; the owner's writes then join last-writer-wins. A
/// removed element stays its owner's: the tombstone keeps the creation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Authored {
    /// When the element was created, and by whom: its owner.
    pub created: Stamp,
    /// The app's state version its value was written under: an element
    /// older than the running state version waits for its owner to
    /// rewrite it.
    pub version: u32,
    /// The owner's latest write; `None` once removed.
    pub register: Register,
}

impl Authored {
    /// The member that owns the element.
    pub fn owner(&self) -> Author {
        self.created.author
    }

    fn join(&mut self, other: &Authored) -> bool {
        // A maximum in one total order, so a lattice: the earliest
        // creation, then the latest write of it.
        let newer = |a: &Authored| (a.register.stamp, a.version, a.register.value.clone());
        let take = match other.created.cmp(&self.created) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => newer(other) > newer(self),
        };
        if take {
            *self = other.clone();
        }
        take
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
    /// An element of an authored map or vector.
    Authored(Authored),
}

impl Entry {
    fn rank(&self) -> u8 {
        match self {
            Entry::Register(_) => 0,
            Entry::Presence(_) => 1,
            Entry::Counter(_) => 2,
            Entry::Authored(_) => 3,
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
            (Entry::Authored(a), Entry::Authored(b)) => a.join(b),
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
            Entry::Authored(a) => a.register.value.is_some(),
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
    fn clocks_encode_and_decode_as_a_btreemap_does() {
        use std::collections::BTreeMap;
        let t = |ms| Hlc {
            millis: ms,
            counter: 0,
        };
        // Out of order and with a repeated author, as a hostile peer
        // might send: both types read it the same way.
        let raw: Vec<(Author, Hlc)> = vec![
            (Author([3; 32]), t(1)),
            (Author([1; 32]), t(2)),
            (Author([3; 32]), t(5)),
        ];
        let bytes = borsh::to_vec(&raw).unwrap();
        let map: BTreeMap<Author, Hlc> = borsh::from_slice(&bytes).unwrap();
        let clocks: Clocks = borsh::from_slice(&bytes).unwrap();
        assert_eq!(
            borsh::to_vec(&map).unwrap(),
            borsh::to_vec(&clocks).unwrap()
        );
        assert_eq!(clocks.len(), 2);
        assert_eq!(clocks.get(&Author([3; 32])), Some(&t(5)));
        let mut joined = Clocks::one(Author([2; 32]), t(9));
        assert!(joined.join_max(&clocks));
        assert!(!joined.join_max(&clocks));
        let authors: Vec<u8> = joined.iter().map(|(a, _)| a.0[0]).collect();
        assert_eq!(authors, vec![1, 2, 3]);
    }

    fn authored(created: Stamp, written: Stamp, value: Option<&[u8]>) -> Entry {
        Entry::Authored(Authored {
            created,
            version: 1,
            register: Register {
                stamp: written,
                value: value.map(<[u8]>::to_vec),
            },
        })
    }

    #[test]
    fn authored_entries_keep_their_first_creator_whatever_the_order() {
        // Two members create the same key concurrently; the first owner
        // then rewrites and removes it. Every order joins to one state.
        let a1 = authored(st(1, 1), st(1, 1), Some(b"a"));
        let b = authored(st(2, 2), st(2, 2), Some(b"b"));
        let a2 = authored(st(1, 1), st(5, 1), Some(b"a2"));
        let gone = authored(st(1, 1), st(6, 1), None);
        let all = [a1, b, a2, gone.clone()];
        let mut results = Vec::new();
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 1, 3, 0]] {
            let mut x = all[order[0]].clone();
            for i in &order[1..] {
                x.join(&all[*i]);
            }
            // Idempotent.
            assert!(!x.join(&all[order[3]]));
            results.push(x);
        }
        assert!(results.iter().all(|r| *r == gone));
        assert!(!gone.is_visible());
        let Entry::Authored(g) = gone else {
            unreachable!()
        };
        assert_eq!(g.owner(), Author([1; 32]));
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
