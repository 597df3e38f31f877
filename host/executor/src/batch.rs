//! One batch: each context's share of it, what it will write, whom it will
//! answer, and what the batch still committing left behind. The jobs that
//! need no wasm (taking a context's share, merging a remote delta, joining a
//! snapshot) are pure over the batch's snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};

use mero_crdt::overlay::{Overlay, Writes};
use mero_crdt::{Clock, ContextId, DeltaId, Event, Hash, Op, SignedDelta, StateSnapshot};
use mero_runtime::{Intent, PrivateOverlay, Runtime, State, handler_name, state_over};
use mero_store::{ContextMeta, Snapshot};
use tokio::sync::oneshot;

use crate::error::ExecError;
use crate::job::{Applied, CallOutcome, ContextCreated};

/// One context's share of a batch.
pub(crate) struct Work {
    pub(crate) meta: ContextMeta,
    pub(crate) state: Option<State>,
    pub(crate) private: Option<PrivateOverlay>,
    pub(crate) heads: Vec<DeltaId>,
    pub(crate) created: bool,
    pub(crate) deleted: bool,
    /// With `deleted`: only its replicated state goes (a resync), `meta`
    /// stays as its record.
    pub(crate) reset: bool,
    pub(crate) deltas: u64,
    /// A snapshot was joined: the heads are written as a whole.
    pub(crate) joined: bool,
    /// Its metadata changed (an upgrade): written at commit.
    pub(crate) meta_changed: bool,
}

/// A job that ran into the batch, waiting for the batch to be durable to
/// hear back.
pub(crate) enum Answer {
    Upgrade {
        reply: oneshot::Sender<Result<crate::job::Upgraded, ExecError>>,
        ctx: ContextId,
        writes: usize,
        heads: Vec<DeltaId>,
    },
    Call {
        reply: oneshot::Sender<Result<CallOutcome, ExecError>>,
        outcome: CallOutcome,
        ctx: ContextId,
    },
    Create {
        reply: oneshot::Sender<Result<ContextCreated, ExecError>>,
        ctx: ContextId,
        delta: DeltaId,
    },
    Delete {
        reply: oneshot::Sender<Result<bool, ExecError>>,
        existed: bool,
    },
    Apply {
        reply: oneshot::Sender<Result<Applied, ExecError>>,
        id: DeltaId,
        events: Vec<Event>,
    },
    Replica {
        reply: oneshot::Sender<Result<bool, ExecError>>,
    },
    Join {
        reply: oneshot::Sender<Result<Hash, ExecError>>,
        ctx: ContextId,
    },
}

pub(crate) struct Batch {
    pub(crate) snapshot: Snapshot,
    pub(crate) work: HashMap<ContextId, Work>,
    /// Deltas to store: merged ones signed, this node's signed at commit.
    pub(crate) deltas: Vec<(DeltaId, SignedDelta)>,
    /// This node's deltas in `deltas`, still to sign.
    pub(crate) unsigned: HashSet<DeltaId>,
    /// Snapshot entries joined, and delta ids recorded as stubs.
    pub(crate) joins: Vec<(ContextId, Vec<Op>, Vec<DeltaId>)>,
    /// Deltas refused for good, whose bodies are kept apart.
    pub(crate) refused: Vec<(ContextId, SignedDelta)>,
    /// The signed deltas joined snapshots carried (the node verified the
    /// entries against them): kept with their bodies, not as stubs, so
    /// this node's snapshots carry them on.
    pub(crate) joined_bodies: Vec<(ContextId, SignedDelta)>,
    /// What migrations wrote, per context, as whole entries: stored before
    /// the batch's deltas. A migration is the only job on its context in
    /// its batch, and the batch commits before the next one starts (so
    /// nothing builds on these writes before they are stored).
    pub(crate) migrations: Vec<(ContextId, Writes)>,
    pub(crate) answers: Vec<Answer>,
    /// What the batch before this one, still committing, left behind.
    carry: HashMap<ContextId, Carried>,
    /// Deltas of the batch still committing.
    carried_ids: HashSet<DeltaId>,
    /// Event handlers merged deltas leave to run: (context, delta, event
    /// index, method, data), stored with the deltas.
    pub(crate) handlers: Vec<(ContextId, DeltaId, u32, String, Vec<u8>)>,
    /// Bytes this node's calls in the batch wrote (their ops' keys and
    /// values): counted against the batch's byte cap with their arguments,
    /// since a call with small arguments may write much.
    pub(crate) written: usize,
}

