//! A replica's whole state, as one node sends it to another that joins or
//! fell far behind.

use std::collections::{BTreeSet, HashSet};

use borsh::{BorshDeserialize, BorshSerialize};

use crate::backend::MemoryBackend;
use crate::delta::{DeltaId, Op, SignedDelta, VerifiedBatches};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::hlc::Hlc;
use crate::id::{Author, Hash};
use crate::limits::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// Every entry (joined into the receiver's, so nothing the receiver has is
/// lost), the ids of every delta folded into it, the sender's DAG heads,
/// and the signed deltas behind them that the sender holds: with all of
/// them, the receiver rebuilds the entries and takes nothing on the
/// sender's word (see [`StateSnapshot::provenance`]).
#[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
pub struct StateSnapshot {
    /// Every entry, as ops.
    pub ops: Vec<Op>,
    /// Every delta the state includes.
    pub deltas: Vec<DeltaId>,
    /// The sender's DAG heads.
    pub heads: Vec<DeltaId>,
    /// The sender's root hash (the receiver's equals it if it had nothing
    /// the sender lacked).
    pub root_hash: Hash,
    /// The state version (layout) of the sender's app: a receiver joins
    /// only a snapshot of its own layout.
    pub layout: u32,
    /// The signed deltas the state folds, as far as the sender holds them
    /// (none if they would not fit one message beside the entries: the
    /// receiver fetches them apart).
    pub bodies: Vec<SignedDelta>,
    /// The signed deltas the sender refused for good (among `deltas`, with
    /// no effect on the entries).
    pub refused: Vec<SignedDelta>,
}

/// What the signed deltas a snapshot carries can prove of its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Every delta it names came with its body, and every body it took
    /// names only parents among them: its entries must be exactly what the
    /// bodies taken give (through the migrations of the upgrades it
    /// crossed, for those written under an earlier layout).
    Complete,
    /// They cannot: the entries are the sender's word (why).
    Partial(String),
}

/// The ids of `deltas`, each verified as on the delta path (a batch's one
/// signature once for all its deltas), on every core: a large snapshot
/// carries a signature for each of thousands of deltas.
fn verified_ids(deltas: &[&SignedDelta]) -> Result<Vec<DeltaId>> {
    let verified = VerifiedBatches::holding(deltas.len());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = deltas.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let verified = &verified;
        let parts: Vec<_> = deltas
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|d| d.verify_with(verified))
                        .collect::<Result<Vec<DeltaId>>>()
                })
            })
            .collect();
        let mut ids = Vec::with_capacity(deltas.len());
        for part in parts {
            let part = part
                .join()
                .map_err(|_| Error::MalformedSnapshot("verifying its deltas failed".into()))?;
            ids.extend(part?);
        }
        Ok(ids)
    })
}

impl StateSnapshot {
    /// Every author its entries name: register writers, presence clocks'
    /// authors, counter slots' owners, authored elements' owners. Each must
    /// have been able to write the context (the receiver's governance says).
    pub fn authors(&self) -> BTreeSet<Author> {
        let mut out = BTreeSet::new();
        for op in &self.ops {
            match &op.entry {
                Entry::Register(r) => {
                    out.insert(r.stamp.author);
                }
                Entry::Presence(p) => {
                    out.extend(p.adds.iter().chain(p.removes.iter()).map(|(a, _)| *a));
                }
                Entry::Counter(_) => {
                    // `check` refuses a slot not keyed by a 32-byte key.
                    if let Ok(key) = <[u8; 32]>::try_from(op.key.as_slice()) {
                        out.insert(Author(key));
                    }
                }
                Entry::Authored(a) => {
                    out.insert(a.owner());
                    out.insert(a.register.stamp.author);
                }
            }
        }
        out
    }

    /// The ids of the deltas it carries with their bodies (taken or
    /// refused).
    pub fn carried(&self) -> HashSet<DeltaId> {
        self.bodies
            .iter()
            .chain(&self.refused)
            .map(|d| d.delta.id())
            .collect()
    }

