//! One sync session of one context: the decisions about received deltas,
//! with no I/O. A session is offered deltas (from gossip, a catch-up or an
//! anti-entropy round) and answers with [`Step`]s for its driver to carry
//! out: apply these judged deltas, send this request to the peer, join this
//! snapshot; the driver feeds each result back and gets the next step,
//! until [`Step::Done`].
//!
//! What a session decides:
//! - each delta is judged by the [`Authority`] (its author may write at the
//!   governance it names) before it is applied; one naming governance not
//!   known here yet is deferred, not refused;
//! - deltas whose parents are missing are held in [`Pending`]; merging a
//!   parent releases its children;
//! - a catch-up session (not gossip) fetches missing parents, with their
//!   ancestors, from its peer, and joins the peer's snapshot when the gap
//!   cannot be walked: the peer holds them only folded into a snapshot, a
//!   parent was refused, the deltas waiting for parents fill [`Pending`],
//!   or the walk passed [`MAX_WALK`] deltas;
//! - a snapshot is state taken on trust: only from a peer that may write.

use std::collections::{HashMap, HashSet};

use mero_crdt::{ContextId, Delta, DeltaId, Hash, SignedDelta, StateSnapshot};

use super::frontier::{Lineage, Past};
use super::pending::Pending;
use super::wire::{Request, Response};
use crate::governance::{Denial, OpId};

/// Most deltas fetched in one catch-up before joining a snapshot instead.
pub const MAX_WALK: usize = 20_000;

/// Judges whether a delta's author may write it, given the delta and the
/// governance heads its parents named (those of parents known here); `Err`
/// says why not, or that it cannot tell yet.
pub type Authority<'a> = dyn Fn(&Delta, &[Vec<OpId>]) -> Result<(), Denial> + Sync + 'a;

/// Reading the replica's store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ViewError(pub String);

/// A read-only view of one context's delta DAG on this replica.
pub trait DagView {
    /// Whether the delta is known here: stored, or folded into a joined
    /// snapshot (a stub, with no body).
    fn has(&self, id: &DeltaId) -> Result<bool, ViewError>;
    /// The governance heads a stored delta named (`None` if it is not
    /// stored here with its body).
    fn governance(&self, id: &DeltaId) -> Result<Option<Vec<OpId>>, ViewError>;
    /// A delta's parents and clock if stored with its body, whether it was
    /// folded into a snapshot, or that it is not known here.
    fn lineage(&self, id: &DeltaId) -> Result<Lineage, ViewError>;
    /// The context's DAG heads.
    fn heads(&self) -> Result<Vec<DeltaId>, ViewError>;
    /// The context's state root hash.
    fn root(&self) -> Result<Hash, ViewError>;
}

/// What became of one delta the driver applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Merged and committed.
    Merged,
    /// Known already; nothing changed.
    Duplicate,
    /// Its parents are not here; nothing changed.
    MissingParents(Vec<DeltaId>),
    /// The context is gone from this replica: the session stops.
    Gone,
    /// Refused (a bad signature, a clock too far ahead, a store failure).
    Refused(String),
}

/// What ingesting did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Deltas merged.
    pub merged: u64,
    /// Deltas refused.
    pub rejected: u64,
    /// The last reason a delta was refused.
    pub last_rejection: Option<String>,
    /// Deltas set aside until the governance they name arrives.
    pub deferred: u64,
    /// Whether a snapshot was joined.
    pub snapshot: bool,
}

/// What becomes of one offered delta.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Applied.
    Take,
    /// Judged again once what it names is here.
    Later(String),
    /// Refused.
    Refuse(String),
    /// Refused by a rule every member applies alike: recorded as known,
    /// with no effect.
    RefuseForGood(String),
}

impl From<Result<(), Denial>> for Verdict {
    fn from(judged: Result<(), Denial>) -> Verdict {
        match judged {
            Ok(()) => Verdict::Take,
            Err(Denial::NotYet(why)) => Verdict::Later(why),
            Err(Denial::Refused(why)) => Verdict::Refuse(why),
            // Only the DAG's judge can settle it; one that cannot waits.
            Err(d @ Denial::BeforeFrontier(_)) => Verdict::Later(d.to_string()),
        }
    }
}

/// What the driver does next.
#[derive(Debug)]
pub enum Step {
    /// Apply these deltas, in order (parents before children share a
    /// batch), and report each [`Outcome`] with [`Session::applied`].
    Apply(Vec<SignedDelta>),
    /// Send this request to the session's peer and report the answer with
    /// [`Session::answered`].
    Fetch(Request),
    /// Join this snapshot of the peer's and report with
    /// [`Session::joined`].
    Join(StateSnapshot),
    /// Record these deltas as refused for good (known, with no effect:
    /// what builds on them applies without them; kept, so that a snapshot
    /// holding their writes is refused too) and report with
    /// [`Session::recorded`]. Only deltas every member refuses alike: a
    /// removed member's beside its removal's frontier.
    Refuse(Vec<SignedDelta>),
    /// The session is over: what it ingested, or why an anti-entropy round
    /// failed.
    Done(Result<Ingested, String>),
}

