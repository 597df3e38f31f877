//! Proving a snapshot's entries from the signed deltas it carries. A
//! sender that holds every delta behind its state sends them; the receiver
//! judges each as the delta path would, rebuilds the state from those it
//! takes and compares: entries one of them did not write (a forged value
//! under another author's stamp, a far-future clock), ids with no delta
//! behind them, heads that are not the deltas' own, are all refused. A
//! sender that holds only some (it joined a snapshot itself before
//! snapshots carried them, its state crossed a migration, or they would not
//! fit one message) cannot prove its entries: they are its word, checked as
//! far as they can be without signatures (`StateSnapshot::check`).

use mero_crdt::{ContextId, DeltaId, Hash, Hlc, Provenance, SignedDelta, StateSnapshot};

use super::frontier::Lineage;
use super::session::{Authority, DagView, Verdict, ViewError, verdicts};

/// What the deltas a snapshot carries prove of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Its entries are exactly what the signed deltas this node takes give.
    Proven,
    /// It does not carry what could prove it (why): its entries are its
    /// sender's word.
    Unproven(String),
    /// It is not taken yet, through no fault of the sender (why): the
    /// deltas name governance not here yet, or the sender and this node
    /// judge a removed member's delta differently until one of them heals.
    NotYet(String),
    /// It is false (why): its sender is not to be asked first again.
    Forged(String),
}

/// Proves `snapshot` of `ctx` from the deltas it carries, judged by
/// `authority` with nothing else known (they are a whole history); none
/// may be stamped after `latest` (this node's clock and the drift deltas
/// are allowed).
pub fn prove(
    ctx: &ContextId,
    snapshot: &StateSnapshot,
    latest: Hlc,
    authority: &Authority<'_>,
) -> Proof {
    if let Err(e) = snapshot.check_bodies(ctx) {
        return Proof::Forged(e.to_string());
    }
    if snapshot
        .bodies
        .iter()
        .chain(&snapshot.refused)
        .any(|d| d.delta.hlc > latest)
    {
        return Proof::Forged(
            "it carries a delta stamped past this node's clock and the drift allowed".into(),
        );
    }
    if let Provenance::Partial(why) = snapshot.provenance() {
        return Proof::Unproven(why);
    }
    let carried: Vec<SignedDelta> = snapshot
        .bodies
        .iter()
        .chain(&snapshot.refused)
        .cloned()
        .collect();
    let taken = snapshot.bodies.len();
    let judged = verdicts(ctx, &carried, &Nothing, |_| None, authority);
    for (i, verdict) in judged.into_iter().enumerate() {
        let sender_took = i < taken;
        match (verdict, sender_took) {
            (Verdict::Take, true) | (Verdict::RefuseForGood(_), false) => {}
            (Verdict::Refuse(why), _) => {
                return Proof::Forged(format!("it carries a delta the delta path refuses: {why}"));
            }
            (Verdict::Later(why), _) => return Proof::NotYet(why),
            (Verdict::Take, false) => {
                return Proof::NotYet("its sender refused for good a delta this node takes".into());
            }
            (Verdict::RefuseForGood(why), true) => {
                return Proof::NotYet(format!(
                    "its sender took a delta this node refuses for good ({why}); it has not healed yet"
                ));
            }
        }
    }
    let (root, heads) = match snapshot.rebuilt() {
        Ok(r) => r,
        Err(e) => return Proof::Forged(e.to_string()),
    };
    if root != snapshot.root_hash {
        return Proof::Forged(format!(
            "its entries are not what the signed deltas it carries give (they give root {}, it names {})",
            hex::encode(root),
            hex::encode(snapshot.root_hash)
        ));
    }
    let named: std::collections::BTreeSet<DeltaId> = snapshot.heads.iter().copied().collect();
    if named != heads {
        return Proof::Forged("its heads are not the heads of the deltas it carries".into());
    }
    Proof::Proven
}

/// A replica that holds nothing: a history is judged on its own.
struct Nothing;

impl DagView for Nothing {
    fn has(&self, _: &DeltaId) -> Result<bool, ViewError> {
        Ok(false)
    }
    fn governance(&self, _: &DeltaId) -> Result<Option<Vec<[u8; 32]>>, ViewError> {
        Ok(None)
    }
    fn lineage(&self, _: &DeltaId) -> Result<Lineage, ViewError> {
        Ok(Lineage::Unknown)
    }
    fn heads(&self) -> Result<Vec<DeltaId>, ViewError> {
        Ok(Vec::new())
    }
    fn root(&self) -> Result<Hash, ViewError> {
        Ok([0; 32])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]
    use ed25519_dalek::SigningKey;
    use mero_crdt::{Author, Delta, Entry, MemoryBackend, NodeId, Op, Register, Stamp};