    /// Whether its bodies can prove its entries (see [`Provenance`]).
    /// Assumes [`check_bodies`](Self::check_bodies) passed.
    pub fn provenance(&self) -> Provenance {
        let carried = self.carried();
        let without = self.deltas.iter().filter(|d| !carried.contains(d)).count();
        if without > 0 {
            return Provenance::Partial(format!(
                "{without} of its {} deltas came without their signed bodies (folded into a snapshot its sender joined, or too large to carry)",
                self.deltas.len()
            ));
        }
        // A refused delta's parents need not be known (it was refused
        // without them); a taken one's must.
        let orphan = self
            .bodies
            .iter()
            .flat_map(|d| d.delta.parents.iter())
            .any(|p| !carried.contains(p));
        if orphan {
            return Provenance::Partial("a delta names a parent it does not carry".into());
        }
        Provenance::Complete
    }

    /// Checks the bodies it carries, as the delta path checks a delta:
    /// each signed by its author, within the limits, its ops bound to it,
    /// of `ctx`, among the deltas it names, and carried once.
    pub fn check_bodies(&self, ctx: &crate::id::ContextId) -> Result<()> {
        let named: HashSet<&DeltaId> = self.deltas.iter().collect();
        let mut seen = HashSet::new();
        let all: Vec<&SignedDelta> = self.bodies.iter().chain(&self.refused).collect();
        for (d, id) in all.iter().zip(verified_ids(&all)?) {
            if d.delta.context != *ctx {
                return Err(Error::MalformedSnapshot(
                    "it carries a delta of another context".into(),
                ));
            }
            if !named.contains(&id) || !seen.insert(id) {
                return Err(Error::MalformedSnapshot(format!(
                    "it carries delta {id:?} twice, or without naming it"
                )));
            }
        }
        Ok(())
    }

    /// The root hash its bodies give, joined into an empty state, and the
    /// heads of their DAG (the refused ones apart: they have no effect).
    /// Entries join in any order alike (the receiver of a snapshot relies
    /// on it too), so no causal order is needed, nor trusted from the
    /// sender's clocks.
    pub fn rebuilt(&self) -> Result<(Hash, BTreeSet<DeltaId>)> {
        let heads = self.body_heads();
        let mut state = MemoryBackend::default();
        let mut changed = BTreeSet::new();
        crate::apply::join_ops(
            &mut state,
            self.bodies.iter().flat_map(|d| d.delta.ops.iter()),
            &mut changed,
        )?;
        Ok((crate::merkle::update(&mut state, changed)?, heads))
    }

    /// The heads of the DAG of the bodies it took.
    pub fn body_heads(&self) -> BTreeSet<DeltaId> {
        let mut heads: BTreeSet<DeltaId> = self.bodies.iter().map(|d| d.delta.id()).collect();
        for d in &self.bodies {
            for p in &d.delta.parents {
                heads.remove(p);
            }
        }
        heads
    }