/// A context as the previous batch left it, while that batch commits: the
/// next batch starts from here rather than from the snapshot, so the two
/// overlap (execute batch k+1 while batch k is written and synced).
pub(crate) struct Carried {
    meta: ContextMeta,
    heads: Vec<DeltaId>,
    state: Overlay<mero_store::ContextReader>,
    private: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    deleted: bool,
}

impl Batch {
    /// An empty batch over `snapshot`, on top of what the batch still
    /// committing (if any) left behind.
    pub(crate) fn new(
        snapshot: Snapshot,
        carry: HashMap<ContextId, Carried>,
        carried_ids: HashSet<DeltaId>,
    ) -> Batch {
        Batch {
            snapshot,
            work: HashMap::new(),
            deltas: Vec::new(),
            unsigned: HashSet::new(),
            joins: Vec::new(),
            refused: Vec::new(),
            joined_bodies: Vec::new(),
            migrations: Vec::new(),
            answers: Vec::new(),
            carry,
            carried_ids,
            handlers: Vec::new(),
            written: 0,
        }
    }

    /// Whether the batch still committing left writes of `ctx` this batch
    /// builds on.
    pub(crate) fn carries(&self, ctx: &ContextId) -> bool {
        self.carry.contains_key(ctx)
    }

    /// What the next batch needs to build on this one while it commits.
    pub(crate) fn carry_over(&mut self) -> HashMap<ContextId, Carried> {
        let mut carry = HashMap::new();
        for (ctx, work) in &mut self.work {
            let state = work
                .state
                .take()
                .map(|s| s.rebase(self.snapshot.context(*ctx)));
            carry.insert(
                *ctx,
                Carried {
                    meta: work.meta.clone(),
                    heads: work.heads.clone(),
                    state: state.unwrap_or_else(|| Overlay::new(self.snapshot.context(*ctx))),
                    private: work
                        .private
                        .as_ref()
                        .map(|p| p.writes().clone())
                        .unwrap_or_default(),
                    deleted: work.deleted,
                },
            );
        }
        carry
    }

    /// Whether the batch migrated `ctx`: later jobs on it wait for the next
    /// batch, which reads the migrated state from the store.
    pub(crate) fn migrating(&self, ctx: &ContextId) -> bool {
        self.migrations.iter().any(|(c, _)| c == ctx)
    }

    /// Whether a context exists as the batch sees it.
    pub(crate) fn exists(&self, ctx: &ContextId) -> bool {
        if let Some(w) = self.work.get(ctx) {
            return !w.deleted;
        }
        if let Some(c) = self.carry.get(ctx) {
            return !c.deleted;
        }
        matches!(self.snapshot.context_meta(ctx), Ok(Some(_)))
    }

    /// The batch's share of a context. Existing contexts take their metadata
    /// from the batch's snapshot, not from the job, which was read before
    /// earlier batches committed; a context created in this batch takes
    /// `meta`.
    pub(crate) fn work(
        &mut self,
        meta: &ContextMeta,
        creating: bool,
    ) -> Result<&mut Work, ExecError> {
        if !self.work.contains_key(&meta.id) {
            // The previous batch deleted it and is committing that: the
            // marker stays, so later jobs of this batch see it too.
            if self.carry.get(&meta.id).is_some_and(|c| c.deleted) {
                return Err(if creating {
                    ExecError::Store("the context is still being deleted; retry".into())
                } else {
                    ExecError::ContextNotFound
                });
            }
            let work = match self.carry.remove(&meta.id) {
                Some(c) if !c.deleted => Work {
                    meta: c.meta,
                    state: Some(Overlay::new(c.state.rebase(self.snapshot.context(meta.id)))),
                    private: Some(PrivateOverlay::over_pending(
                        self.snapshot.clone(),
                        meta.id,
                        c.private,
                    )),
                    heads: c.heads,
                    created: false,
                    deleted: false,
                    reset: false,
                    deltas: 0,
                    joined: false,
                    meta_changed: false,
                },
                _ => {
                    let current = if creating {
                        meta.clone()
                    } else {
                        self.snapshot
                            .context_meta(&meta.id)?
                            .ok_or(ExecError::ContextNotFound)?
                    };
                    Work {
                        meta: current,
                        state: Some(state_over(self.snapshot.context(meta.id))),
                        private: Some(PrivateOverlay::new(self.snapshot.clone(), meta.id)),
                        heads: if creating {
                            Vec::new()
                        } else {
                            self.snapshot.heads(&meta.id)?
                        },
                        created: false,
                        deleted: false,
                        reset: false,
                        deltas: 0,
                        joined: false,
                        meta_changed: false,
                    }
                }
            };
            self.work.insert(meta.id, work);
        }
        self.work
            .get_mut(&meta.id)
            .ok_or(ExecError::ContextNotFound)
    }