/// What the session waits for.
#[derive(Debug)]
enum Waiting {
    /// Outcomes of the deltas with these ids (their bodies went to be
    /// applied: kept here too, a large batch would be held twice), after
    /// those missing parents were held: what they miss, how many.
    Applied {
        ids: Vec<DeltaId>,
        missing: Vec<DeltaId>,
        waiting: usize,
    },
    /// Refusals recorded; then these judged deltas are applied.
    Recorded(Vec<SignedDelta>),
    /// Outcomes of deltas retried after a snapshot: only counted.
    Retried,
    /// The peer's heads (an anti-entropy round's first question).
    Heads,
    /// Missing deltas (`first`: an anti-entropy round's, whose failure
    /// ends the round with an error).
    Deltas { first: bool },
    /// The peer's snapshot (`retry`: then retry the held deltas).
    Snapshot { retry: bool },
    /// The result of joining a snapshot.
    Joined { retry: bool },
    /// Nothing: the session is over.
    Nothing,
}

/// A sync session of one context with one peer.
#[derive(Debug)]
pub struct Session<'p> {
    ctx: ContextId,
    pending: &'p Pending,
    /// Whether it may ask the peer (gossip sessions may not).
    fetching: bool,
    /// Whether the peer's snapshot may be taken (it may write).
    snapshots: bool,
    fetched: usize,
    /// Whether a delta missing parents found no room in [`Pending`].
    overflowed: bool,
    /// Deltas refused for good so far: recorded, so not a gap.
    for_good: u64,
    out: Ingested,
    waiting: Waiting,
}

impl<'p> Session<'p> {
    /// A session over what gossip brought: nothing is asked of anyone, and
    /// deltas whose parents are missing are held (gossip reorders; the
    /// parents are usually a few messages behind).
    pub fn gossip(ctx: ContextId, pending: &'p Pending) -> Session<'p> {
        Session::new(ctx, pending, false)
    }

    /// A catch-up session with a peer that may write: missing parents are
    /// fetched from it, and its snapshot joined if the gap is too wide.
    pub fn catch_up(ctx: ContextId, pending: &'p Pending) -> Session<'p> {
        Session::new(ctx, pending, true)
    }

    fn new(ctx: ContextId, pending: &'p Pending, fetching: bool) -> Session<'p> {
        Session {
            ctx,
            pending,
            fetching,
            snapshots: true,
            fetched: 0,
            overflowed: false,
            for_good: 0,
            out: Ingested::default(),
            waiting: Waiting::Nothing,
        }
    }

    /// The same session with a peer that may read but not write: its deltas
    /// are taken (each is judged like any other), its snapshot is not (a
    /// snapshot is state taken on trust).
    pub fn without_snapshots(mut self) -> Session<'p> {
        self.snapshots = false;
        self
    }

    /// Starts an anti-entropy round: compare heads with the peer and pull
    /// what this replica lacks.
    pub fn compare(&mut self) -> Step {
        self.waiting = Waiting::Heads;
        Step::Fetch(Request::Heads {
            context: self.ctx.0,
        })
    }

    /// Takes the peer's whole state (a new replica's first): fetches its
    /// snapshot and joins it.
    pub fn snapshot(&mut self) -> Step {
        self.ask_snapshot(false)
    }

    /// Offers deltas to merge.
    pub fn offer(
        &mut self,
        deltas: Vec<SignedDelta>,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        self.judge(deltas, view, authority)
    }

    /// Offers the deltas held for this context (their parents still
    /// missing after a grace period), to fetch what they wait for.
    pub fn resolve(&mut self, view: &impl DagView, authority: &Authority<'_>) -> Step {
        let held = self.pending.take(&self.ctx);
        self.judge(held, view, authority)
    }

    /// The outcomes of the deltas of the last [`Step::Apply`], in order.
    pub fn applied(
        &mut self,
        outcomes: Vec<Outcome>,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Applied {
                ids,
                missing,
                waiting,
            } => self.settle(ids, (missing, waiting), outcomes, view, authority),
            Waiting::Retried => {
                self.out.merged += outcomes
                    .iter()
                    .filter(|o| matches!(o, Outcome::Merged))
                    .count() as u64;
                self.done()
            }
            other => self.unexpected(other, "apply outcomes"),
        }
    }

    /// The peer's answer to the last [`Step::Fetch`] (or why none came).
    pub fn answered(
        &mut self,
        answer: Result<Response, String>,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Heads => self.on_heads(answer, view),
            Waiting::Deltas { first } => self.on_deltas(answer, first, view, authority),
            Waiting::Snapshot { retry } => match answer {
                Ok(Response::Snapshot(s)) => {
                    self.waiting = Waiting::Joined { retry };
                    Step::Join(s)
                }
                Ok(Response::Refused(why)) => {
                    self.snapshot_failed(retry, format!("peer refused the snapshot: {why}"))
                }
                Ok(other) => self.snapshot_failed(
                    retry,
                    format!("unexpected answer to a snapshot request: {other:?}"),
                ),
                Err(e) => self.snapshot_failed(retry, e),
            },
            other => self.unexpected(other, "an answer"),
        }
    }

