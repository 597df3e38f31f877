//! Removals' accepted frontiers, without I/O. Whether a removed member's
//! delta is one its removal accepted: in the causal past of the DAG heads
//! the removal named (see [`Namespace::removals`]), walked over what a
//! node holds (its stored deltas, those waiting for parents, those being
//! judged with it). What a replica must do to hold nothing a removal
//! refuses ([`heal_plan`]), and which snapshots it may take meanwhile
//! ([`unheard_removal`], [`holds_writes_of`], [`covers`]).
//!
//! [`Namespace::removals`]: crate::governance::Namespace::removals

use std::collections::HashSet;

use mero_crdt::{Author, DeltaId, Entry, Hlc, Op, SignedDelta, StateSnapshot};

use crate::governance::{Namespace, OpId};

/// What a node knows of one delta, for a walk to its parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lineage {
    /// Held with its body: its parents.
    Held {
        /// Its parents.
        parents: Vec<DeltaId>,
    },
    /// Known only as folded into a joined snapshot: whatever is behind it
    /// was folded too, so known here already.
    Folded,
    /// Not known here.
    Unknown,
}

/// The deltas in the causal past of some heads (the heads included), as
/// far as a node holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Past {
    found: HashSet<DeltaId>,
    complete: bool,
    /// Whether the walk stopped at deltas folded into a snapshot: a delta
    /// held here with its body may be behind one (the snapshot named it
    /// too), so for such a delta a no is not sure.
    pub folded: bool,
}

impl Past {
    /// Walks back from `heads` to the first deltas, or to deltas folded
    /// into a snapshot. Clocks do not bound the walk: a replica that
    /// joined a snapshot may stamp a child before a parent it never saw
    /// the clock of.
    pub fn walk(heads: &[DeltaId], lineage: impl Fn(&DeltaId) -> Lineage) -> Past {
        let mut found = HashSet::new();
        let mut seen = HashSet::new();
        let mut complete = true;
        let mut folded = false;
        let mut stack: Vec<DeltaId> = heads.to_vec();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            match lineage(&id) {
                Lineage::Held { parents } => {
                    found.insert(id);
                    stack.extend(parents);
                }
                Lineage::Folded => folded = true,
                Lineage::Unknown => complete = false,
            }
        }
        Past {
            found,
            complete,
            folded,
        }
    }

    /// Whether `id` is in this past: `None` if the walk met deltas not
    /// known here and did not find it (it may be behind them).
    pub fn holds(&self, id: &DeltaId) -> Option<bool> {
        if self.found.contains(id) {
            Some(true)
        } else if self.complete {
            Some(false)
        } else {
            None
        }
    }
}

/// What a replica must do about the removals it knows in one context, so
/// that its state holds nothing the removals refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heal {
    /// Nothing.
    Clean,
    /// Judged later: the deltas a removal accepted are not all here yet.
    Later,
    /// Take the remover's state `from` (it holds exactly what its removal
    /// accepted, and what it merged since), record `dropping` (deltas
    /// merged here beside the frontier) refused, and judge the deltas held
    /// here again over that state. Needed when such deltas are held, and
    /// whenever the replica holds deltas folded into a snapshot: a
    /// snapshot taken before the replica heard of the removal may have
    /// brought their writes without their bodies.
    Rebase {
        /// The remover.
        from: [u8; 32],
        /// The removals this settles.
        removals: Vec<OpId>,
        /// Deltas merged here beside the frontier.
        dropping: Vec<DeltaId>,
    },
}

/// What replica `me` must do in `ctx` about the removals of `ns` not
/// settled yet (`settled`), given the deltas it holds with their bodies
/// (`held`: id and author) and whether it holds any folded into a
/// snapshot (`folded`). The reference is the node that named the
/// frontier in `ctx` (the remover, or the manager that named it where the
/// remover held none). A removal whose reference is the member itself (it
/// left) or `me`, or may no longer write, is settled as it is: this node
/// or nobody is the reference.
pub fn heal_plan(
    ns: &Namespace,
    me: &[u8; 32],
    ctx: &[u8; 32],
    held: &[(DeltaId, Author)],
    folded: bool,
    settled: impl Fn(&OpId) -> bool,
    lineage: impl Fn(&DeltaId) -> Lineage,
) -> Heal {
    let mut from = None;
    let mut removals = Vec::new();
    let mut dropping = Vec::new();
    let mut later = false;
    for (member, removal) in &ns.removals {
        let Some(heads) = removal.frontier.get(ctx) else {
            continue;
        };
        let source = removal.source(ctx);
        if settled(&removal.op)
            || source == *member
            || source == *me
            || !ns.may_write_in(&source, ctx)
        {
            continue;
        }
        let heads: Vec<DeltaId> = heads.iter().map(|h| DeltaId(*h)).collect();
        let past = Past::walk(&heads, &lineage);
        let mut rebase = folded;
        let mut beside = Vec::new();
        for (id, _) in held.iter().filter(|(_, a)| a.0 == *member) {
            match past.holds(id) {
                Some(true) => {}
                Some(false) if past.folded => rebase = true,
                Some(false) => {
                    rebase = true;
                    beside.push(*id);
                }
                None => later = true,
            }
        }
        if later {
            return Heal::Later;
        }
        // One remover at a time; the others are settled by the next plan.
        if rebase && from.is_none_or(|f| f == source) {
            from = Some(source);
            removals.push(removal.op);
            dropping.extend(beside);
        }
    }
    match from {
        Some(from) => Heal::Rebase {
            from,
            removals,
            dropping,
        },
        None => Heal::Clean,
    }
}

