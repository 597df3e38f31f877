//! Proving a snapshot's entries from the signed deltas it carries. A
//! sender that holds every delta behind its state sends them; the receiver
//! judges each as the delta path would, rebuilds the state from those it
//! takes and compares: entries one of them did not write (a forged value
//! under another author's stamp, a far-future clock), ids with no delta
//! behind them, heads that are not the deltas' own, are all refused. A
//! sender that holds only some (it joined a snapshot itself before
//! snapshots carried them, or they were over [`MAX_FILLED_BYTES`]) cannot
//! prove its entries: they are its word, checked as far as they can be
//! without signatures (`StateSnapshot::check`).
//!
//! A state that crossed upgrades is proven through their migrations: the
//! deltas written under an older state version must be exactly those
//! behind the cut of the upgrade that left it, and the caller runs each
//! migration again on the state they give ([`Replay`]), compares its root
//! with the one the upgrade's signed op names, and joins the later deltas.
//!
//! A sender leaves the bodies out when they would not fit one message
//! beside its entries; the receiver then fetches them from it a page at a
//! time ([`Filling`]) before proving.

use std::collections::{BTreeSet, HashSet};

use mero_crdt::{
    ContextId, DeltaId, Hash, Hlc, MemoryBackend, Op, Provenance, SignedDelta, StateSnapshot,
};

use super::frontier::Lineage;
use super::serve::MAX_FETCHED;
use super::session::{Authority, DagView, Verdict, ViewError, verdicts};
use super::wire::{Request, Response};

/// Most bytes of signed deltas fetched apart to prove one snapshot (they
/// are held in memory until it is joined): a state behind more is taken on
/// its sender's word.
pub const MAX_FILLED_BYTES: usize = 256 << 20;

/// Why fetching a snapshot's bodies stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halted {
    /// A page was lost or refused (why): from the snapshot's sender, the
    /// snapshot is not taken yet (it is asked for again later); from
    /// another member, the next one is asked.
    NotYet(String),
    /// The member asked sent a body it was not asked for, or bytes that
    /// are no delta (why): it is marked; if it is the snapshot's sender,
    /// the snapshot is refused.
    Forged(String),
}

/// Fetching the bodies of the deltas a snapshot names but does not carry,
/// a page at a time, from its sender, then from other members for those
/// its sender holds by id alone; sans-IO: the caller sends each
/// [`next`](Filling::next) request to the source it asks now and hands
/// the answer to [`answered`](Filling::answered), moves on with
/// [`ask_elsewhere`](Filling::ask_elsewhere), then proves the snapshot.
#[derive(Debug)]
pub struct Filling {
    ctx: ContextId,
    /// Named, neither carried nor fetched yet.
    wanted: BTreeSet<DeltaId>,
    /// Those the source asked now holds by id alone.
    skip: BTreeSet<DeltaId>,
    /// Bodies fetched so far, and their bytes.
    fetched: usize,
    bytes: usize,
    /// The last page brought nothing: asking again would not either.
    stalled: bool,
}

impl Filling {
    /// What `snapshot` of `ctx` lacks.
    pub fn new(ctx: ContextId, snapshot: &StateSnapshot) -> Filling {
        let carried = snapshot.carried();
        Filling {
            ctx,
            wanted: snapshot
                .deltas
                .iter()
                .filter(|id| !carried.contains(id))
                .copied()
                .collect(),
            skip: BTreeSet::new(),
            fetched: 0,
            bytes: 0,
            stalled: false,
        }
    }

    /// The next page to ask the source for: none once every body is
    /// here, or the source holds the rest by id alone (or not at all), or
    /// they are over [`MAX_FILLED_BYTES`] (then the snapshot is not
    /// proven).
    pub fn next(&self) -> Option<Request> {
        if self.stalled || self.bytes > MAX_FILLED_BYTES {
            return None;
        }
        let ids: Vec<DeltaId> = self
            .wanted
            .difference(&self.skip)
            .take(MAX_FETCHED)
            .copied()
            .collect();
        (!ids.is_empty()).then_some(Request::Bodies {
            context: self.ctx.0,
            ids,
        })
    }