    /// Which deltas of the last [`Step::Refuse`] were recorded (those that
    /// verify), or why none was. What waited for the recorded ones is
    /// judged again with the rest.
    pub fn recorded(
        &mut self,
        result: Result<Vec<DeltaId>, String>,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Recorded(mut batch) => {
                // What is not recorded (forged, or the store failed): what
                // builds on it waits, as for any refused parent.
                match result {
                    Err(e) => {
                        tracing::warn!(context = %bs58::encode(self.ctx.0).into_string(), error = %e, "recording refused deltas failed");
                    }
                    Ok(ids) => batch.extend(self.pending.released(&self.ctx, &ids)),
                }
                if batch.is_empty() {
                    return self.after_merge(Vec::new(), 0, view, authority);
                }
                self.judge(batch, view, authority)
            }
            other => self.unexpected(other, "recorded refusals"),
        }
    }

    /// Whether joining the last [`Step::Join`] snapshot worked.
    pub fn joined(
        &mut self,
        result: Result<(), String>,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Joined { retry } => match result {
                Ok(()) => {
                    self.out.snapshot = true;
                    if !retry {
                        return self.done();
                    }
                    // Deltas held for parents now find them as stubs,
                    // judged again: governance came with the snapshot.
                    // Those refused for good are recorded when they come
                    // again.
                    let held = self.pending.take(&self.ctx);
                    let verdicts = self.verdicts(&held, view, authority);
                    let mut batch = Vec::with_capacity(held.len());
                    for (d, verdict) in held.into_iter().zip(verdicts) {
                        if self.count(verdict) == Some(true) {
                            batch.push(d);
                        }
                    }
                    if batch.is_empty() {
                        return self.done();
                    }
                    self.waiting = Waiting::Retried;
                    Step::Apply(batch)
                }
                Err(e) => self.snapshot_failed(retry, e),
            },
            other => self.unexpected(other, "a joined snapshot"),
        }
    }

    fn done(&mut self) -> Step {
        self.waiting = Waiting::Nothing;
        Step::Done(Ok(std::mem::take(&mut self.out)))
    }

    fn fail(&mut self, why: String) -> Step {
        self.waiting = Waiting::Nothing;
        Step::Done(Err(why))
    }

    fn unexpected(&mut self, was: Waiting, got: &str) -> Step {
        self.fail(format!("sync session got {got} while waiting for {was:?}"))
    }

    /// A snapshot could not be had: a catch-up records why and ends; an
    /// anti-entropy round that needed it fails.
    fn snapshot_failed(&mut self, retry: bool, why: String) -> Step {
        if retry {
            self.out.last_rejection = Some(why);
            self.done()
        } else {
            self.fail(why)
        }
    }

    fn ask_snapshot(&mut self, retry: bool) -> Step {
        if !self.snapshots {
            self.out.last_rejection =
                Some("the gap needs a snapshot, and this peer may not write".into());
            return self.done();
        }
        self.waiting = Waiting::Snapshot { retry };
        Step::Fetch(Request::Snapshot {
            context: self.ctx.0,
        })
    }

    /// Judges `todo` and asks for the accepted ones to be applied.
    fn judge(
        &mut self,
        todo: Vec<SignedDelta>,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        if todo.is_empty() {
            return self.after_merge(Vec::new(), 0, view, authority);
        }
        let verdicts = self.verdicts(&todo, view, authority);
        let mut batch = Vec::with_capacity(todo.len());
        let mut for_good = Vec::new();
        for (d, verdict) in todo.into_iter().zip(verdicts) {
            match self.count(verdict) {
                Some(true) => batch.push(d),
                Some(false) => for_good.push(d),
                None => {}
            }
        }
        if !for_good.is_empty() {
            self.for_good += for_good.len() as u64;
            self.waiting = Waiting::Recorded(batch);
            return Step::Refuse(for_good);
        }
        if batch.is_empty() {
            return self.after_merge(Vec::new(), 0, view, authority);
        }
        let (batch, missing, waiting) = self.hold_orphans(batch, view);
        if batch.is_empty() {
            return self.after_merge(missing, waiting, view, authority);
        }
        self.waiting = Waiting::Applied {
            ids: batch.iter().map(|d| d.delta.id()).collect(),
            missing,
            waiting,
        };
        Step::Apply(batch)
    }

    /// Holds the deltas of `batch` whose parents are neither in the replica
    /// nor before them in `batch`, and returns the rest, with what the held
    /// miss and how many they are.
    fn hold_orphans(
        &mut self,
        batch: Vec<SignedDelta>,
        view: &impl DagView,
    ) -> (Vec<SignedDelta>, Vec<DeltaId>, usize) {
        let mut ready = Vec::with_capacity(batch.len());
        let mut ready_ids = HashSet::new();
        let (mut missing, mut waiting) = (Vec::new(), 0usize);
        for d in batch {
            let id = d.delta.id();
            // A view that cannot answer leaves the judgement to the apply.
            let lacking: Vec<DeltaId> = d
                .delta
                .parents
                .iter()
                .filter(|p| !ready_ids.contains(*p) && !view.has(p).unwrap_or(true))
                .copied()
                .collect();
            if lacking.is_empty() {
                ready_ids.insert(id);
                ready.push(d);
                continue;
            }
            waiting += 1;
            if !self.pending.hold(id, d, &lacking) {
                self.overflowed = true;
            }
            missing.extend(lacking);
        }
        (ready, missing, waiting)
    }

    /// Counts a verdict (deferred, or refused with why): `Some(true)` to
    /// apply, `Some(false)` to record refused for good.
    fn count(&mut self, verdict: Verdict) -> Option<bool> {
        let (why, record) = match verdict {
            Verdict::Take => return Some(true),
            // Not a refusal: fetched and judged again once the
            // governance it names has arrived (anti-entropy pulls it).
            Verdict::Later(why) => {
                self.out.deferred += 1;
                tracing::debug!(context = %bs58::encode(self.ctx.0).into_string(), %why, "delta deferred");
                return None;
            }
            Verdict::Refuse(why) => (why, None),
            Verdict::RefuseForGood(why) => (why, Some(false)),
        };
        self.out.rejected += 1;
        tracing::warn!(context = %bs58::encode(self.ctx.0).into_string(), %why, "delta rejected");
        self.out.last_rejection = Some(why);
        record
    }

    /// What becomes of each of `todo`.
    fn verdicts(
        &self,
        todo: &[SignedDelta],
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Vec<Verdict> {
        verdicts(
            &self.ctx,
            todo,
            view,
            |id| self.pending.lineage(&self.ctx, id),
            authority,
        )
    }

    /// Takes the outcomes of an applied batch (`held`: what the deltas held
    /// before it miss, and how many they are): releases what waited on the
    /// merged.
    fn settle(
        &mut self,
        ids: Vec<DeltaId>,
        held: (Vec<DeltaId>, usize),
        outcomes: Vec<Outcome>,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        if outcomes.len() != ids.len() {
            return self.fail(format!(
                "{} outcomes for a batch of {} deltas",
                outcomes.len(),
                ids.len()
            ));
        }
        let mut merged = Vec::new();
        let (mut missing, mut waiting) = held;
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Merged => merged.push(id),
                Outcome::Duplicate => {}
                // Its parents were here when it was judged (a replica only
                // loses deltas to a resync): its body is gone, and a later
                // round fetches it again, after the parents fetched now.
                Outcome::MissingParents(m) => {
                    waiting += 1;
                    missing.extend(m);
                }
                Outcome::Gone => return self.done(),
                Outcome::Refused(why) => {
                    self.out.rejected += 1;
                    tracing::warn!(
                        context = %bs58::encode(self.ctx.0).into_string(),
                        error = %why,
                        "delta rejected"
                    );
                    self.out.last_rejection = Some(why);
                }
            }
        }
        self.out.merged += merged.len() as u64;
        if !merged.is_empty() {
            // What waited on these may apply now (it is held again if not).
            let released = self.pending.released(&self.ctx, &merged);
            if !released.is_empty() {
                return self.judge(released, view, authority);
            }
        }
        self.after_merge(missing, waiting, view, authority)
    }

    /// After a merge: done, or fetch the parents still missing, or fall
    /// back to a snapshot.
    fn after_merge(
        &mut self,
        mut missing: Vec<DeltaId>,
        waiting: usize,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        if !self.fetching {
            return self.done();
        }
        if waiting > 0 {
            tracing::info!(
                context = %bs58::encode(self.ctx.0).into_string(),
                waiting,
                missing = missing.len(),
                "deltas wait for their parents; fetching them"
            );
            if self.out.rejected > self.for_good {
                // A parent was refused (say its author was removed since):
                // the gap cannot be walked, but a writer's snapshot closes it.
                return self.ask_snapshot(true);
            }
            if self.overflowed {
                // The gap is wider than this node holds deltas for: walked
                // on, the deltas fetched could not be kept until their
                // parents arrive (a walk that never ends), so a writer's
                // snapshot closes it.
                return self.ask_snapshot(true);
            }
        }
        missing.sort_unstable();
        missing.dedup();
        // Parents held from an earlier, interrupted walk carry on from there.
        let held = self.pending.take_some(&self.ctx, &missing);
        if !held.is_empty() {
            missing.retain(|m| !held.iter().any(|h| h.delta.id() == *m));
            if missing.is_empty() {
                return self.judge(held, view, authority);
            }
            self.pending.hold_all(held);
        }
        if missing.is_empty() {
            return self.done();
        }
        if self.fetched >= MAX_WALK {
            return self.ask_snapshot(true);
        }
        let have = match view.heads() {
            Ok(h) => h,
            Err(e) => {
                self.out.last_rejection = Some(e.to_string());
                return self.done();
            }
        };
        self.waiting = Waiting::Deltas { first: false };
        Step::Fetch(Request::Deltas {
            context: self.ctx.0,
            ids: missing,
            have,
        })
    }

    fn on_heads(&mut self, answer: Result<Response, String>, view: &impl DagView) -> Step {
        let (heads, root) = match answer {
            Ok(Response::Heads { heads, root }) => (heads, root),
            Ok(Response::Refused(why)) => return self.fail(format!("peer refused: {why}")),
            Ok(other) => {
                return self.fail(format!("unexpected answer to a heads request: {other:?}"));
            }
            Err(e) => return self.fail(e),
        };
        let compared = (|| -> Result<Option<Vec<DeltaId>>, ViewError> {
            if view.root()? == root {
                return Ok(None);
            }
            let mut unknown = Vec::new();
            for h in heads {
                if !view.has(&h)? {
                    unknown.push(h);
                }
            }
            Ok(Some(unknown))
        })();
        match compared {
            Err(e) => self.fail(e.to_string()),
            // Level, or the peer is behind or concurrent: it pulls from us.
            Ok(None) => self.done(),
            Ok(Some(unknown)) if unknown.is_empty() => self.done(),
            Ok(Some(unknown)) => match view.heads() {
                Ok(have) => {
                    self.waiting = Waiting::Deltas { first: true };
                    Step::Fetch(Request::Deltas {
                        context: self.ctx.0,
                        ids: unknown,
                        have,
                    })
                }
                Err(e) => self.fail(e.to_string()),
            },
        }
    }

    fn on_deltas(
        &mut self,
        answer: Result<Response, String>,
        first: bool,
        view: &impl DagView,
        authority: &Authority<'_>,
    ) -> Step {
        let (deltas, folded) = match answer {
            Ok(Response::Deltas { deltas, folded }) => (deltas, folded),
            Ok(other) if first => {
                return self.fail(format!("unexpected answer to a deltas request: {other:?}"));
            }
            Err(e) if first => return self.fail(e),
            Ok(other) => {
                tracing::debug!(?other, "peer would not send deltas");
                return self.done();
            }
            Err(e) => {
                tracing::debug!(error = %e, "fetching parents failed; anti-entropy retries");
                return self.done();
            }
        };
        // Ids the peer holds only folded into a snapshot it joined: a gap
        // only if this replica lacks them too (the peer's walk stops at our
        // heads, not at everything we hold).
        let mut gap = false;
        for id in &folded {
            match view.has(id) {
                Ok(true) => {}
                Ok(false) => gap = true,
                Err(e) => {
                    self.out.last_rejection = Some(e.to_string());
                    return self.done();
                }
            }
        }
        if gap {
            return self.ask_snapshot(!first);
        }
        // Each encoded delta is dropped as it is decoded: an answer is up
        // to `serve::MAX_ANSWER_BYTES`, and is not held twice.
        let got: Vec<SignedDelta> = deltas
            .into_iter()
            .filter_map(|b| SignedDelta::from_bytes(&b).ok())
            .collect();
        if got.is_empty() && !first {
            // The peer has not seen them either; another will.
            return self.done();
        }
        self.fetched += got.len();
        self.judge(got, view, authority)
    }
}

