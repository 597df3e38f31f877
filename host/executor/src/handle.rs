//! The handle to a node's executor: views run here on a snapshot; every
//! other job goes to the worker over one bounded channel, with a `oneshot`
//! for its answer.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use mero_crdt::{
    Author, Clock, ContextId, DeltaId, Hash, NodeId, Op, SignedDelta, StateSnapshot,
    VerifiedBatches,
};
use mero_runtime::{
    App, CallEnv, CallError, Intent, LoadError, PrivateOverlay, Runtime, state_over,
};
use mero_store::{ContextMeta, Snapshot, Store};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::error::ExecError;
use crate::job::{
    Applied, CallOutcome, Committed, ContextCreated, Job, NewContext, Standing, Upgrade, Upgraded,
};
use crate::stats::ExecStats;
use crate::worker::{CommitFault, Worker};

/// Jobs waiting before callers wait to enqueue.
const QUEUE: usize = 4096;

/// How far ahead of this node's wall clock a remote delta's clock may be
/// (the node bounds governance ops' clocks alike).
pub const MAX_CLOCK_DRIFT_MILLIS: u64 = 10 * 60 * 1000;

/// The latest clock a remote stamp may carry: this node's wall clock plus
/// [`MAX_CLOCK_DRIFT_MILLIS`].
pub fn latest_allowed() -> mero_crdt::Hlc {
    mero_crdt::Hlc {
        millis: mero_crdt::hlc::wall_millis().saturating_add(MAX_CLOCK_DRIFT_MILLIS),
        counter: u32::MAX,
    }
}

/// Most bytes of entries and signed deltas a snapshot carries the deltas
/// with: under the network's default message cap (8 MiB) with room for
/// encoding. A larger state is sent with its entries alone, and the
/// receiver fetches the deltas apart, a page at a time.
pub const MAX_SNAPSHOT_BYTES: usize = 6 << 20;

/// Handle to a node's executor. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    tx: mpsc::Sender<Job>,
    committed: broadcast::Sender<Committed>,
    stats: Arc<ExecStats>,
    runtime: Arc<Runtime>,
    store: Store,
    author: Author,
    /// Why the executor task ended, once it has.
    ended: watch::Receiver<Option<String>>,
    /// Batch signatures of received deltas already checked.
    verified: Arc<VerifiedBatches>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("author", &self.author)
            .finish_non_exhaustive()
    }
}

/// A snapshot [`Executor::check_snapshot`] passed: the only kind
/// [`Executor::join_snapshot`] takes.
#[derive(Debug)]
pub struct CheckedSnapshot(StateSnapshot);

impl Executor {
    /// Starts the executor task on the current tokio runtime. Calls are
    /// authored and signed with `identity`.
    pub fn spawn(
        runtime: Arc<Runtime>,
        store: Store,
        identity: SigningKey,
    ) -> Result<Executor, ExecError> {
        Executor::spawn_governed(runtime, store, identity, Arc::new(|_| Ok(Vec::new())))
    }

    /// Like [`spawn`](Self::spawn), but asks `standing` for the governance
    /// heads each authored delta names, as it is authored (so it covers
    /// whatever governance the deltas merged before it named), and refuses
    /// the call if this node may no longer write.
    pub fn spawn_governed(
        runtime: Arc<Runtime>,
        store: Store,
        identity: SigningKey,
        standing: Standing,
    ) -> Result<Executor, ExecError> {
        Executor::start(runtime, store, identity, standing, None)
    }

    /// Like [`spawn`](Self::spawn), with `fault` asked before each batch is
    /// written (see [`CommitFault`]): for tests of what a failed commit
    /// does to the calls in it and to the batch built on it.
    #[cfg(feature = "fault-injection")]
    pub fn spawn_with_commit_fault(
        runtime: Arc<Runtime>,
        store: Store,
        identity: SigningKey,
        fault: CommitFault,
    ) -> Result<Executor, ExecError> {
        Executor::start(
            runtime,
            store,
            identity,
            Arc::new(|_| Ok(Vec::new())),
            Some(fault),
        )
    }