    /// Marks `ctx` deleted in this batch, dropping the deltas the batch had
    /// for it.
    pub(crate) fn delete(&mut self, ctx: ContextId) {
        self.deltas.retain(|(_, d)| d.delta.context != ctx);
        let meta = self.work.get(&ctx).map(|w| w.meta.clone());
        self.work.insert(
            ctx,
            Work {
                meta: meta.unwrap_or_else(|| placeholder_meta(ctx)),
                state: None,
                private: None,
                heads: Vec::new(),
                created: false,
                deleted: true,
                reset: false,
                deltas: 0,
                joined: false,
                meta_changed: false,
            },
        );
    }

    /// Joins a snapshot's entries into the batch's state of `ctx` and takes
    /// its deltas as known.
    pub(crate) fn join(
        &mut self,
        ctx: ContextId,
        snapshot: StateSnapshot,
    ) -> Result<(), ExecError> {
        if self.work.get(&ctx).is_some_and(|w| w.deleted) {
            return Err(ExecError::ContextNotFound);
        }
        let meta = placeholder_meta(ctx);
        let work = self.work(&meta, false)?;
        // A state of another layout would be read by the wrong app: a
        // member mid-upgrade sends the old one, a migrated one the new.
        if snapshot.layout != work.meta.state_version {
            return Err(ExecError::Rejected(format!(
                "a snapshot of state version {} cannot join a context on state version {}",
                snapshot.layout, work.meta.state_version
            )));
        }
        let state = work.state.as_mut().ok_or(ExecError::ContextNotFound)?;
        for op in &snapshot.ops {
            mero_crdt::apply_op(state, op).map_err(|e| ExecError::Rejected(e.to_string()))?;
        }
        // Our heads that the snapshot includes are superseded by its heads.
        let theirs: HashSet<DeltaId> = snapshot.deltas.iter().copied().collect();
        work.heads.retain(|h| !theirs.contains(h));
        for h in &snapshot.heads {
            if !work.heads.contains(h) {
                work.heads.push(*h);
            }
        }
        work.joined = true;
        self.joined_bodies
            .extend(snapshot.bodies.into_iter().map(|d| (ctx, d)));
        self.refused
            .extend(snapshot.refused.into_iter().map(|d| (ctx, d)));
        self.joins.push((ctx, snapshot.ops, snapshot.deltas));
        Ok(())
    }

    /// Records deltas of `ctx` refused for good as known stubs, as a
    /// snapshot's folded deltas are, but with nothing joined (the state
    /// and heads stay as they are), and keeps their bodies apart.
    pub(crate) fn refuse(
        &mut self,
        ctx: ContextId,
        deltas: Vec<SignedDelta>,
    ) -> Result<(), ExecError> {
        if !self.exists(&ctx) {
            return Err(ExecError::ContextNotFound);
        }
        let ids = deltas.iter().map(|d| d.delta.id()).collect();
        self.joins.push((ctx, Vec::new(), ids));
        self.refused.extend(deltas.into_iter().map(|d| (ctx, d)));
        Ok(())
    }