    /// Whether bodies are still lacking that another source may hold
    /// (within [`MAX_FILLED_BYTES`]); if so, the next pages are asked of
    /// it.
    pub fn ask_elsewhere(&mut self) -> bool {
        if self.wanted.is_empty() || self.bytes > MAX_FILLED_BYTES {
            return false;
        }
        self.skip.clear();
        self.stalled = false;
        true
    }

    /// How many bodies were fetched so far.
    pub fn fetched(&self) -> usize {
        self.fetched
    }

    /// Takes the source's answer to the last page into `snapshot`.
    pub fn answered(
        &mut self,
        snapshot: &mut StateSnapshot,
        answer: Result<Response, String>,
    ) -> Result<(), Halted> {
        let (deltas, folded) = match answer {
            Ok(Response::Deltas { deltas, folded }) => (deltas, folded),
            Ok(other) => {
                return Err(Halted::NotYet(format!(
                    "the member asked would not send the deltas it names: {other:?}"
                )));
            }
            Err(e) => {
                return Err(Halted::NotYet(format!(
                    "fetching the deltas it names failed: {e}"
                )));
            }
        };
        let mut took = 0usize;
        for id in folded {
            took += usize::from(self.wanted.contains(&id) && self.skip.insert(id));
        }
        for bytes in deltas {
            let d = SignedDelta::from_bytes(&bytes).map_err(|e| {
                Halted::Forged(format!(
                    "the member asked sent a body that is no delta: {e}"
                ))
            })?;
            if !self.wanted.remove(&d.delta.id()) {
                return Err(Halted::Forged(
                    "the member asked sent a delta it was not asked for".into(),
                ));
            }
            self.bytes += bytes.len();
            self.fetched += 1;
            took += 1;
            snapshot.bodies.push(d);
        }
        self.stalled = took == 0;
        Ok(())
    }
}

/// An upgrade of the context's group that migrated its state, as the
/// upgrade's signed governance op names it for the context: a statement,
/// signed by the admin that ordered it and checked by every member that
/// migrated its own copy, of what the migration read and gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// The state version it migrated from.
    pub from: u32,
    /// The state version it migrated to.
    pub to: u32,
    /// The context's DAG heads the migration read.
    pub cut: Vec<DeltaId>,
    /// The root hash it gave there.
    pub root: Hash,
}

/// The rest of proving a snapshot whose state crossed upgrades, sans-IO:
/// the caller runs each [`next_migration`](Replay::next_migration) migration on the entries
/// handed to it, as the upgrade's op says every member runs it, and hands
/// its writes to [`migrated`](Replay::migrated); [`finish`](Replay::finish)
/// then says whether the entries are what the deltas and migrations give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// For each upgrade crossed, oldest first: the ops of the deltas
    /// written under the state version it left, and the upgrade.
    steps: std::collections::VecDeque<(Vec<Op>, Crossing)>,
    /// The upgrade whose migration runs now.
    running: Option<Crossing>,
    /// The ops of the deltas written under the snapshot's state version.
    after: Vec<Op>,
    /// The root the snapshot names.
    root: Hash,
    state: MemoryBackend,
}

impl Replay {
    /// Joins the deltas written before the next upgrade into the state,
    /// and hands back the entries its migration runs on, with the
    /// upgrade: none once every migration ran.
    pub fn next_migration(&mut self) -> Result<Option<(Vec<Op>, Crossing)>, String> {
        let Some((ops, crossing)) = self.steps.pop_front() else {
            return Ok(None);
        };
        mero_crdt::apply_ops(&mut self.state, &ops)
            .map_err(|e| format!("its deltas do not join: {e}"))?;
        let entries = self.state.to_ops();
        self.running = Some(crossing.clone());
        Ok(Some((entries, crossing)))
    }