    /// Jobs sent to the worker and not yet taken into a batch.
    #[cfg(feature = "fault-injection")]
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    fn start(
        runtime: Arc<Runtime>,
        store: Store,
        identity: SigningKey,
        standing: Standing,
        commit_fault: Option<CommitFault>,
    ) -> Result<Executor, ExecError> {
        let author = Author(identity.verifying_key().to_bytes());
        let mut clock = Clock::default();
        for meta in store.snapshot()?.contexts()? {
            clock.observe(meta.last_hlc);
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let (committed, _) = broadcast::channel(QUEUE);
        let stats = Arc::new(ExecStats::default());
        let worker = Worker {
            committed: committed.clone(),
            runtime: runtime.clone(),
            store: store.clone(),
            key: identity,
            author,
            clock,
            stats: stats.clone(),
            standing,
            deferred: Vec::new(),
            commit_fault,
            lanes: Default::default(),
        };
        let (ended_tx, ended) = watch::channel(None);
        let task = tokio::spawn(worker.serve(rx));
        // A task that panics ends silently; this one watches it so the node
        // can hear why its executor is gone instead of refusing every call
        // as "shutting down" forever.
        tokio::spawn(async move {
            let why = match task.await {
                Ok(Some(reply)) => {
                    let _ = ended_tx.send(Some("it was stopped".into()));
                    let _ = reply.send(Ok(()));
                    return;
                }
                Ok(None) => "every handle to it was dropped".to_string(),
                Err(e) if e.is_panic() => format!("it panicked: {}", panic_text(e.into_panic())),
                Err(e) => format!("it was cancelled: {e}"),
            };
            let _ = ended_tx.send(Some(why));
        });
        Ok(Executor {
            tx,
            committed,
            stats,
            runtime,
            store,
            author,
            ended,
            verified: Arc::default(),
        })
    }

    /// Waits until the executor task has ended, for any reason (stopped,
    /// panicked, runtime shut down), and says why. Until then every call
    /// can be served; after it none can.
    pub async fn ended(&self) -> String {
        let mut ended = self.ended.clone();
        match ended.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            // The watcher task itself is gone: so is the executor.
            Err(_) => "its watcher was dropped".to_string(),
        }
    }

    /// Why the executor task ended, if it has (without waiting).
    pub fn has_ended(&self) -> Option<String> {
        self.ended.borrow().clone()
    }

    /// Commit counters.
    pub fn stats(&self) -> &ExecStats {
        &self.stats
    }

    /// The runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Who authors this node's calls.
    pub fn author(&self) -> Author {
        self.author
    }

    /// The loaded app a context runs, loading it from the store if needed.
    pub async fn app(&self, snapshot: &Snapshot, blob: &Hash) -> Result<Arc<App>, ExecError> {
        if let Some(app) = self.runtime.loaded(blob) {
            return Ok(app);
        }
        let bytes = snapshot.blob(blob)?.ok_or_else(|| {
            LoadError::Host(format!(
                "component {} is not stored on this node",
                hex::encode(blob)
            ))
        })?;
        Ok(self.runtime.load(&bytes).await?)
    }

    async fn send<T>(
        &self,
        job: Job,
        rx: oneshot::Receiver<Result<T, ExecError>>,
    ) -> Result<T, ExecError> {
        self.tx.send(job).await.map_err(|_| ExecError::Stopped)?;
        rx.await.map_err(|_| ExecError::Stopped)?
    }

    /// Calls `method` on a context. Views run right away on a snapshot;
    /// mutating calls return once committed.
    pub async fn call(
        &self,
        ctx: &ContextId,
        method: &str,
        args_json: String,
    ) -> Result<CallOutcome, ExecError> {
        self.call_authorized(ctx, method, args_json, |_, _| Ok(()))
            .await
    }

    /// Like [`call`](Self::call), but first asks `authorize` whether a call
    /// of the method's intent may run on this context (from the metadata and
    /// intent the call looks up anyway).
    pub async fn call_authorized(
        &self,
        ctx: &ContextId,
        method: &str,
        args_json: String,
        authorize: impl FnOnce(&ContextMeta, Intent) -> Result<(), ExecError>,
    ) -> Result<CallOutcome, ExecError> {
        let snapshot = self.store.snapshot()?;
        let meta = snapshot
            .context_meta(ctx)?
            .ok_or(ExecError::ContextNotFound)?;
        let app = self.app(&snapshot, &meta.blob).await?;
        let intent = app.intent(method);
        if let Some(intent) = intent {
            authorize(&meta, intent)?;
        }
        match intent {
            None => Err(CallError::UnknownMethod(method.to_string()).into()),
            Some(Intent::ReadOnly) => {
                let env = CallEnv::new(
                    *ctx,
                    self.author,
                    meta.app_version.clone(),
                    state_over(snapshot.context(*ctx)),
                    PrivateOverlay::new(snapshot.clone(), *ctx),
                    Clock::starting_after(meta.last_hlc),
                );
                let (env, result) = self.runtime.call(&app, env, method, args_json).await;
                Ok(CallOutcome {
                    output: result?,
                    delta: None,
                    root_hash: snapshot.root_hash(ctx)?,
                    events: Vec::new(),
                    logs: env.logs,
                })
            }
            Some(Intent::Mutating) => {
                drop(snapshot);
                let (reply, rx) = oneshot::channel();
                self.send(
                    Job::Call {
                        meta,
                        app,
                        method: method.to_string(),
                        args: args_json,
                        reply,
                    },
                    rx,
                )
                .await
            }
        }
    }