    /// Whether the batch, the batch still committing or the store knows
    /// delta `d` of `ctx`.
    fn knows(&self, ctx: &ContextId, d: &DeltaId) -> bool {
        self.deltas.iter().any(|(x, _)| x == d)
            || self.carried_ids.contains(d)
            || matches!(self.snapshot.has_delta(ctx, d), Ok(true))
            || self
                .joins
                .iter()
                .any(|(c, _, ids)| c == ctx && ids.contains(d))
    }

    /// Joins a verified remote delta into the batch, observing its clock in
    /// `clock`; `runtime` says which of its events have handlers, when the
    /// app is loaded. `Ok(None)`: a duplicate; `Err(Ok(missing))`: parents
    /// missing.
    #[allow(
        clippy::type_complexity,
        reason = "three outcomes besides merged; a named type would be used once"
    )]
    pub(crate) fn merge(
        &mut self,
        id: DeltaId,
        delta: SignedDelta,
        clock: &mut Clock,
        runtime: &Runtime,
    ) -> Result<Option<Vec<Event>>, Result<Vec<DeltaId>, ExecError>> {
        let ctx = delta.delta.context;
        if self.work.get(&ctx).is_some_and(|w| w.deleted) {
            return Err(Err(ExecError::ContextNotFound));
        }
        if self.knows(&ctx, &id) {
            return Ok(None);
        }
        let missing: Vec<DeltaId> = delta
            .delta
            .parents
            .iter()
            .filter(|p| !self.knows(&ctx, p))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(Ok(missing));
        }
        let meta = placeholder_meta(ctx);
        let work = self.work(&meta, false).map_err(Err)?;
        // Ops name the collections of the layout they were written under:
        // joined into another, they would land where no version reads
        // them (a write made before its author heard of an upgrade is
        // re-run by that author under the new version instead).
        if delta.delta.layout != work.meta.state_version {
            return Err(Err(ExecError::Rejected(format!(
                "written under state version {}; the context runs state version {} here",
                delta.delta.layout, work.meta.state_version
            ))));
        }
        let state = work.state.as_mut().ok_or(Err(ExecError::ContextNotFound))?;
        for op in &delta.delta.ops {
            mero_crdt::apply_op(state, op).map_err(|e| Err(ExecError::Store(e.to_string())))?;
        }
        work.heads.retain(|h| !delta.delta.parents.contains(h));
        work.heads.push(id);
        work.deltas += 1;
        work.meta.delta_count += 1;
        work.meta.last_hlc = work.meta.last_hlc.max(delta.delta.hlc);
        let blob = work.meta.blob;
        clock.observe(delta.delta.hlc);
        let events = delta.delta.events.clone();
        if !events.is_empty() {
            // An app not loaded yet may have handlers: recorded anyway, the
            // node checks before running one.
            let app = runtime.loaded(&blob);
            if events.len() > MAX_HANDLERS_PER_DELTA {
                tracing::warn!(
                    context = %hex::encode(ctx.0),
                    events = events.len(),
                    "a merged delta has more events than handlers run for one delta; the rest get none"
                );
            }
            for (i, e) in events.iter().enumerate().take(MAX_HANDLERS_PER_DELTA) {
                let method = handler_name(&e.kind);
                if app
                    .as_ref()
                    .is_none_or(|a| a.intent(&method) == Some(Intent::Mutating))
                {
                    self.handlers
                        .push((ctx, id, i as u32, method, e.data.clone()));
                }
            }
        }
        self.deltas.push((id, delta));
        Ok(Some(events))
    }
}

/// Handlers recorded for one merged delta at most: as many events as one
/// call may emit by default, so no honest delta loses any, and a member's
/// forged delta with thousands of events cannot queue thousands of handler
/// runs (each up to the call deadline) on every receiver.
pub const MAX_HANDLERS_PER_DELTA: usize = 100;

/// Metadata standing in for a context's until the batch reads the real one
/// (only its id is used).
fn placeholder_meta(id: ContextId) -> ContextMeta {
    ContextMeta {
        id,
        application: [0; 32],
        blob: [0; 32],
        app_version: String::new(),
        state_version: 0,
        group: None,
        name: None,
        last_hlc: Default::default(),
        delta_count: 0,
        created_at_millis: 0,
    }
}