/// Whether `snapshot`, taken in place of a replica's state, holds what
/// the deltas it offers again over it (`kept`) build on, but for those
/// among `kept` or `refused`: else they would wait for parents, and the
/// replica's next writes be made on a state missing some of its own (a
/// counter slot counts up from what the state holds). What else it held
/// and the snapshot lacks comes back with later syncs, or was what the
/// removal refuses.
pub fn covers(snapshot: &StateSnapshot, kept: &[SignedDelta], refused: &[SignedDelta]) -> bool {
    let have: HashSet<DeltaId> = snapshot
        .deltas
        .iter()
        .copied()
        .chain(kept.iter().chain(refused).map(|d| d.delta.id()))
        .collect();
    kept.iter()
        .flat_map(|d| &d.delta.parents)
        .all(|p| have.contains(p))
}

/// Why a peer's snapshot of `ctx` may not be taken: the peer has not heard
/// of a removal (`theirs`: the ops of its log; `None` if it sent none) that
/// named a frontier for `ctx`, so its state may hold the removed member's
/// deltas beside it.
pub fn unheard_removal(
    ns: &Namespace,
    ctx: &mero_crdt::ContextId,
    theirs: Option<&HashSet<OpId>>,
) -> Option<String> {
    let missing = ns
        .removals
        .values()
        .filter(|r| r.frontier.contains_key(&ctx.0))
        .flat_map(|r| r.ops(&ctx.0))
        .any(|op| theirs.is_none_or(|t| !t.contains(&op)));
    missing.then(|| {
        "the sender has not heard of a removal this node knows, so its state may hold what the removal refuses".to_string()
    })
}

/// Whether `snapshot` holds something `deltas` wrote: an entry carrying
/// one of the stamps their authors put on their ops (a register's or an
/// authored element's write, an insert). Counter slots carry no stamp, so
/// an increment alone is not seen.
pub fn holds_writes_of(snapshot: &StateSnapshot, deltas: &[SignedDelta]) -> bool {
    let theirs: HashSet<(Author, Hlc)> = deltas
        .iter()
        .flat_map(|d| {
            let author = d.delta.author;
            d.delta
                .ops
                .iter()
                .flat_map(written)
                .filter(move |(a, _)| *a == author)
        })
        .collect();
    !theirs.is_empty()
        && snapshot
            .ops
            .iter()
            .flat_map(written)
            .any(|s| theirs.contains(&s))
}