    use super::*;
    use crate::governance::Denial;

    const CTX: ContextId = ContextId([7; 32]);
    /// This node's clock plus the drift allowed.
    const LATEST: Hlc = Hlc {
        millis: 10_000,
        counter: 0,
    };

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn author(n: u8) -> Author {
        Author(key(n).verifying_key().to_bytes())
    }

    /// `value` written to register `name` by `who` at `millis`, on `parents`.
    fn write(
        who: u8,
        parents: &[&SignedDelta],
        name: &str,
        value: &str,
        millis: u64,
    ) -> SignedDelta {
        let hlc = Hlc { millis, counter: 0 };
        let op = Op {
            node: NodeId::root("r"),
            key: name.as_bytes().to_vec(),
            entry: Entry::Register(Register {
                stamp: Stamp {
                    hlc,
                    author: author(who),
                },
                value: Some(value.as_bytes().to_vec()),
            }),
        };
        let delta = Delta {
            version: 1,
            context: CTX,
            author: author(who),
            parents: parents.iter().map(|p| p.delta.id()).collect(),
            governance: vec![],
            layout: 1,
            hlc,
            ops: vec![op],
            events: vec![],
        };
        SignedDelta::sign(delta, &key(who))
    }

    /// What an honest sender holding `taken` (merged) and `refused` sends.
    fn snapshot(taken: &[&SignedDelta], refused: &[&SignedDelta]) -> StateSnapshot {
        let mut state = MemoryBackend::default();
        let mut root = mero_crdt::apply_ops(&mut state, &[]).unwrap();
        for d in taken {
            root = mero_crdt::apply_ops(&mut state, &d.delta.ops).unwrap();
        }
        let ops = state
            .entries
            .iter()
            .map(|((node, key), entry)| Op {
                node: *node,
                key: key.clone(),
                entry: entry.clone(),
            })
            .collect();
        let parents: Vec<DeltaId> = taken.iter().flat_map(|d| d.delta.parents.clone()).collect();
        StateSnapshot {
            ops,
            deltas: taken.iter().chain(refused).map(|d| d.delta.id()).collect(),
            heads: taken
                .iter()
                .map(|d| d.delta.id())
                .filter(|id| !parents.contains(id))
                .collect(),
            root_hash: root,
            layout: 1,
            bodies: taken.iter().map(|d| (*d).clone()).collect(),
            refused: refused.iter().map(|d| (*d).clone()).collect(),
        }
    }

    fn anyone(_: &Delta, _: &[Vec<[u8; 32]>]) -> Result<(), Denial> {
        Ok(())
    }

    /// Two writers, a genesis write and one on top of it by the other.
    fn history() -> (SignedDelta, SignedDelta) {
        let first = write(1, &[], "a", "one", 1_000);
        let second = write(2, &[&first], "b", "two", 2_000);
        (first, second)
    }

    #[test]
    fn a_snapshot_carrying_its_whole_history_is_proven() {
        let (first, second) = history();
        let mut s = snapshot(&[&first, &second], &[]);
        assert_eq!(prove(&CTX, &s, LATEST, &anyone), Proof::Proven);
        // In any order: nothing rests on the sender's ordering or clocks.
        s.bodies.reverse();
        assert_eq!(prove(&CTX, &s, LATEST, &anyone), Proof::Proven);
        // An empty state, as a context with no delta yet sends it.
        let empty = snapshot(&[], &[]);
        assert_eq!(empty.root_hash, [0; 32]);
        assert_eq!(prove(&CTX, &empty, LATEST, &anyone), Proof::Proven);
    }

    #[test]
    fn an_entry_no_signed_delta_wrote_is_found_forged_though_its_root_is_its_own() {
        let (first, second) = history();
        let mut s = snapshot(&[&first, &second], &[]);
        // The sender rewrites writer 2's value under writer 2's own stamp
        // (a writer, within the clock: every check without signatures
        // passes) and names the root its entries give.
        for op in &mut s.ops {
            if let Entry::Register(r) = &mut op.entry
                && r.stamp.author == author(2)
            {
                r.value = Some(b"forged".to_vec());
            }
        }
        s.root_hash = mero_crdt::apply_ops(&mut MemoryBackend::default(), &s.ops).unwrap();
        let later = Hlc {
            millis: 1 << 40,
            counter: 0,
        };
        s.check(later).unwrap();
        let Proof::Forged(why) = prove(&CTX, &s, LATEST, &anyone) else {
            panic!("a forged entry was proven")
        };
        assert!(why.contains("not what the signed deltas"), "{why}");
    }