/// What becomes of each of `todo`, deltas offered for `ctx`: judged by
/// `authority` at the governance they name (a parent's, from `todo` or the
/// replica), and those of removed members by the frontier their removal
/// named, walked over `todo`, the deltas `held` aside and the replica.
pub(crate) fn verdicts(
    ctx: &ContextId,
    todo: &[SignedDelta],
    view: &impl DagView,
    held: impl Fn(&DeltaId) -> Option<Lineage>,
    authority: &Authority<'_>,
) -> Vec<Verdict> {
    let cuts: HashMap<DeltaId, &[OpId]> = todo
        .iter()
        .map(|d| (d.delta.id(), d.delta.governance.as_slice()))
        .collect();
    let verdicts: Vec<Result<(), Denial>> = todo
        .iter()
        .map(|d| {
            if d.delta.context != *ctx {
                return Err(Denial::Refused("a delta of another context".into()));
            }
            // A parent's governance: from this batch or the replica (a
            // parent folded into a snapshot names none here).
            let parents: Vec<Vec<OpId>> = d
                .delta
                .parents
                .iter()
                .filter_map(|p| match cuts.get(p) {
                    Some(c) => Some(c.to_vec()),
                    None => view.governance(p).ok().flatten(),
                })
                .collect();
            authority(&d.delta, &parents)
        })
        .collect();
    within_frontiers(todo, verdicts, view, held)
}