    /// Creates a context and runs the app's `init` on it.
    pub async fn create_context(&self, new: NewContext) -> Result<ContextCreated, ExecError> {
        let snapshot = self.store.snapshot()?;
        let app = self.app(&snapshot, &new.blob).await?;
        drop(snapshot);
        let (reply, rx) = oneshot::channel();
        self.send(Job::Create { new, app, reply }, rx).await
    }

    /// Moves a context to another version of its app: runs the migration
    /// (if any) and its check on a staged copy of the state and commits
    /// the result with the new version, or changes nothing and says why.
    pub async fn upgrade(&self, ctx: &ContextId, upgrade: Upgrade) -> Result<Upgraded, ExecError> {
        let meta = self
            .store
            .snapshot()?
            .context_meta(ctx)?
            .ok_or(ExecError::ContextNotFound)?;
        let (reply, rx) = oneshot::channel();
        self.send(
            Job::Upgrade {
                meta: Box::new(meta),
                upgrade: Box::new(upgrade),
                reply,
            },
            rx,
        )
        .await
    }

    /// Merges a delta received from another replica: checks its signature,
    /// limits and clock, then joins its ops (no wasm runs) once all its
    /// parents are here. Returns when committed.
    pub async fn apply_delta(&self, delta: SignedDelta) -> Result<Applied, ExecError> {
        let id = self.admissible(&delta)?;
        let (reply, rx) = oneshot::channel();
        self.send(
            Job::Apply {
                id,
                delta: Box::new(delta),
                reply,
            },
            rx,
        )
        .await
    }