    /// Joins what the running migration wrote: the state must then be the
    /// one its upgrade's op names, else the snapshot is forged (why).
    pub fn migrated(&mut self, writes: &[Op]) -> Result<(), String> {
        let Some(crossing) = self.running.take() else {
            return Err("no migration was running".into());
        };
        let root = mero_crdt::apply_ops(&mut self.state, writes)
            .map_err(|e| format!("the migration's writes do not join: {e}"))?;
        if root != crossing.root {
            return Err(format!(
                "its deltas up to the cut of the upgrade from state version {} give, migrated, root {}; the upgrade names {}",
                crossing.from,
                hex::encode(root),
                hex::encode(crossing.root)
            ));
        }
        Ok(())
    }

    /// Whether the snapshot's entries are the migrated state joined with
    /// the deltas written since.
    pub fn finish(mut self) -> Proof {
        if self.running.is_some() || !self.steps.is_empty() {
            return Proof::NotYet("a migration it crossed was not run".into());
        }
        match mero_crdt::apply_ops(&mut self.state, &self.after) {
            Ok(root) if root == self.root => Proof::Proven,
            Ok(root) => Proof::Forged(format!(
                "its entries are not what the signed deltas it carries and the migrations they crossed give (they give root {}, it names {})",
                hex::encode(root),
                hex::encode(self.root)
            )),
            Err(e) => Proof::Forged(format!("its deltas do not join: {e}")),
        }
    }
}