    #[test]
    fn ids_without_bodies_leave_a_snapshot_unproven() {
        let (first, second) = history();
        let mut s = snapshot(&[&first, &second], &[]);
        // Folded into a snapshot its sender joined: known, no body.
        s.bodies.remove(0);
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone),
            Proof::Unproven(_)
        ));
        // An id with no delta behind it at all.
        let mut s = snapshot(&[&first, &second], &[]);
        s.deltas.push(DeltaId([5; 32]));
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone),
            Proof::Unproven(_)
        ));
        // Bodies of another layout: the state crossed a migration.
        let mut s = snapshot(&[&first, &second], &[]);
        s.layout = 2;
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone),
            Proof::Unproven(_)
        ));
    }

    #[test]
    fn bodies_that_are_not_signed_deltas_of_the_context_are_found_forged() {
        let (first, second) = history();
        // A body whose signature does not verify.
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies[1].signature[0] ^= 1;
        assert!(matches!(prove(&CTX, &s, LATEST, &anyone), Proof::Forged(_)));
        // A body rewritten after signing (its id changes: named nowhere).
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies[1].delta.ops.clear();
        assert!(matches!(prove(&CTX, &s, LATEST, &anyone), Proof::Forged(_)));
        // A delta of another context.
        let mut other = write(1, &[], "a", "one", 1_000);
        other.delta.context = ContextId([8; 32]);
        let other = SignedDelta::sign(other.delta, &key(1));
        let mut s = snapshot(&[&other], &[]);
        s.bodies[0] = other.clone();
        assert!(matches!(prove(&CTX, &s, LATEST, &anyone), Proof::Forged(_)));
        // Heads that are not the deltas' own.
        let mut s = snapshot(&[&first, &second], &[]);
        s.heads = vec![first.delta.id()];
        assert!(matches!(prove(&CTX, &s, LATEST, &anyone), Proof::Forged(_)));
        // A delta stamped past this node's clock and the drift allowed,
        // whose write would win every later one: refused on the delta path.
        let ahead = write(2, &[&first], "b", "ahead", LATEST.millis + 1);
        let s = snapshot(&[&first, &ahead], &[]);
        let Proof::Forged(why) = prove(&CTX, &s, LATEST, &anyone) else {
            panic!("a delta from the future was proven")
        };
        assert!(why.contains("past this node's clock"), "{why}");
    }

    #[test]
    fn a_delta_the_delta_path_refuses_is_found_forged_and_unknown_governance_waits() {
        let (first, second) = history();
        let s = snapshot(&[&first, &second], &[]);
        let not_writer_2 = |d: &Delta, _: &[Vec<[u8; 32]>]| {
            if d.author == author(2) {
                Err(Denial::Refused("not a writer".into()))
            } else {
                Ok(())
            }
        };
        let Proof::Forged(why) = prove(&CTX, &s, LATEST, &not_writer_2) else {
            panic!("a refused delta was proven")
        };
        assert!(why.contains("not a writer"), "{why}");
        let unknown = |_: &Delta, _: &[Vec<[u8; 32]>]| Err(Denial::NotYet("later".into()));
        assert_eq!(
            prove(&CTX, &s, LATEST, &unknown),
            Proof::NotYet("later".into())
        );
    }

    #[test]
    fn a_removed_members_delta_is_proven_refused_only_where_both_refuse_it() {
        let (first, second) = history();
        // Writer 3 was removed with `first` as its accepted frontier: its
        // write on `second` is beside it.
        let late = write(3, &[&second], "c", "late", 3_000);
        let frontier = vec![first.delta.id().0];
        let removed = move |d: &Delta, _: &[Vec<[u8; 32]>]| {
            if d.author == author(3) {
                Err(Denial::BeforeFrontier(frontier.clone()))
            } else {
                Ok(())
            }
        };
        // The sender refused it for good too, and kept it apart.
        let s = snapshot(&[&first, &second], &[&late]);
        assert_eq!(prove(&CTX, &s, LATEST, &removed), Proof::Proven);
        // A sender that merged it has not healed: not taken yet.
        let s = snapshot(&[&first, &second, &late], &[]);
        assert!(matches!(
            prove(&CTX, &s, LATEST, &removed),
            Proof::NotYet(_)
        ));
        // One that refused a delta this node takes.
        let s = snapshot(&[&first], &[&second]);
        assert!(matches!(prove(&CTX, &s, LATEST, &anyone), Proof::NotYet(_)));
    }
}