/// The stamps of the writes an op carries: a register's, an authored
/// element's creation and write, a set's or map's inserts (removals carry
/// the stamp of the insert they observed, another author's).
fn written(op: &Op) -> Vec<(Author, Hlc)> {
    match &op.entry {
        Entry::Register(r) => vec![(r.stamp.author, r.stamp.hlc)],
        Entry::Presence(p) => p.adds.iter().map(|(a, t)| (*a, *t)).collect(),
        Entry::Counter(_) => Vec::new(),
        Entry::Authored(a) => vec![
            (a.created.author, a.created.hlc),
            (a.register.stamp.author, a.register.stamp.hlc),
        ],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn id(b: u8) -> DeltaId {
        DeltaId([b; 32])
    }

    /// 1 <- 2 <- 3 and 1 <- 4 (a branch the heads do not name); 5 is a
    /// stub, 9 unknown.
    fn dag() -> HashMap<DeltaId, Lineage> {
        let held = |parents: &[u8]| Lineage::Held {
            parents: parents.iter().map(|p| id(*p)).collect(),
        };
        HashMap::from([
            (id(1), held(&[])),
            (id(2), held(&[1])),
            (id(3), held(&[2, 5])),
            (id(4), held(&[1])),
            (id(5), Lineage::Folded),
        ])
    }

    fn lookup(dag: &HashMap<DeltaId, Lineage>) -> impl Fn(&DeltaId) -> Lineage + '_ {
        |i| dag.get(i).cloned().unwrap_or(Lineage::Unknown)
    }

    #[test]
    fn a_delta_behind_the_heads_is_in_their_past_and_a_branch_beside_them_is_not() {
        let dag = dag();
        let past = Past::walk(&[id(3)], lookup(&dag));
        for inside in [1, 2, 3] {
            assert_eq!(past.holds(&id(inside)), Some(true), "{inside}");
        }
        assert_eq!(past.holds(&id(4)), Some(false));
        assert_eq!(past.holds(&id(9)), Some(false));
    }

    #[test]
    fn heads_not_held_here_leave_the_answer_open() {
        let dag = dag();
        let past = Past::walk(&[id(9), id(2)], lookup(&dag));
        assert_eq!(past.holds(&id(1)), Some(true));
        assert_eq!(past.holds(&id(4)), None);
    }

    const ADMIN: [u8; 32] = [1; 32];
    const GONE: [u8; 32] = [2; 32];
    const ME: [u8; 32] = [3; 32];
    const CTX: [u8; 32] = [7; 32];

    /// A namespace where the admin removed GONE naming delta `head` as the
    /// context's frontier.
    fn removed(head: u8) -> Namespace {
        use crate::governance::{Member, Registered, Removal, Role};
        let mut ns = Namespace::new([9; 32]);
        for (who, role) in [(ADMIN, Role::Admin), (ME, Role::Member)] {
            let m = Member {
                role,
                capabilities: None,
                addrs: vec![],
                joined_millis: 0,
            };
            ns.members.insert(who, m);
        }
        let registered = Registered {
            name: None,
            group: ns.id,
            creator: ADMIN,
            millis: 0,
        };
        ns.contexts.insert(CTX, registered);
        let removal = Removal {
            op: [8; 32],
            demoted: false,
            promoted: None,
            named: Default::default(),
            by: ADMIN,
            frontier: [(CTX, [id(head).0].into())].into(),
        };
        ns.removals.insert(GONE, removal);
        ns
    }

    fn plan(ns: &Namespace, held: &[(u8, [u8; 32])], folded: bool, settled: bool) -> Heal {
        let dag = dag();
        let held: Vec<(DeltaId, Author)> = held.iter().map(|(d, a)| (id(*d), Author(*a))).collect();
        heal_plan(ns, &ME, &CTX, &held, folded, |_| settled, lookup(&dag))
    }

    #[test]
    fn a_removed_members_delta_behind_the_frontier_needs_nothing() {
        let ns = removed(3);
        assert_eq!(
            plan(&ns, &[(2, GONE), (4, ADMIN)], false, false),
            Heal::Clean
        );
    }

    /// Walked from 2, the frontier's past holds no folded delta: 4 is
    /// beside it for sure. (Walked from 3, it meets folded 5, behind which
    /// 4 could be: then the remover's state settles it.)
    #[test]
    fn one_beside_it_is_dropped_over_the_removers_state() {
        let ns = removed(2);
        assert_eq!(
            plan(&ns, &[(2, GONE), (4, GONE)], false, false),
            Heal::Rebase {
                from: ADMIN,
                removals: vec![[8; 32]],
                dropping: vec![id(4)],
            }
        );
        // Settled already (after a rebase, or a first state taken from a
        // member that had settled it): nothing more.
        assert_eq!(plan(&ns, &[(4, GONE)], false, true), Heal::Clean);
    }

    /// A member made read-only stays: it heals its own writes beside the
    /// frontier its demotion named, over the demoter's state.
    #[test]
    fn a_demoted_member_drops_its_own_writes_beside_the_frontier() {
        let mut ns = removed(2);
        if let Some(r) = ns.removals.get_mut(&GONE) {
            r.demoted = true;
        }
        let held = [(id(2), Author(GONE)), (id(4), Author(GONE))];
        let dag = dag();
        assert_eq!(
            heal_plan(&ns, &GONE, &CTX, &held, false, |_| false, lookup(&dag)),
            Heal::Rebase {
                from: ADMIN,
                removals: vec![[8; 32]],
                dropping: vec![id(4)],
            }
        );
    }

    /// Where a manager named the frontier (the remover held no state of
    /// the context), the manager's state is the reference; the manager
    /// itself settles nothing.
    #[test]
    fn where_a_manager_named_the_frontier_its_state_is_taken() {
        const NAMER: [u8; 32] = [6; 32];
        let mut ns = removed(2);
        ns.members.insert(NAMER, ns.members[&ADMIN].clone());
        if let Some(r) = ns.removals.get_mut(&GONE) {
            r.named.insert(CTX, (NAMER, [9; 32]));
        }
        let held = [(id(2), Author(GONE)), (id(4), Author(GONE))];
        let dag = dag();
        let plan = |me: &[u8; 32]| heal_plan(&ns, me, &CTX, &held, false, |_| false, lookup(&dag));
        assert_eq!(
            plan(&ME),
            Heal::Rebase {
                from: NAMER,
                removals: vec![[8; 32]],
                dropping: vec![id(4)],
            }
        );
        assert_eq!(plan(&NAMER), Heal::Clean);
    }

    #[test]
    fn folded_deltas_may_hide_its_writes_so_the_removers_state_is_taken() {
        let ns = removed(3);
        let rebase = Heal::Rebase {
            from: ADMIN,
            removals: vec![[8; 32]],
            dropping: vec![],
        };
        assert_eq!(plan(&ns, &[], true, false), rebase);
        // Its delta not found behind the frontier, whose walk met folded 5:
        // not sure, so settled over the remover's state too.
        assert_eq!(plan(&ns, &[(4, GONE)], false, false), rebase);
    }

    fn signed(parents: &[u8], value: &str) -> SignedDelta {
        let key = ed25519_dalek::SigningKey::from_bytes(&GONE);
        let author = Author(key.verifying_key().to_bytes());
        // One author stamps each of its writes apart.
        let hlc = Hlc {
            millis: value.len() as u64,
            counter: 0,
        };
        let op = Op {
            node: mero_crdt::NodeId([7; 32]),
            key: value.as_bytes().to_vec(),
            entry: Entry::Register(mero_crdt::Register {
                stamp: mero_crdt::Stamp { hlc, author },
                value: Some(value.as_bytes().to_vec()),
            }),
        };
        let delta = mero_crdt::Delta {
            version: 1,
            context: mero_crdt::ContextId(CTX),
            author,
            parents: parents.iter().map(|p| id(*p)).collect(),
            governance: vec![],
            layout: 0,
            hlc,
            ops: vec![op],
            events: vec![],
        };
        SignedDelta::sign(delta, &key)
    }

    fn snapshot(ops: Vec<Op>, deltas: &[u8]) -> StateSnapshot {
        StateSnapshot {
            ops,
            deltas: deltas.iter().map(|d| id(*d)).collect(),
            heads: vec![],
            ..StateSnapshot::default()
        }
    }

    #[test]
    fn a_snapshot_is_told_by_the_writes_it_holds_and_the_deltas_it_covers() {
        let refused = signed(&[1], "refused");
        let other = signed(&[1], "other");
        // Holding the refused delta's write, or not.
        assert!(holds_writes_of(
            &snapshot(refused.delta.ops.clone(), &[]),
            std::slice::from_ref(&refused)
        ));
        assert!(!holds_writes_of(
            &snapshot(other.delta.ops.clone(), &[]),
            std::slice::from_ref(&refused)
        ));
        // Kept deltas must find their parents in it, among themselves or
        // among the refused.
        let kept = signed(&[1, 2], "kept");
        assert!(covers(
            &snapshot(vec![], &[1, 2]),
            std::slice::from_ref(&kept),
            &[]
        ));
        assert!(!covers(
            &snapshot(vec![], &[1]),
            std::slice::from_ref(&kept),
            &[]
        ));
        let child = signed(&[1, 2], "child");
        let on_refused = signed(&[1], "x");
        let grandchild = mero_crdt::SignedDelta {
            delta: mero_crdt::Delta {
                parents: vec![child.delta.id(), on_refused.delta.id()],
                ..child.delta.clone()
            },
            ..child.clone()
        };
        assert!(covers(
            &snapshot(vec![], &[1, 2]),
            &[child, grandchild],
            &[on_refused]
        ));
    }

    #[test]
    fn a_sender_that_has_not_heard_of_a_removal_is_not_taken_from() {
        let ns = removed(3);
        let heard: HashSet<OpId> = [[8; 32]].into();
        assert!(unheard_removal(&ns, &mero_crdt::ContextId(CTX), Some(&heard)).is_none());
        assert!(unheard_removal(&ns, &mero_crdt::ContextId(CTX), Some(&HashSet::new())).is_some());
        assert!(unheard_removal(&ns, &mero_crdt::ContextId(CTX), None).is_some());
        // Another context: the removal named no frontier there.
        assert!(unheard_removal(&ns, &mero_crdt::ContextId([6; 32]), None).is_none());
    }

    #[test]
    fn a_frontier_not_all_here_is_judged_later_and_some_removers_are_no_reference() {
        let mut ns = removed(3);
        if let Some(r) = ns.removals.get_mut(&GONE) {
            r.frontier.insert(CTX, [id(9).0].into());
        }
        assert_eq!(plan(&ns, &[(2, GONE)], false, false), Heal::Later);
        // Removed by this node, or by itself (it left): nobody to ask.
        for by in [ME, GONE] {
            let mut ns = removed(3);
            if let Some(r) = ns.removals.get_mut(&GONE) {
                r.by = by;
            }
            assert_eq!(plan(&ns, &[(4, GONE)], true, false), Heal::Clean);
        }
    }
}