/// What the deltas a snapshot carries prove of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Its entries are exactly what the signed deltas this node takes give.
    Proven,
    /// So far as the deltas go: the migrations of the upgrades its state
    /// crossed are to be run again before it is proven.
    Replay(Box<Replay>),
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
/// are allowed). A delta written under an earlier state version than the
/// snapshot's must be in the cut of one of `upgrades` (the context's, in
/// fold order) that migrated from it, and the state is then proven by
/// running their migrations again ([`Proof::Replay`]).
pub fn prove(
    ctx: &ContextId,
    snapshot: &StateSnapshot,
    latest: Hlc,
    authority: &Authority<'_>,
    upgrades: &[Crossing],
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
    let crossed = match crossed(snapshot, upgrades) {
        Ok(c) => c,
        Err(proof) => return proof,
    };
    let carried: Vec<SignedDelta> = snapshot
        .bodies
        .iter()
        .chain(&snapshot.refused)
        .cloned()
        .collect();
    let taken = snapshot.bodies.len();
    // The sender holds the deltas it refused by id alone in its DAG, so
    // its frontier walks stopped at them (a delta behind one it never saw
    // is not one a removal accepted): walked alike here.
    let refused: HashSet<DeltaId> = snapshot.refused.iter().map(|d| d.delta.id()).collect();
    let judged = verdicts(
        ctx,
        &carried,
        &Nothing,
        |id| refused.contains(id).then_some(Lineage::Folded),
        authority,
    );
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
    if !crossed.is_empty() {
        let named: BTreeSet<DeltaId> = snapshot.heads.iter().copied().collect();
        if named != snapshot.body_heads() {
            return Proof::Forged("its heads are not the heads of the deltas it carries".into());
        }
        return Proof::Replay(Box::new(Replay::of(snapshot, crossed)));
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
    let named: BTreeSet<DeltaId> = snapshot.heads.iter().copied().collect();
    if named != heads {
        return Proof::Forged("its heads are not the heads of the deltas it carries".into());
    }
    Proof::Proven
}

/// The upgrades `snapshot`'s state crossed, oldest first: none if every
/// delta it took was written under its state version. Each delta written
/// under an earlier one must be in the past of the cut of the upgrade that
/// left it, and each delta in that past written under it: a write made
/// past the cut was refused by every migrated member.
fn crossed(snapshot: &StateSnapshot, upgrades: &[Crossing]) -> Result<Vec<Crossing>, Proof> {
    let Some(oldest) = snapshot.bodies.iter().map(|d| d.delta.layout).min() else {
        return Ok(Vec::new());
    };
    let mut chain = Vec::new();
    let mut at = snapshot.layout;
    while at > oldest {
        let Some(u) = upgrades.iter().rev().find(|u| u.to == at && u.from < at) else {
            return Err(Proof::Unproven(format!(
                "a delta was written under state version {oldest}, and no upgrade's signed op names what migrating this context to {at} gave"
            )));
        };
        chain.push(u.clone());
        at = u.from;
    }
    chain.reverse();
    if chain.is_empty() {
        // Nothing older: a delta of a later version than its state is not
        // one of its history.
        return match snapshot
            .bodies
            .iter()
            .find(|d| d.delta.layout != snapshot.layout)
        {
            Some(d) => Err(Proof::Forged(format!(
                "it carries a delta written under state version {}, past its own {}",
                d.delta.layout, snapshot.layout
            ))),
            None => Ok(chain),
        };
    }
    let ids: Vec<DeltaId> = snapshot.bodies.iter().map(|d| d.delta.id()).collect();
    let by_id: std::collections::HashMap<DeltaId, &SignedDelta> =
        ids.iter().copied().zip(&snapshot.bodies).collect();
    for d in &snapshot.bodies {
        let l = d.delta.layout;
        if l != snapshot.layout && !chain.iter().any(|u| u.from == l) {
            return Err(Proof::Forged(format!(
                "it carries a delta written under state version {l}, which no upgrade it crossed left"
            )));
        }
    }
    for u in &chain {
        let mut past = HashSet::new();
        let mut todo: Vec<DeltaId> = u.cut.clone();
        while let Some(id) = todo.pop() {
            let Some(d) = by_id.get(&id) else {
                return Err(Proof::Forged(format!(
                    "it lacks a delta of the cut the upgrade from state version {} migrated",
                    u.from
                )));
            };
            if past.insert(id) {
                todo.extend(d.delta.parents.iter().copied());
            }
        }
        for (id, d) in ids.iter().zip(&snapshot.bodies) {
            if (d.delta.layout <= u.from) != past.contains(id) {
                return Err(Proof::Forged(format!(
                    "it carries a delta written under state version {} on the wrong side of the cut the upgrade from {} migrated",
                    d.delta.layout, u.from
                )));
            }
        }
    }
    Ok(chain)
}

impl Replay {
    fn of(snapshot: &StateSnapshot, crossed: Vec<Crossing>) -> Replay {
        let ops_of = |layout: u32| -> Vec<Op> {
            snapshot
                .bodies
                .iter()
                .filter(|d| d.delta.layout == layout)
                .flat_map(|d| d.delta.ops.iter().cloned())
                .collect()
        };
        Replay {
            steps: crossed.into_iter().map(|u| (ops_of(u.from), u)).collect(),
            running: None,
            after: ops_of(snapshot.layout),
            root: snapshot.root_hash,
            state: MemoryBackend::default(),
        }
    }
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
        write_under(1, who, parents, name, value, millis)
    }

    /// As [`write`], under state version `layout`.
    fn write_under(
        layout: u32,
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
            layout,
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
        let ops = state.to_ops();
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
        assert_eq!(prove(&CTX, &s, LATEST, &anyone, &[]), Proof::Proven);
        // In any order: nothing rests on the sender's ordering or clocks.
        s.bodies.reverse();
        assert_eq!(prove(&CTX, &s, LATEST, &anyone, &[]), Proof::Proven);
        // An empty state, as a context with no delta yet sends it.
        let empty = snapshot(&[], &[]);
        assert_eq!(empty.root_hash, [0; 32]);
        assert_eq!(prove(&CTX, &empty, LATEST, &anyone, &[]), Proof::Proven);
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
        let Proof::Forged(why) = prove(&CTX, &s, LATEST, &anyone, &[]) else {
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
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Unproven(_)
        ));
        // An id with no delta behind it at all.
        let mut s = snapshot(&[&first, &second], &[]);
        s.deltas.push(DeltaId([5; 32]));
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Unproven(_)
        ));
        // Bodies of an older layout, and no upgrade names what migrating
        // them gave.
        let mut s = snapshot(&[&first, &second], &[]);
        s.layout = 2;
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Unproven(_)
        ));
    }

    #[test]
    fn bodies_that_are_not_signed_deltas_of_the_context_are_found_forged() {
        let (first, second) = history();
        // A body whose signature does not verify.
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies[1].signature[0] ^= 1;
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Forged(_)
        ));
        // A body rewritten after signing (its id changes: named nowhere).
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies[1].delta.ops.clear();
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Forged(_)
        ));
        // A delta of another context.
        let mut other = write(1, &[], "a", "one", 1_000);
        other.delta.context = ContextId([8; 32]);
        let other = SignedDelta::sign(other.delta, &key(1));
        let mut s = snapshot(&[&other], &[]);
        s.bodies[0] = other.clone();
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Forged(_)
        ));
        // Heads that are not the deltas' own.
        let mut s = snapshot(&[&first, &second], &[]);
        s.heads = vec![first.delta.id()];
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Forged(_)
        ));
        // A delta stamped past this node's clock and the drift allowed,
        // whose write would win every later one: refused on the delta path.
        let ahead = write(2, &[&first], "b", "ahead", LATEST.millis + 1);
        let s = snapshot(&[&first, &ahead], &[]);
        let Proof::Forged(why) = prove(&CTX, &s, LATEST, &anyone, &[]) else {
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
        let Proof::Forged(why) = prove(&CTX, &s, LATEST, &not_writer_2, &[]) else {
            panic!("a refused delta was proven")
        };
        assert!(why.contains("not a writer"), "{why}");
        let unknown = |_: &Delta, _: &[Vec<[u8; 32]>]| Err(Denial::NotYet("later".into()));
        assert_eq!(
            prove(&CTX, &s, LATEST, &unknown, &[]),
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
        assert_eq!(prove(&CTX, &s, LATEST, &removed, &[]), Proof::Proven);
        // A sender that merged it has not healed: not taken yet.
        let s = snapshot(&[&first, &second, &late], &[]);
        assert!(matches!(
            prove(&CTX, &s, LATEST, &removed, &[]),
            Proof::NotYet(_)
        ));
        // One that refused a delta this node takes.
        let s = snapshot(&[&first], &[&second]);
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::NotYet(_)
        ));
    }

    /// A sender's store: deltas with bodies, and ids it holds by id alone.
    struct Held {
        bodies: Vec<SignedDelta>,
        folded: Vec<DeltaId>,
    }

    impl DagView for Held {
        fn has(&self, id: &DeltaId) -> Result<bool, ViewError> {
            Ok(self.folded.contains(id) || self.bodies.iter().any(|d| d.delta.id() == *id))
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

    impl super::super::ServeView for Held {
        fn delta(&self, id: &DeltaId) -> Result<Option<SignedDelta>, ViewError> {
            Ok(self.bodies.iter().find(|d| d.delta.id() == *id).cloned())
        }
        fn snapshot(&self) -> Result<StateSnapshot, ViewError> {
            Err(ViewError("not asked here".into()))
        }
    }

    /// Fills `s` from `sender` as the node does, page by page; the pages asked.
    fn fill(s: &mut StateSnapshot, sender: &Held) -> Result<Vec<Vec<DeltaId>>, Halted> {
        fill_from(s, &[sender])
    }

    /// Fills `s` from `sources` in turn, its sender first, as the node
    /// does; the pages asked.
    fn fill_from(s: &mut StateSnapshot, sources: &[&Held]) -> Result<Vec<Vec<DeltaId>>, Halted> {
        let mut filling = Filling::new(CTX, s);
        let mut pages = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            if i > 0 && !filling.ask_elsewhere() {
                break;
            }
            while let Some(page) = filling.next() {
                let Request::Bodies { ids, .. } = &page else {
                    panic!("asked {page:?}")
                };
                pages.push(ids.clone());
                let answer = super::super::serve(&page, *source);
                filling.answered(s, Ok(answer))?;
            }
        }
        Ok(pages)
    }

    #[test]
    fn bodies_its_sender_holds_by_id_alone_are_fetched_from_another_member() {
        let (first, second) = history();
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies.clear();
        let sender = Held {
            bodies: vec![second.clone()],
            folded: vec![first.delta.id()],
        };
        let without = Held {
            bodies: vec![],
            folded: vec![first.delta.id()],
        };
        let whole = Held {
            bodies: vec![first.clone(), second.clone()],
            folded: vec![],
        };
        let pages = fill_from(&mut s, &[&sender, &without, &whole]).unwrap();
        // Both of the sender, then the one it lacked of each other member.
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 1, 1],
            "{pages:?}"
        );
        assert_eq!(prove(&CTX, &s, LATEST, &anyone, &[]), Proof::Proven);
        // Nothing asked once every body is here.
        let mut filling = Filling::new(CTX, &s);
        assert!(!filling.ask_elsewhere() && filling.next().is_none());
    }

    #[test]
    fn bodies_a_snapshot_left_out_are_fetched_from_its_sender_and_prove_it() {
        let (first, second) = history();
        let third = write(1, &[&second], "c", "three", 3_000);
        let late = write(3, &[&second], "c", "late", 3_000);
        let mut s = snapshot(&[&first, &second, &third], &[&late]);
        // Too large to carry: the refused alone came with it.
        s.bodies.clear();
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Unproven(_)
        ));
        let sender = Held {
            bodies: vec![first.clone(), second.clone(), third.clone(), late.clone()],
            folded: vec![],
        };
        let pages = fill(&mut s, &sender).unwrap();
        // One page, of exactly the bodies it lacked.
        assert_eq!(pages.len(), 1, "{pages:?}");
        let mut lacked = vec![first.delta.id(), second.delta.id(), third.delta.id()];
        lacked.sort();
        assert_eq!(pages[0], lacked);
        let refused_too = |d: &Delta, _: &[Vec<[u8; 32]>]| {
            if d.author == author(3) {
                Err(Denial::BeforeFrontier(vec![first.delta.id().0]))
            } else {
                Ok(())
            }
        };
        assert_eq!(prove(&CTX, &s, LATEST, &refused_too, &[]), Proof::Proven);

        // A forged entry is found forged from fetched bodies as from carried ones.
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies.clear();
        for op in &mut s.ops {
            if let Entry::Register(r) = &mut op.entry {
                r.value = Some(b"forged".to_vec());
            }
        }
        s.root_hash = mero_crdt::apply_ops(&mut MemoryBackend::default(), &s.ops).unwrap();
        fill(&mut s, &sender).unwrap();
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Forged(_)
        ));
    }

    #[test]
    fn bodies_its_sender_holds_by_id_alone_leave_a_snapshot_unproven_without_asking_again() {
        let (first, second) = history();
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies.clear();
        let sender = Held {
            bodies: vec![second.clone()],
            folded: vec![first.delta.id()],
        };
        assert_eq!(fill(&mut s, &sender).unwrap().len(), 1);
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Unproven(_)
        ));
        // A sender that holds none of them at all: one page, then no more.
        let mut s = snapshot(&[&first, &second], &[]);
        s.bodies.clear();
        let nothing = Held {
            bodies: vec![],
            folded: vec![],
        };
        assert_eq!(fill(&mut s, &nothing).unwrap().len(), 1);
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Unproven(_)
        ));
    }

    #[test]
    fn a_large_snapshots_bodies_are_asked_for_a_page_at_a_time() {
        let ids: Vec<DeltaId> = (0..MAX_FETCHED + 10)
            .map(|i| {
                let mut id = [0; 32];
                id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                DeltaId(id)
            })
            .collect();
        let mut s = StateSnapshot {
            deltas: ids.clone(),
            ..StateSnapshot::default()
        };
        let mut filling = Filling::new(CTX, &s);
        let Some(Request::Bodies { ids: first, .. }) = filling.next() else {
            panic!("nothing asked")
        };
        assert_eq!(first, ids[..MAX_FETCHED]);
        // Answered (here: held by id alone): the rest is asked next.
        let answer = Response::Deltas {
            deltas: vec![],
            folded: first,
        };
        filling.answered(&mut s, Ok(answer)).unwrap();
        let Some(Request::Bodies { ids: rest, .. }) = filling.next() else {
            panic!("the rest not asked")
        };
        assert_eq!(rest, ids[MAX_FETCHED..]);
    }

    #[test]
    fn a_lost_page_waits_and_a_body_not_asked_for_is_the_senders_lie() {
        let (first, second) = history();
        let mut s = snapshot(&[&first], &[]);
        s.bodies.clear();
        let mut filling = Filling::new(CTX, &s);
        for lost in [
            Err("timed out".to_string()),
            Ok(Response::Refused("busy".into())),
        ] {
            assert!(matches!(
                filling.answered(&mut s, lost),
                Err(Halted::NotYet(_))
            ));
        }
        let not_asked = Response::Deltas {
            deltas: vec![second.to_bytes()],
            folded: vec![],
        };
        assert!(matches!(
            filling.answered(&mut s, Ok(not_asked)),
            Err(Halted::Forged(_))
        ));
        let garbage = Response::Deltas {
            deltas: vec![vec![1, 2, 3]],
            folded: vec![],
        };
        assert!(matches!(
            filling.answered(&mut s, Ok(garbage)),
            Err(Halted::Forged(_))
        ));
        assert!(s.bodies.is_empty(), "nothing taken from a lying answer");
    }

    /// A migration from state version 1 to 2 as the test upgrade runs
    /// it: register `a` renamed `A`, stamped by the ordering admin (9).
    fn migrate(entries: &[Op]) -> Vec<Op> {
        entries
            .iter()
            .filter(|op| op.key == b"a")
            .map(|op| {
                let Entry::Register(r) = &op.entry else {
                    panic!("a is a register")
                };
                Op {
                    node: op.node,
                    key: b"A".to_vec(),
                    entry: Entry::Register(Register {
                        stamp: Stamp {
                            hlc: Hlc {
                                millis: 5_000,
                                counter: 1,
                            },
                            author: author(9),
                        },
                        value: r.value.clone(),
                    }),
                }
            })
            .collect()
    }

    /// Two writes under state version 1, the upgrade to 2 (its cut the
    /// second), and a write under 2 on top: what a migrated sender sends,
    /// and the upgrade as its op names it for the context.
    fn crossed_history() -> (StateSnapshot, Crossing, [SignedDelta; 3]) {
        let (first, second) = history();
        let mut state = MemoryBackend::default();
        mero_crdt::apply_ops(&mut state, &first.delta.ops).unwrap();
        mero_crdt::apply_ops(&mut state, &second.delta.ops).unwrap();
        let before: Vec<Op> = state.to_ops();
        let migrated = mero_crdt::apply_ops(&mut state, &migrate(&before)).unwrap();
        let third = write_under(2, 1, &[&second], "c", "three", 6_000);
        let root = mero_crdt::apply_ops(&mut state, &third.delta.ops).unwrap();
        let ops = state.to_ops();
        let s = StateSnapshot {
            ops,
            deltas: [&first, &second, &third]
                .iter()
                .map(|d| d.delta.id())
                .collect(),
            heads: vec![third.delta.id()],
            root_hash: root,
            layout: 2,
            bodies: vec![first.clone(), second.clone(), third.clone()],
            refused: vec![],
        };
        let crossing = Crossing {
            from: 1,
            to: 2,
            cut: vec![second.delta.id()],
            root: migrated,
        };
        (s, crossing, [first, second, third])
    }

    /// Runs `proof`'s migrations with `migration`.
    fn replayed(proof: Proof, migration: impl Fn(&[Op]) -> Vec<Op>) -> Proof {
        let Proof::Replay(mut replay) = proof else {
            return proof;
        };
        while let Some((entries, crossing)) = replay.next_migration().unwrap() {
            assert_eq!(crossing.from, 1);
            if let Err(why) = replay.migrated(&migration(&entries)) {
                return Proof::Forged(why);
            }
        }
        replay.finish()
    }

    #[test]
    fn a_snapshot_that_crossed_an_upgrade_is_proven_by_running_its_migration_again() {
        let (s, crossing, _) = crossed_history();
        let proof = prove(&CTX, &s, LATEST, &anyone, std::slice::from_ref(&crossing));
        assert!(matches!(proof, Proof::Replay(_)), "{proof:?}");
        assert_eq!(replayed(proof, migrate), Proof::Proven);
        // Without the upgrade's op, nothing says what the migration gave.
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[]),
            Proof::Unproven(_)
        ));
        // A later upgrade, or one from another version, names nothing of it.
        let other = Crossing {
            from: 2,
            to: 3,
            ..crossing
        };
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[other]),
            Proof::Unproven(_)
        ));
    }

    #[test]
    fn a_migrated_entry_the_migration_did_not_write_is_found_forged() {
        let (mut s, crossing, _) = crossed_history();
        // The sender rewrites the migrated value under the admin's stamp
        // and names the root its entries give: only the migration, run
        // again, tells.
        for op in &mut s.ops {
            if op.key == b"A"
                && let Entry::Register(r) = &mut op.entry
            {
                r.value = Some(b"forged".to_vec());
            }
        }
        s.root_hash = mero_crdt::apply_ops(&mut MemoryBackend::default(), &s.ops).unwrap();
        let proof = prove(&CTX, &s, LATEST, &anyone, std::slice::from_ref(&crossing));
        let Proof::Forged(why) = replayed(proof, migrate) else {
            panic!("a forged migrated entry was proven")
        };
        assert!(why.contains("migrations they crossed give"), "{why}");
        // A migration that gives another state than the op names.
        let (s, _, _) = crossed_history();
        let proof = prove(&CTX, &s, LATEST, &anyone, &[crossing]);
        let Proof::Forged(why) = replayed(proof, |_| Vec::new()) else {
            panic!("a state the upgrade's op does not name was proven")
        };
        assert!(why.contains("the upgrade names"), "{why}");
    }

    #[test]
    fn deltas_on_the_wrong_side_of_an_upgrades_cut_are_found_forged() {
        let (s, crossing, [first, second, third]) = crossed_history();
        // Written under version 1 past the cut: every migrated member
        // refused it.
        let late = write_under(1, 2, &[&second], "a", "late", 5_500);
        let mut with_late = s.clone();
        with_late.deltas.push(late.delta.id());
        with_late.bodies.push(late.clone());
        with_late.heads = vec![third.delta.id(), late.delta.id()];
        let Proof::Forged(why) = prove(
            &CTX,
            &with_late,
            LATEST,
            &anyone,
            std::slice::from_ref(&crossing),
        ) else {
            panic!("a write past the cut was taken")
        };
        assert!(why.contains("wrong side of the cut"), "{why}");
        // The cut names a delta it does not carry.
        let lacking = Crossing {
            cut: vec![DeltaId([3; 32])],
            ..crossing.clone()
        };
        assert!(matches!(
            prove(&CTX, &s, LATEST, &anyone, &[lacking]),
            Proof::Forged(_)
        ));
        // Written under a version later than the snapshot's.
        let future = write_under(3, 1, &[&third], "d", "four", 7_000);
        let mut ahead = s.clone();
        ahead.deltas.push(future.delta.id());
        ahead.bodies.push(future.clone());
        ahead.heads = vec![future.delta.id()];
        assert!(matches!(
            prove(
                &CTX,
                &ahead,
                LATEST,
                &anyone,
                std::slice::from_ref(&crossing)
            ),
            Proof::Forged(_)
        ));
        // A history all of one later version than the snapshot's.
        let mut s1 = snapshot(&[&first], &[]);
        s1.layout = 0;
        assert!(matches!(
            prove(&CTX, &s1, LATEST, &anyone, &[]),
            Proof::Forged(_)
        ));
    }
}