/// Settles the verdicts on deltas of removed members: each is taken only
/// if it is in the causal past of the frontier its removal named, walked
/// over `todo`, the deltas `held` aside and the replica; judged again
/// later if that past is not all here yet. One walk per frontier.
fn within_frontiers(
    todo: &[SignedDelta],
    verdicts: Vec<Result<(), Denial>>,
    view: &impl DagView,
    held: impl Fn(&DeltaId) -> Option<Lineage>,
) -> Vec<Verdict> {
    let frontiers: HashSet<Vec<[u8; 32]>> = verdicts
        .iter()
        .filter_map(|v| match v {
            Err(Denial::BeforeFrontier(heads)) => Some(heads.clone()),
            _ => None,
        })
        .collect();
    if frontiers.is_empty() {
        return verdicts.into_iter().map(Verdict::from).collect();
    }
    let here: HashMap<DeltaId, &SignedDelta> = todo.iter().map(|d| (d.delta.id(), d)).collect();
    let lineage = |id: &DeltaId| {
        // What is known aside comes first: it can say a delta of `todo`
        // is walked no further.
        if let Some(l) = held(id) {
            return l;
        }
        if let Some(d) = here.get(id) {
            return Lineage::Held {
                parents: d.delta.parents.clone(),
            };
        }
        // A replica that cannot be read is walked no further.
        view.lineage(id).unwrap_or(Lineage::Unknown)
    };
    let pasts: HashMap<Vec<[u8; 32]>, Past> = frontiers
        .into_iter()
        .map(|key| {
            let heads: Vec<DeltaId> = key.iter().map(|h| DeltaId(*h)).collect();
            (key, Past::walk(&heads, lineage))
        })
        .collect();
    todo.iter()
        .zip(verdicts)
        .map(|(d, v)| match v {
            // Known here already (folded into a snapshot this replica
            // joined): applying it changes nothing.
            Err(Denial::BeforeFrontier(_)) if view.has(&d.delta.id()).unwrap_or(false) => {
                Verdict::Take
            }
            Err(Denial::BeforeFrontier(heads)) => {
                match pasts.get(&heads).and_then(|p| p.holds(&d.delta.id())) {
                    Some(true) => Verdict::Take,
                    Some(false) => Verdict::RefuseForGood(format!(
                        "author {} was removed or made read-only, and this delta is not one its removal accepted (written after it, or never seen by its remover)",
                        hex::encode(d.delta.author.0)
                    )),
                    None => Verdict::Later(
                        "its author was removed or made read-only, and the deltas its removal accepted are not all here yet".into(),
                    ),
                }
            }
            other => Verdict::from(other),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]
    use std::collections::{BTreeMap, HashSet};

    use ed25519_dalek::SigningKey;
    use mero_crdt::{Author, Hlc};

    use super::*;

    /// A DAG of delta ids and nothing else.
    #[derive(Default)]
    struct Dag {
        known: BTreeMap<DeltaId, Vec<OpId>>,
        lineage: BTreeMap<DeltaId, Lineage>,
        heads: Vec<DeltaId>,
    }

    impl DagView for Dag {
        fn has(&self, id: &DeltaId) -> Result<bool, ViewError> {
            Ok(self.known.contains_key(id))
        }
        fn governance(&self, id: &DeltaId) -> Result<Option<Vec<OpId>>, ViewError> {
            Ok(self.known.get(id).cloned())
        }
        fn lineage(&self, id: &DeltaId) -> Result<Lineage, ViewError> {
            Ok(self.lineage.get(id).cloned().unwrap_or(Lineage::Unknown))
        }
        fn heads(&self) -> Result<Vec<DeltaId>, ViewError> {
            Ok(self.heads.clone())
        }
        fn root(&self) -> Result<Hash, ViewError> {
            Ok([0; 32])
        }
    }

    fn delta(n: u8, parents: Vec<DeltaId>) -> SignedDelta {
        SignedDelta::sign(
            Delta {
                version: 1,
                context: ContextId([1; 32]),
                author: Author([n; 32]),
                parents,
                governance: vec![],
                layout: 0,
                hlc: Hlc {
                    millis: u64::from(n),
                    counter: 0,
                },
                ops: vec![],
                events: vec![],
            },
            &SigningKey::from_bytes(&[n; 32]),
        )
    }

    fn anyone(_: &Delta, _: &[Vec<OpId>]) -> Result<(), Denial> {
        Ok(())
    }

    /// Applies a step's deltas to `dag` as a replica would.
    fn apply(dag: &mut Dag, batch: &[SignedDelta]) -> Vec<Outcome> {
        batch
            .iter()
            .map(|d| {
                let id = d.delta.id();
                if dag.known.contains_key(&id) {
                    return Outcome::Duplicate;
                }
                let missing: Vec<DeltaId> = d
                    .delta
                    .parents
                    .iter()
                    .filter(|p| !dag.known.contains_key(p))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    return Outcome::MissingParents(missing);
                }
                dag.known.insert(id, vec![]);
                dag.lineage.insert(
                    id,
                    Lineage::Held {
                        parents: d.delta.parents.clone(),
                    },
                );
                let parents: HashSet<_> = d.delta.parents.iter().collect();
                dag.heads.retain(|h| !parents.contains(h));
                dag.heads.push(id);
                Outcome::Merged
            })
            .collect()
    }

    /// Deltas whose parents are neither here nor before them in the batch
    /// are held at once; only the rest go to be applied (and the session
    /// keeps their ids, not a second copy of their bodies).
    #[test]
    fn only_deltas_whose_parents_are_here_or_before_them_are_sent_to_be_applied() {
        let pending = Pending::default();
        let mut dag = Dag::default();
        let ctx = ContextId([1; 32]);
        let a = delta(1, vec![]);
        let b = delta(2, vec![a.delta.id()]);
        let orphan = delta(3, vec![DeltaId([8; 32])]);
        let mut s = Session::gossip(ctx, &pending);
        let Step::Apply(batch) = s.offer(vec![a.clone(), orphan, b.clone()], &dag, &anyone) else {
            panic!("expected an apply step");
        };
        let ids: Vec<_> = batch.iter().map(|d| d.delta.id()).collect();
        assert_eq!(ids, vec![a.delta.id(), b.delta.id()]);
        assert_eq!(pending.waiting(&ctx), 1);
        let outcomes = apply(&mut dag, &batch);
        let Step::Done(Ok(i)) = s.applied(outcomes, &dag, &anyone) else {
            panic!("a gossip session asks nobody");
        };
        assert_eq!(i.merged, 2);
        assert_eq!(pending.waiting(&ctx), 1);
    }

    #[test]
    fn gossip_holds_an_orphan_and_its_parent_releases_it() {
        let pending = Pending::default();
        let mut dag = Dag::default();
        let a = delta(1, vec![]);
        let b = delta(2, vec![a.delta.id()]);
        let mut s = Session::gossip(ContextId([1; 32]), &pending);
        // Held, never sent to be applied; a gossip session asks nobody.
        let Step::Done(Ok(i)) = s.offer(vec![b.clone()], &dag, &anyone) else {
            panic!("expected the orphan held and the session done");
        };
        assert_eq!((i.merged, pending.waiting(&ContextId([1; 32]))), (0, 1));

        let mut s = Session::gossip(ContextId([1; 32]), &pending);
        let mut step = s.offer(vec![a], &dag, &anyone);
        let mut merged = 0;
        loop {
            step = match step {
                Step::Apply(batch) => {
                    let o = apply(&mut dag, &batch);
                    s.applied(o, &dag, &anyone)
                }
                Step::Done(r) => {
                    merged += r.unwrap().merged;
                    break;
                }
                other => panic!("unexpected {other:?}"),
            };
        }
        assert_eq!(merged, 2, "the parent, then the child it released");
        assert_eq!(pending.waiting(&ContextId([1; 32])), 0);
        assert_eq!(dag.heads, vec![b.delta.id()]);
    }

    /// Author 2 was removed; the removal named `f` as the context's heads.
    #[test]
    fn a_removed_members_delta_is_taken_only_behind_its_removals_frontier() {
        let ctx = ContextId([1; 32]);
        let a = delta(1, vec![]);
        let m = delta(2, vec![a.delta.id()]);
        let f = delta(3, vec![m.delta.id()]);
        // Beside the frontier: signed later, or never seen by the remover.
        let beside = delta(2, vec![]);
        let frontier = vec![f.delta.id().0];
        let judge = |d: &Delta, _: &[Vec<OpId>]| {
            if d.author.0 == [2; 32] {
                Err(Denial::BeforeFrontier(frontier.clone()))
            } else {
                Ok(())
            }
        };
        let drive = |s: &mut Session<'_>, mut step: Step, dag: &mut Dag| loop {
            step = match step {
                Step::Apply(batch) => {
                    let o = apply(dag, &batch);
                    s.applied(o, dag, &judge)
                }
                // Recorded as known, with no effect.
                Step::Refuse(deltas) => {
                    let ids: Vec<DeltaId> = deltas.iter().map(|d| d.delta.id()).collect();
                    for id in &ids {
                        dag.known.insert(*id, vec![]);
                        dag.lineage.insert(*id, Lineage::Folded);
                    }
                    s.recorded(Ok(ids), dag, &judge)
                }
                Step::Done(r) => return r.unwrap(),
                other => panic!("unexpected {other:?}"),
            };
        };

        // Behind the frontier, in the same batch as it: taken.
        let pending = Pending::default();
        let mut dag = Dag::default();
        let mut s = Session::gossip(ctx, &pending);
        let step = s.offer(vec![f.clone(), m.clone(), a.clone()], &dag, &judge);
        let i = drive(&mut s, step, &mut dag);
        assert_eq!((i.merged, i.rejected), (3, 0), "{i:?}");

        // Beside it, once the frontier is here: refused for good, with
        // why, and recorded, so a member's delta built on it (by a node
        // that merged it before it heard of the removal) still applies,
        // released from the held deltas.
        let child = delta(4, vec![beside.delta.id(), f.delta.id()]);
        let mut s = Session::gossip(ctx, &pending);
        let step = s.offer(vec![child.clone()], &dag, &judge);
        assert_eq!(
            drive(&mut s, step, &mut dag).merged,
            0,
            "held for its parent"
        );
        let mut s = Session::gossip(ctx, &pending);
        let step = s.offer(vec![beside.clone()], &dag, &judge);
        let i = drive(&mut s, step, &mut dag);
        assert_eq!((i.merged, i.rejected), (1, 1), "{i:?}");
        assert!(
            i.last_rejection
                .as_deref()
                .is_some_and(|w| w.contains("not one its removal accepted")),
            "{i:?}"
        );
        assert_eq!(dag.heads, vec![child.delta.id()]);

        // On a replica that lacks the frontier: judged again later.
        let mut behind = Dag::default();
        let mut s = Session::gossip(ctx, &pending);
        let step = s.offer(vec![beside], &behind, &judge);
        let i = drive(&mut s, step, &mut behind);
        assert_eq!((i.merged, i.rejected, i.deferred), (0, 0, 1));
    }

    #[test]
    fn a_catch_up_fetches_missing_parents_and_a_refusal_with_a_gap_takes_a_snapshot() {
        let pending = Pending::default();
        let mut dag = Dag::default();
        let ctx = ContextId([1; 32]);
        let a = delta(1, vec![]);
        let b = delta(2, vec![a.delta.id()]);
        let forged = delta(3, vec![]);
        let refuse_3 = |d: &Delta, _: &[Vec<OpId>]| {
            if d.author.0 == [3; 32] {
                Err(Denial::Refused("not a writer".into()))
            } else {
                Ok(())
            }
        };
        // A refused delta is never applied; it is counted, with why.
        let mut s = Session::catch_up(ctx, &pending);
        let Step::Done(Ok(i)) = s.offer(vec![forged.clone()], &dag, &refuse_3) else {
            panic!("nothing to apply");
        };
        assert_eq!(
            (i.rejected, i.last_rejection.as_deref()),
            (1, Some("not a writer"))
        );

        // A missing parent is fetched, with the asker's heads, and both apply.
        let mut s = Session::catch_up(ctx, &pending);
        let Step::Fetch(Request::Deltas { ids, have, .. }) =
            s.offer(vec![b.clone()], &dag, &refuse_3)
        else {
            panic!("expected a fetch of the missing parent");
        };
        assert_eq!((ids, have), (vec![a.delta.id()], vec![]));
        let mut step = s.answered(
            Ok(Response::Deltas {
                deltas: vec![a.to_bytes()],
                folded: vec![],
            }),
            &dag,
            &refuse_3,
        );
        while let Step::Apply(batch) = step {
            let o = apply(&mut dag, &batch);
            step = s.applied(o, &dag, &refuse_3);
        }
        let Step::Done(Ok(i)) = step else {
            panic!("expected the session to end, got {step:?}");
        };
        assert_eq!(i.merged, 2);
        assert_eq!(dag.heads, vec![b.delta.id()]);

        // A refusal and a gap in one session: the walk cannot close it, a
        // writer's snapshot does; a peer that may not write is not asked.
        let orphan = delta(4, vec![DeltaId([8; 32])]);
        for trusted in [true, false] {
            let s = Session::catch_up(ctx, &pending);
            let mut s = if trusted { s } else { s.without_snapshots() };
            let step = s.offer(vec![forged.clone(), orphan.clone()], &dag, &refuse_3);
            if trusted {
                assert!(
                    matches!(step, Step::Fetch(Request::Snapshot { .. })),
                    "{step:?}"
                );
            } else {
                let Step::Done(Ok(i)) = step else {
                    panic!("expected the session to end, got {step:?}");
                };
                assert!(i.last_rejection.unwrap().contains("may not write"));
            }
        }
    }

    /// A gap wider than the node holds deltas for is closed by a snapshot:
    /// walked on, the deltas fetched could not be kept for their parents,
    /// and the walk would fetch the same ones again and again.
    #[test]
    fn a_walk_that_fills_the_held_deltas_takes_a_snapshot_instead() {
        let ctx = ContextId([1; 32]);
        let orphan = delta(4, vec![DeltaId([8; 32])]);
        let step_after = |pending: &Pending| {
            let dag = Dag::default();
            let mut s = Session::catch_up(ctx, pending);
            s.offer(vec![orphan.clone()], &dag, &anyone)
        };
        // With room, its parent is fetched.
        let step = step_after(&Pending::default());
        assert!(
            matches!(step, Step::Fetch(Request::Deltas { .. })),
            "{step:?}"
        );
        // Full, a snapshot is asked for.
        let full = Pending::default();
        for i in 0..crate::sync::pending::MAX_PENDING as u32 {
            let mut id = [0; 32];
            id[..4].copy_from_slice(&i.to_le_bytes());
            assert!(full.hold(DeltaId(id), delta(1, vec![]), &[DeltaId([7; 32])]));
        }
        let step = step_after(&full);
        assert!(
            matches!(step, Step::Fetch(Request::Snapshot { .. })),
            "{step:?}"
        );
    }

    #[test]
    fn an_anti_entropy_round_asks_heads_then_deltas_and_takes_a_folded_gap_as_a_snapshot() {
        let pending = Pending::default();
        let dag = Dag::default();
        let mut s = Session::catch_up(ContextId([1; 32]), &pending);
        assert!(matches!(s.compare(), Step::Fetch(Request::Heads { .. })));
        let step = s.answered(
            Ok(Response::Heads {
                heads: vec![DeltaId([9; 32])],
                root: [1; 32],
            }),
            &dag,
            &anyone,
        );
        assert!(
            matches!(step, Step::Fetch(Request::Deltas { .. })),
            "{step:?}"
        );
        let step = s.answered(
            Ok(Response::Deltas {
                deltas: vec![],
                folded: vec![DeltaId([9; 32])],
            }),
            &dag,
            &anyone,
        );
        assert!(
            matches!(step, Step::Fetch(Request::Snapshot { .. })),
            "{step:?}"
        );
        let step = s.answered(
            Ok(Response::Snapshot(StateSnapshot::default())),
            &dag,
            &anyone,
        );
        assert!(matches!(step, Step::Join(_)), "{step:?}");
        let Step::Done(Ok(i)) = s.joined(Ok(()), &dag, &anyone) else {
            panic!("expected the round to end");
        };
        assert!(i.snapshot);

        let mut s = Session::catch_up(ContextId([1; 32]), &pending);
        s.compare();
        let Step::Done(Err(e)) = s.answered(Ok(Response::Refused("no".into())), &dag, &anyone)
        else {
            panic!("a refused round fails");
        };
        assert!(e.contains("peer refused"), "{e}");
    }
}