    /// Every (author, clock) pair its entries carry: register writes,
    /// presence clocks, authored elements' creation and writes (a counter
    /// slot carries no clock).
    pub fn stamps(&self) -> impl Iterator<Item = (Author, Hlc)> + '_ {
        self.ops.iter().flat_map(|op| {
            let pairs: Vec<(Author, Hlc)> = match &op.entry {
                Entry::Register(r) => vec![(r.stamp.author, r.stamp.hlc)],
                Entry::Presence(p) => p
                    .adds
                    .iter()
                    .chain(p.removes.iter())
                    .map(|(a, t)| (*a, *t))
                    .collect(),
                Entry::Counter(_) => Vec::new(),
                Entry::Authored(a) => vec![
                    (a.created.author, a.created.hlc),
                    (a.register.stamp.author, a.register.stamp.hlc),
                ],
            };
            pairs
        })
    }

    /// Refuses a snapshot that could not be a replica's state, before any
    /// of it is joined: an entry over the limits a delta is held to, a
    /// clock after `latest` (the receiver's clock plus the drift it allows
    /// deltas), an authored element whose write is not its owner's or comes
    /// before its creation, heads that are not among its deltas, or a root
    /// that its own entries do not give.
    ///
    /// This is what can be checked without signatures: who wrote each
    /// entry is still the sender's word.
    pub fn check(&self, latest: Hlc) -> Result<()> {
        let bad = |why: String| Err(Error::MalformedSnapshot(why));
        for op in &self.ops {
            if op.key.len() > MAX_KEY_LEN {
                return Err(Error::KeyTooLong {
                    len: op.key.len(),
                    max: MAX_KEY_LEN,
                });
            }
            let (value, clocks): (Option<&Vec<u8>>, Vec<Hlc>) = match &op.entry {
                Entry::Register(r) => (r.value.as_ref(), vec![r.stamp.hlc]),
                Entry::Presence(p) => (
                    None,
                    p.adds
                        .iter()
                        .chain(p.removes.iter())
                        .map(|(_, t)| *t)
                        .collect(),
                ),
                Entry::Counter(_) => {
                    if op.key.len() != 32 {
                        return bad("a counter slot not keyed by its author's key".into());
                    }
                    (None, Vec::new())
                }
                Entry::Authored(a) => {
                    if a.register.stamp.author != a.owner() {
                        return bad("an authored element written by another member".into());
                    }
                    if a.created.hlc > a.register.stamp.hlc {
                        return bad("an authored element written before its creation".into());
                    }
                    (a.register.value.as_ref(), vec![a.register.stamp.hlc])
                }
            };
            if let Some(v) = value
                && v.len() > MAX_VALUE_LEN
            {
                return Err(Error::ValueTooLarge {
                    len: v.len(),
                    max: MAX_VALUE_LEN,
                });
            }
            if clocks.iter().any(|t| *t > latest) {
                return bad("an entry stamped past the receiver's clock and allowed drift".into());
            }
        }
        let deltas: HashSet<&DeltaId> = self.deltas.iter().collect();
        if self.heads.iter().any(|h| !deltas.contains(h)) {
            return bad("a head that is not among the snapshot's deltas".into());
        }
        let root = crate::apply::apply_ops(&mut MemoryBackend::default(), &self.ops)?;
        if root != self.root_hash {
            return bad("its entries do not give the root hash it names".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::Mutator;
    use crate::entry::{Register, Stamp};
    use crate::hlc::Clock;
    use crate::id::{Author, NodeId};

    fn at(millis: u64) -> Hlc {
        Hlc { millis, counter: 0 }
    }

    /// A snapshot of one map key written at 1 s, with its own root.
    fn snapshot() -> StateSnapshot {
        let mut ops = Vec::new();
        let mut state = MemoryBackend::default();
        let mut clock = Clock::default();
        Mutator::new(&mut state, Author([1; 32]), &mut clock, 1_000, &mut ops)
            .put_register(&NodeId::root("m"), b"k", b"v".to_vec())
            .unwrap();
        let root = crate::apply::apply_ops(&mut MemoryBackend::default(), &ops).unwrap();
        StateSnapshot {
            ops,
            deltas: vec![DeltaId([1; 32])],
            heads: vec![DeltaId([1; 32])],
            root_hash: root,
            layout: 1,
            ..StateSnapshot::default()
        }
    }

    #[test]
    fn a_snapshot_is_checked_before_anything_of_it_is_joined() {
        let good = snapshot();
        good.check(at(2_000)).unwrap();

        // A wrong root.
        let mut s = good.clone();
        s.root_hash = [9; 32];
        assert!(matches!(
            s.check(at(2_000)),
            Err(Error::MalformedSnapshot(_))
        ));
        // A stamp past the receiver's clock (and drift): it would win
        // every later write. Its root is right; the clock is what fails.
        assert!(matches!(
            good.check(at(500)),
            Err(Error::MalformedSnapshot(_))
        ));
        // A head it does not hold.
        let mut s = good.clone();
        s.heads.push(DeltaId([2; 32]));
        assert!(s.check(at(2_000)).is_err());
        // An authored element rewritten by someone else than its owner.
        let mut s = good.clone();
        s.ops.push(Op {
            node: NodeId::root("notes"),
            key: b"n".to_vec(),
            entry: Entry::Authored(crate::entry::Authored {
                created: Stamp {
                    hlc: at(1_000),
                    author: Author([1; 32]),
                },
                version: 1,
                register: Register {
                    stamp: Stamp {
                        hlc: at(1_500),
                        author: Author([2; 32]),
                    },
                    value: Some(b"x".to_vec()),
                },
            }),
        });
        s.root_hash = crate::apply::apply_ops(&mut MemoryBackend::default(), &s.ops).unwrap();
        assert!(matches!(
            s.check(at(2_000)),
            Err(Error::MalformedSnapshot(_))
        ));
        // A counter slot under another key than an author's.
        let mut s = good;
        s.ops.push(Op {
            node: NodeId::root("c"),
            key: b"short".to_vec(),
            entry: Entry::Counter(crate::entry::CounterSlot {
                increments: 5,
                decrements: 0,
            }),
        });
        assert!(s.check(at(2_000)).is_err());
    }
}