    /// Every delta committed from now on, local or merged, in commit order.
    /// A receiver that lags loses the oldest (anti-entropy heals that).
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// Creates a context that replicates another node's: its metadata only,
    /// without running `init` (its state arrives as deltas or a snapshot).
    /// Returns false if it already exists here.
    pub async fn create_replica(&self, meta: ContextMeta) -> Result<bool, ExecError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Job::Replica {
                meta: Box::new(meta),
                reply,
            },
            rx,
        )
        .await
    }

    /// Joins another replica's snapshot into a context; returns the root hash
    /// afterwards.
    pub async fn join_snapshot(
        &self,
        ctx: ContextId,
        snapshot: CheckedSnapshot,
    ) -> Result<Hash, ExecError> {
        let CheckedSnapshot(snapshot) = snapshot;
        let (reply, rx) = oneshot::channel();
        self.send(
            Job::Join {
                ctx,
                snapshot,
                reply,
            },
            rx,
        )
        .await
    }

    /// Records deltas of `ctx` refused for good (by a rule every member
    /// applies alike) as known, with no effect, so that what others built
    /// on them applies here without them; their bodies are kept apart, so
    /// a snapshot holding their writes can be told. The state and heads
    /// are kept.
    ///
    /// Only deltas their authors signed, stamped within the drift allowed,
    /// are recorded: a forged body kept here would go out in this node's
    /// snapshots and make every joiner refuse them. Returns the ids
    /// recorded.
    pub async fn record_refused(
        &self,
        ctx: ContextId,
        deltas: Vec<SignedDelta>,
    ) -> Result<Vec<DeltaId>, ExecError> {
        let mut ids = Vec::with_capacity(deltas.len());
        let mut signed = Vec::with_capacity(deltas.len());
        for d in deltas {
            match self.admissible(&d) {
                Ok(id) => {
                    ids.push(id);
                    signed.push(d);
                }
                Err(e) => tracing::debug!(error = %e, "a refused delta is not recorded"),
            }
        }
        if signed.is_empty() {
            return Ok(ids);
        }
        let (reply, rx) = oneshot::channel();
        self.send(
            Job::Refuse {
                ctx,
                deltas: signed,
                reply,
            },
            rx,
        )
        .await
        .map(|_| ids)
    }

    /// What any delta from another replica must be before it is merged or
    /// recorded: signed by its author, its clock within the drift allowed.
    /// Verification is CPU work, kept off the single writer; the deltas of
    /// one batch (as gossip carries them) share a signature, checked once.
    fn admissible(&self, delta: &SignedDelta) -> Result<DeltaId, ExecError> {
        let id = delta
            .verify_with(&self.verified)
            .map_err(|e| ExecError::Rejected(e.to_string()))?;
        let ahead = delta
            .delta
            .hlc
            .millis
            .saturating_sub(mero_crdt::hlc::wall_millis());
        if ahead > MAX_CLOCK_DRIFT_MILLIS {
            return Err(ExecError::Rejected(format!(
                "its clock is {ahead} ms ahead of this node's"
            )));
        }
        Ok(id)
    }

    /// Refuses a snapshot that could not be a replica's state, held to what
    /// a delta is held to as far as it can be without signatures (see
    /// [`StateSnapshot::check`]); only a snapshot that passed is joined.
    /// Checked off the writer, like a delta's signature, and before the
    /// caller drops anything to make room for it.
    pub fn check_snapshot(snapshot: StateSnapshot) -> Result<CheckedSnapshot, ExecError> {
        snapshot
            .check(latest_allowed())
            .map_err(|e| ExecError::Rejected(e.to_string()))?;
        Ok(CheckedSnapshot(snapshot))
    }

    /// This node's snapshot of a context, for a peer: with the signed
    /// deltas behind it when entries and deltas fit
    /// [`MAX_SNAPSHOT_BYTES`] (else with those it refused alone).
    pub fn snapshot_of(&self, ctx: &ContextId) -> Result<StateSnapshot, ExecError> {
        let snap = self.store.snapshot()?;
        if snap.context_meta(ctx)?.is_none() {
            return Err(ExecError::ContextNotFound);
        }
        let mut ops = Vec::new();
        let mut bytes = 0usize;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = snap.entries_page(ctx, after.as_deref(), 4096)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (raw, value) in page {
                bytes += raw.len() + value.len();
                let (node, key) = raw.split_at(32.min(raw.len()));
                let node = NodeId(<[u8; 32]>::try_from(node).map_err(|_| {
                    ExecError::Store("an entry key is shorter than a node id".into())
                })?);
                let entry = borsh::from_slice(&value)
                    .map_err(|e| ExecError::Store(format!("entry: {e}")))?;
                ops.push(Op {
                    node,
                    key: key.to_vec(),
                    entry,
                });
            }
        }
        let deltas = snap.delta_ids(ctx)?;
        // The signed deltas behind the entries, so the receiver need not
        // take them on this node's word; if they would not fit one message
        // beside the entries, it fetches them apart (all but the refused,
        // always carried: it cannot tell which of those it fetches this
        // node refused).
        let mut bodies = Vec::new();
        let refused = snap.refused_deltas(ctx)?;
        bytes += refused.iter().map(|d| d.to_bytes().len()).sum::<usize>();
        for id in &deltas {
            if bytes > MAX_SNAPSHOT_BYTES {
                break;
            }
            if let Some(d) = snap.delta(ctx, id)? {
                bytes += d.to_bytes().len();
                bodies.push(d);
            }
        }
        if bytes > MAX_SNAPSHOT_BYTES {
            bodies.clear();
        }
        Ok(StateSnapshot {
            ops,
            deltas,
            heads: snap.heads(ctx)?,
            root_hash: snap.root_hash(ctx)?,
            layout: snap
                .context_meta(ctx)?
                .map(|m| m.state_version)
                .ok_or(ExecError::ContextNotFound)?,
            bodies,
            refused,
        })
    }

    /// Lets every job queued so far finish and commit, then stops the
    /// executor; later calls fail with [`ExecError::Stopped`].
    pub async fn shutdown(&self) -> Result<(), ExecError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Stop { reply }, rx).await
    }

    /// Deletes a context and everything stored for it on this node.
    pub async fn delete_context(&self, ctx: ContextId) -> Result<bool, ExecError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Job::Delete {
                ctx,
                keep: None,
                reply,
            },
            rx,
        )
        .await
    }

    /// Drops a context's replicated state (entries and DAG) and makes
    /// `meta` its record, keeping its private storage; a snapshot joined
    /// next fills it again. Returns whether it existed (if not, nothing is
    /// done). Jobs on it queued meanwhile fail with a retryable error.
    pub async fn reset_context(&self, meta: ContextMeta) -> Result<bool, ExecError> {
        let (reply, rx) = oneshot::channel();
        self.send(
            Job::Delete {
                ctx: meta.id,
                keep: Some(Box::new(meta)),
                reply,
            },
            rx,
        )
        .await
    }
}

/// A panic's message, when it has one.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}
