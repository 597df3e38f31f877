//! Executing calls against contexts, with group commit.
//!
//! Mutating calls (and context creation and deletion) go through one task per
//! node, because LMDB has one writer and because a context's calls must see
//! each other's writes in order. The task takes every job waiting, runs them
//! one after another on overlays over one snapshot (a call sees the writes of
//! the calls before it in the batch), then commits the whole batch in one
//! LMDB transaction, and only then answers: nothing is acknowledged before it
//! is durable, and under load one fsync covers many calls. A failing call is
//! rolled back to its checkpoint without disturbing the others.
//!
//! This node's deltas in a batch are signed together, with one signature
//! over a Merkle tree of their ids, as the batch goes to commit.
//!
//! Commits are pipelined: while batch k is written and synced on a
//! blocking thread, batch k+1 already executes on top of k's writes (carried
//! over as an overlay layer). k+1 commits only after k did, and fails if k
//! failed, so answers still follow durability in order.
//!
//! Views skip the queue: they run concurrently on a fresh snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::SigningKey;
pub use mero_crdt::StateSnapshot;
use mero_crdt::overlay::Overlay;
use mero_crdt::{Author, Clock, ContextId, Delta, DeltaId, Event, Hash, NodeId, Op, SignedDelta};
use mero_store::{ContextMeta, Snapshot, Store};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{CallError, LoadError};
use crate::host::{CallEnv, PrivateOverlay, State, state_over};
use crate::runtime::{App, Intent, Runtime};

/// Most jobs committed together.
const MAX_BATCH: usize = 512;
/// Jobs waiting before callers wait to enqueue.
const QUEUE: usize = 4096;

/// Why executing failed.
#[derive(Debug, Error)]
pub enum ExecError {
    /// The call itself failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// No such context on this node.
    #[error("context not found")]
    ContextNotFound,
    /// A context with that id exists.
    #[error("context already exists")]
    ContextExists,
    /// The context's app is not installed or cannot load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The store failed.
    #[error("storage: {0}")]
    Store(String),
    /// The executor is shutting down.
    #[error("the node is shutting down")]
    Stopped,
    /// A delta from another replica was refused.
    #[error("delta rejected: {0}")]
    Rejected(String),
    /// The caller's policy refused the call.
    #[error("{message}")]
    Denied {
        /// Stable kind.
        kind: &'static str,
        /// For humans.
        message: String,
    },
}

impl From<mero_store::StoreError> for ExecError {
    fn from(e: mero_store::StoreError) -> Self {
        ExecError::Store(e.to_string())
    }
}

/// A committed (or read-only) call.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The method's JSON result.
    pub output: serde_json::Value,
    /// The delta the call produced, if it changed replicated state.
    pub delta: Option<DeltaId>,
    /// The context's root hash after the call.
    pub root_hash: Hash,
    /// Events the call emitted.
    pub events: Vec<Event>,
    /// Lines the app logged.
    pub logs: Vec<String>,
}

/// A context to create.
#[derive(Debug, Clone)]
pub struct NewContext {
    /// Its id.
    pub id: ContextId,
    /// The application record it runs.
    pub application: [u8; 32],
    /// The component's content hash (must be stored as a blob).
    pub blob: Hash,
    /// The app version.
    pub app_version: String,
    /// The group it belongs to.
    pub group: Option<[u8; 32]>,
    /// A human name.
    pub name: Option<String>,
    /// JSON arguments of `init`.
    pub init_args: String,
}

/// A created context.
#[derive(Debug, Clone)]
pub struct ContextCreated {
    /// Its id.
    pub id: ContextId,
    /// Its genesis delta.
    pub delta: DeltaId,
    /// Its root hash after `init`.
    pub root_hash: Hash,
}

enum Job {
    Call {
        meta: ContextMeta,
        app: Arc<App>,
        method: String,
        args: String,
        reply: oneshot::Sender<Result<CallOutcome, ExecError>>,
    },
    Create {
        new: NewContext,
        app: Arc<App>,
        reply: oneshot::Sender<Result<ContextCreated, ExecError>>,
    },
    Delete {
        ctx: ContextId,
        reply: oneshot::Sender<Result<bool, ExecError>>,
    },
    /// Finish everything queued before, then stop.
    Stop {
        reply: oneshot::Sender<Result<(), ExecError>>,
    },
    Apply {
        id: DeltaId,
        delta: Box<SignedDelta>,
        reply: oneshot::Sender<Result<Applied, ExecError>>,
    },
    Replica {
        meta: Box<ContextMeta>,
        reply: oneshot::Sender<Result<bool, ExecError>>,
    },
    Join {
        ctx: ContextId,
        snapshot: StateSnapshot,
        reply: oneshot::Sender<Result<Hash, ExecError>>,
    },
}

/// A delta this node committed, announced so it can be published.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Its id.
    pub id: DeltaId,
    /// The delta.
    pub delta: Arc<SignedDelta>,
    /// Whether this node authored it (else it was merged from a peer).
    pub local: bool,
    /// The context's root hash after it.
    pub root_hash: Hash,
}

/// What became of a delta received from another replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Merged and committed; the context's root hash afterwards, and the
    /// events the delta carries.
    Merged {
        /// Root hash after the delta.
        root_hash: Hash,
        /// The delta's events.
        events: Vec<Event>,
    },
    /// Already applied here; nothing changed.
    Duplicate,
    /// Some parents are not here yet; nothing changed. Apply them first.
    MissingParents(Vec<DeltaId>),
}

/// How far ahead of this node's wall clock a remote delta's clock may be.
const MAX_CLOCK_DRIFT_MILLIS: u64 = 10 * 60 * 1000;

/// Counters of the executor.
#[derive(Debug, Default)]
pub struct ExecStats {
    /// Write transactions committed.
    pub commits: AtomicU64,
    /// Jobs (mutating calls, creations, deletions, merges) they carried.
    pub jobs: AtomicU64,
    /// Time spent running jobs on the worker, in nanoseconds.
    pub exec_nanos: AtomicU64,
    /// Time spent writing and syncing transactions, in nanoseconds.
    pub commit_nanos: AtomicU64,
    /// The part of `exec_nanos` spent signing this node's deltas.
    pub sign_nanos: AtomicU64,
    /// The part of `commit_nanos` spent making the transaction durable.
    pub write_nanos: AtomicU64,
}

impl std::fmt::Display for ExecStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let commits = self.commits.load(Ordering::Relaxed);
        let jobs = self.jobs.load(Ordering::Relaxed);
        let per = |n: &AtomicU64, d: u64| n.load(Ordering::Relaxed) / 1000 / d.max(1);
        write!(
            f,
            "{commits} commits, {jobs} jobs, {} µs per job executing (signing {} µs), \
             {} µs per commit (durable write {} µs)",
            per(&self.exec_nanos, jobs),
            per(&self.sign_nanos, jobs),
            per(&self.commit_nanos, commits),
            per(&self.write_nanos, commits)
        )
    }
}

/// Where this node stands in a context's governance when it authors a
/// delta there: the governance heads the delta names (its author's
/// authority is judged at them), or why this node may not write.
pub type Standing = Arc<dyn Fn(&ContextMeta) -> Result<Vec<[u8; 32]>, ExecError> + Send + Sync>;

/// Handle to a node's executor. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    tx: mpsc::Sender<Job>,
    committed: broadcast::Sender<Committed>,
    stats: Arc<ExecStats>,
    runtime: Arc<Runtime>,
    store: Store,
    author: Author,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("author", &self.author)
            .finish_non_exhaustive()
    }
}

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
        };
        tokio::spawn(async move {
            if let Some(reply) = worker.serve(rx).await {
                let _ = reply.send(Ok(()));
            }
        });
        Ok(Executor {
            tx,
            committed,
            stats,
            runtime,
            store,
            author,
        })
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

    /// Merges a delta received from another replica: checks its signature,
    /// limits and clock, then joins its ops (no wasm runs) once all its
    /// parents are here. Returns when committed.
    pub async fn apply_delta(&self, delta: SignedDelta) -> Result<Applied, ExecError> {
        // Verification is CPU work; keep it off the single writer.
        let id = delta
            .verify()
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
        snapshot: StateSnapshot,
    ) -> Result<Hash, ExecError> {
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

    /// This node's snapshot of a context, for a peer.
    pub fn snapshot_of(&self, ctx: &ContextId) -> Result<StateSnapshot, ExecError> {
        let snap = self.store.snapshot()?;
        if snap.context_meta(ctx)?.is_none() {
            return Err(ExecError::ContextNotFound);
        }
        let mut ops = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = snap.entries_page(ctx, after.as_deref(), 4096)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (raw, value) in page {
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
        Ok(StateSnapshot {
            ops,
            deltas: snap.delta_ids(ctx)?,
            heads: snap.heads(ctx)?,
            root_hash: snap.root_hash(ctx)?,
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
        self.send(Job::Delete { ctx, reply }, rx).await
    }
}

/// One context's share of a batch.
struct Work {
    meta: ContextMeta,
    state: Option<State>,
    private: Option<PrivateOverlay>,
    heads: Vec<DeltaId>,
    created: bool,
    deleted: bool,
    deltas: u64,
    /// A snapshot was joined: the heads are written as a whole.
    joined: bool,
}

enum Answer {
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

struct Batch {
    snapshot: Snapshot,
    work: HashMap<ContextId, Work>,
    /// Deltas to store: merged ones signed, this node's signed at commit.
    deltas: Vec<(DeltaId, SignedDelta)>,
    /// This node's deltas in `deltas`, still to sign.
    unsigned: HashSet<DeltaId>,
    /// Snapshot entries joined, and delta ids recorded as stubs.
    joins: Vec<(ContextId, Vec<Op>, Vec<DeltaId>)>,
    answers: Vec<Answer>,
    /// What the batch before this one, still committing, left behind.
    carry: HashMap<ContextId, Carried>,
    /// Deltas of the batch still committing.
    carried_ids: HashSet<DeltaId>,
    /// Event handlers merged deltas leave to run: (context, delta, event
    /// index, method, data), stored with the deltas.
    handlers: Vec<(ContextId, DeltaId, u32, String, Vec<u8>)>,
}

/// A context as the previous batch left it, while that batch commits: the
/// next batch starts from here rather than from the snapshot, so the two
/// overlap (execute batch k+1 while batch k is written and synced).
struct Carried {
    meta: ContextMeta,
    heads: Vec<DeltaId>,
    state: Overlay<mero_store::ContextReader>,
    private: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    deleted: bool,
}

/// A batch being committed on a blocking thread, which also answers its
/// calls the moment they are durable; the handle says whether it committed.
struct InFlight {
    handle: tokio::task::JoinHandle<bool>,
    carry: HashMap<ContextId, Carried>,
    ids: HashSet<DeltaId>,
}

/// What a committed batch gives back.
struct Committing {
    roots: Roots,
    deltas: Vec<(DeltaId, SignedDelta)>,
}

struct Worker {
    committed: broadcast::Sender<Committed>,
    runtime: Arc<Runtime>,
    store: Store,
    key: SigningKey,
    author: Author,
    clock: Clock,
    stats: Arc<ExecStats>,
    standing: Standing,
}

impl Worker {
    /// Runs until every handle is gone or a stop is asked for; returns the
    /// stop request. `self`, and with it the store, is dropped on return.
    async fn serve(
        mut self,
        mut rx: mpsc::Receiver<Job>,
    ) -> Option<oneshot::Sender<Result<(), ExecError>>> {
        let mut stop: Option<oneshot::Sender<Result<(), ExecError>>> = None;
        let mut inflight: Option<InFlight> = None;
        loop {
            // Wait for work, noting a commit that finishes meanwhile.
            let first = match inflight.as_mut() {
                Some(f) => tokio::select! {
                    job = rx.recv() => job,
                    done = &mut f.handle => {
                        inflight = None;
                        settled(done);
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(first) = first else { break };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            // Jobs after a stop request are refused; those before it finish.
            if let Some(at) = jobs.iter().position(|j| matches!(j, Job::Stop { .. })) {
                for job in jobs.split_off(at) {
                    match job {
                        Job::Stop { reply } => stop = stop.or(Some(reply)),
                        other => fail_all(vec![other], "the node is shutting down"),
                    }
                }
                rx.close();
            }
            let snapshot = match self.store.snapshot() {
                Ok(s) => s,
                Err(e) => {
                    fail_all(jobs, &e.to_string());
                    continue;
                }
            };
            let (carry, carried_ids) = match inflight.as_mut() {
                Some(f) => (std::mem::take(&mut f.carry), f.ids.clone()),
                None => (HashMap::new(), HashSet::new()),
            };
            let mut batch = Batch {
                snapshot,
                work: HashMap::new(),
                deltas: Vec::new(),
                unsigned: HashSet::new(),
                joins: Vec::new(),
                answers: Vec::new(),
                carry,
                carried_ids,
                handlers: Vec::new(),
            };
            for job in jobs {
                self.run_job(&mut batch, job).await;
            }
            // The batch built on the previous one: it may commit only after
            // it, and not at all if it failed. Until then it keeps taking
            // calls, so the durable write, the slower stage under load, is
            // never left waiting for a batch that could have been ready.
            if let Some(InFlight { mut handle, .. }) = inflight.take() {
                let mut open = stop.is_none();
                let committed = loop {
                    tokio::select! {
                        biased;
                        done = &mut handle => break settled(done),
                        job = rx.recv(), if open && batch.answers.len() < MAX_BATCH => match job {
                            Some(Job::Stop { reply }) => {
                                stop = Some(reply);
                                rx.close();
                                open = false;
                            }
                            Some(job) => self.run_job(&mut batch, job).await,
                            None => open = false,
                        },
                    }
                };
                if !committed {
                    fail_answers(
                        std::mem::take(&mut batch.answers),
                        "the batch it built on failed to commit",
                    );
                    if stop.is_some() {
                        break;
                    }
                    continue;
                }
            }
            if batch.answers.len() <= 1 && rx.is_empty() && stop.is_none() {
                // A lone call with nothing waiting behind it: commit on this
                // thread. It skips two thread hand-offs (to the blocking
                // pool and back), ~10% of its round trip. The worker is
                // blocked for one durable write; the runtime's other workers
                // serve the rest. Under load, batches are larger and commit
                // on the blocking pool, overlapping the next batch.
                self.sign_batch(&mut batch);
                let answers = std::mem::take(&mut batch.answers);
                let done = timed_commit(&self.store, batch, self.clock.last(), &self.stats);
                self.announcer().settle(answers, done);
                continue;
            }
            inflight = Some(self.start_commit(batch));
            if stop.is_some() {
                break;
            }
        }
        if let Some(f) = inflight.take() {
            settled(f.handle.await);
        }
        stop
    }

    /// Executes one job into `batch`, counting it and its time.
    async fn run_job(&mut self, batch: &mut Batch, job: Job) {
        self.stats.jobs.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        self.execute(batch, job).await;
        self.stats
            .exec_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn announcer(&self) -> Announcer {
        Announcer {
            committed: self.committed.clone(),
            author: self.author,
            stats: self.stats.clone(),
        }
    }

    /// Signs the deltas this node authored in the batch, with one
    /// signature: a signature costs more than executing a small call, and
    /// under load a batch holds many. Each delta still verifies on its own.
    fn sign_batch(&self, batch: &mut Batch) {
        if batch.unsigned.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let unsigned = std::mem::take(&mut batch.unsigned);
        let (ids, mine): (Vec<DeltaId>, Vec<&mut SignedDelta>) = batch
            .deltas
            .iter_mut()
            .filter(|(id, _)| unsigned.contains(id))
            .map(|(id, d)| (*id, d))
            .unzip();
        let signed = SignedDelta::sign_batch(&ids, &self.key);
        for (d, proof) in mine.into_iter().zip(signed.proofs) {
            d.signature = signed.signature;
            d.proof = proof;
        }
        self.stats
            .sign_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    /// Hands a batch to a blocking thread to write and sync, keeping
    /// what the next batch needs to build on it.
    fn start_commit(&self, mut batch: Batch) -> InFlight {
        self.sign_batch(&mut batch);
        let mut carry = HashMap::new();
        for (ctx, work) in &mut batch.work {
            let state = work
                .state
                .take()
                .map(|s| s.rebase(batch.snapshot.context(*ctx)));
            carry.insert(
                *ctx,
                Carried {
                    meta: work.meta.clone(),
                    heads: work.heads.clone(),
                    state: state.unwrap_or_else(|| Overlay::new(batch.snapshot.context(*ctx))),
                    private: work
                        .private
                        .as_ref()
                        .map(|p| p.writes().clone())
                        .unwrap_or_default(),
                    deleted: work.deleted,
                },
            );
        }
        let ids = batch.deltas.iter().map(|(id, _)| *id).collect();
        let answers = std::mem::take(&mut batch.answers);
        let store = self.store.clone();
        let last_hlc = self.clock.last();
        let announcer = self.announcer();
        // The blocking thread answers too: a caller hears back as soon as its
        // call is durable, not when this worker next looks up from executing.
        let handle = tokio::task::spawn_blocking(move || {
            let done = timed_commit(&store, batch, last_hlc, &announcer.stats);
            announcer.settle(answers, done)
        });
        InFlight { handle, carry, ids }
    }

    /// The batch's share of a context. Existing contexts take their metadata
    /// from the batch's snapshot, not from the job, which was read before
    /// earlier batches committed; a context created in this batch takes
    /// `meta`.
    fn work<'b>(
        &self,
        batch: &'b mut Batch,
        meta: &ContextMeta,
        creating: bool,
    ) -> Result<&'b mut Work, ExecError> {
        if !batch.work.contains_key(&meta.id) {
            // The previous batch deleted it and is committing that: the
            // marker stays, so later jobs of this batch see it too.
            if batch.carry.get(&meta.id).is_some_and(|c| c.deleted) {
                return Err(if creating {
                    ExecError::Store("the context is still being deleted; retry".into())
                } else {
                    ExecError::ContextNotFound
                });
            }
            let work = match batch.carry.remove(&meta.id) {
                Some(c) if !c.deleted => Work {
                    meta: c.meta,
                    state: Some(Overlay::new(
                        c.state.rebase(batch.snapshot.context(meta.id)),
                    )),
                    private: Some(PrivateOverlay::over_pending(
                        batch.snapshot.clone(),
                        meta.id,
                        c.private,
                    )),
                    heads: c.heads,
                    created: false,
                    deleted: false,
                    deltas: 0,
                    joined: false,
                },
                _ => {
                    let current = if creating {
                        meta.clone()
                    } else {
                        batch
                            .snapshot
                            .context_meta(&meta.id)?
                            .ok_or(ExecError::ContextNotFound)?
                    };
                    Work {
                        meta: current,
                        state: Some(state_over(batch.snapshot.context(meta.id))),
                        private: Some(PrivateOverlay::new(batch.snapshot.clone(), meta.id)),
                        heads: if creating {
                            Vec::new()
                        } else {
                            batch.snapshot.heads(&meta.id)?
                        },
                        created: false,
                        deleted: false,
                        deltas: 0,
                        joined: false,
                    }
                }
            };
            batch.work.insert(meta.id, work);
        }
        batch
            .work
            .get_mut(&meta.id)
            .ok_or(ExecError::ContextNotFound)
    }

    /// Runs one job into the batch; answers failures right away.
    async fn execute(&mut self, batch: &mut Batch, job: Job) {
        match job {
            Job::Stop { reply } => {
                let _ = reply.send(Ok(()));
            }
            Job::Call {
                meta,
                app,
                method,
                args,
                reply,
            } => {
                let ctx = meta.id;
                if batch.work.get(&ctx).is_some_and(|w| w.deleted) {
                    let _ = reply.send(Err(ExecError::ContextNotFound));
                    return;
                }
                match self.run(batch, &meta, &app, Run::Call(method, args)).await {
                    Ok((output, delta, events, logs)) => batch.answers.push(Answer::Call {
                        reply,
                        ctx,
                        outcome: CallOutcome {
                            output,
                            delta,
                            root_hash: [0; 32],
                            events,
                            logs,
                        },
                    }),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Job::Create { new, app, reply } => {
                let exists = exists(batch, &new.id);
                if exists {
                    let _ = reply.send(Err(ExecError::ContextExists));
                    return;
                }
                let meta = ContextMeta {
                    id: new.id,
                    application: new.application,
                    blob: new.blob,
                    app_version: new.app_version,
                    state_version: app.description().state_version,
                    group: new.group,
                    name: new.name,
                    last_hlc: self.clock.last(),
                    delta_count: 0,
                    created_at_millis: mero_crdt::hlc::wall_millis(),
                };
                match self.run(batch, &meta, &app, Run::Init(new.init_args)).await {
                    Ok((_, Some(delta), _, _)) => {
                        if let Some(w) = batch.work.get_mut(&new.id) {
                            w.created = true;
                        }
                        batch.answers.push(Answer::Create {
                            reply,
                            ctx: new.id,
                            delta,
                        });
                    }
                    Ok((_, None, _, _)) => {
                        let _ = reply.send(Err(ExecError::Store(
                            "init produced no genesis delta".into(),
                        )));
                    }
                    Err(e) => {
                        // A failed init leaves no trace of the context.
                        batch.work.remove(&new.id);
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Job::Apply { id, delta, reply } => {
                let r = self.merge(batch, id, *delta);
                match r {
                    Ok(Some(events)) => batch.answers.push(Answer::Apply { reply, id, events }),
                    Ok(None) => {
                        let _ = reply.send(Ok(Applied::Duplicate));
                    }
                    Err(Ok(missing)) => {
                        let _ = reply.send(Ok(Applied::MissingParents(missing)));
                    }
                    Err(Err(e)) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Job::Replica { meta, reply } => {
                let exists = exists(batch, &meta.id);
                if exists {
                    let _ = reply.send(Ok(false));
                    return;
                }
                let id = meta.id;
                match self.work(&mut *batch, &meta, true) {
                    Ok(w) => {
                        w.created = true;
                        batch.answers.push(Answer::Replica { reply });
                    }
                    Err(e) => {
                        batch.work.remove(&id);
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Job::Join {
                ctx,
                snapshot,
                reply,
            } => match self.join(batch, ctx, snapshot) {
                Ok(()) => batch.answers.push(Answer::Join { reply, ctx }),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Job::Delete { ctx, reply } => {
                let existed = exists(batch, &ctx);
                batch.deltas.retain(|(_, d)| d.delta.context != ctx);
                let meta = batch.work.get(&ctx).map(|w| w.meta.clone());
                batch.work.insert(
                    ctx,
                    Work {
                        meta: meta.unwrap_or_else(|| placeholder_meta(ctx)),
                        state: None,
                        private: None,
                        heads: Vec::new(),
                        created: false,
                        deleted: true,
                        deltas: 0,
                        joined: false,
                    },
                );
                batch.answers.push(Answer::Delete { reply, existed });
            }
        }
    }

    /// Joins a snapshot's entries into the batch's state of `ctx` and takes
    /// its deltas as known.
    fn join(
        &mut self,
        batch: &mut Batch,
        ctx: ContextId,
        snapshot: StateSnapshot,
    ) -> Result<(), ExecError> {
        if batch.work.get(&ctx).is_some_and(|w| w.deleted) {
            return Err(ExecError::ContextNotFound);
        }
        let meta = placeholder_meta(ctx);
        let work = self.work(batch, &meta, false)?;
        let state = work.state.as_mut().ok_or(ExecError::ContextNotFound)?;
        for op in &snapshot.ops {
            mero_crdt::apply_op(state, op).map_err(|e| ExecError::Rejected(e.to_string()))?;
        }
        // Our heads that the snapshot includes are superseded by its heads.
        let theirs: std::collections::HashSet<DeltaId> = snapshot.deltas.iter().copied().collect();
        work.heads.retain(|h| !theirs.contains(h));
        for h in &snapshot.heads {
            if !work.heads.contains(h) {
                work.heads.push(*h);
            }
        }
        work.joined = true;
        batch.joins.push((ctx, snapshot.ops, snapshot.deltas));
        Ok(())
    }

    /// Joins a verified remote delta into the batch. `Ok(None)`: a duplicate;
    /// `Err(Ok(missing))`: parents missing.
    #[allow(clippy::type_complexity)]
    fn merge(
        &mut self,
        batch: &mut Batch,
        id: DeltaId,
        delta: SignedDelta,
    ) -> Result<Option<Vec<Event>>, Result<Vec<DeltaId>, ExecError>> {
        let ctx = delta.delta.context;
        let known = |batch: &Batch, d: &DeltaId| {
            batch.deltas.iter().any(|(x, _)| x == d)
                || batch.carried_ids.contains(d)
                || matches!(batch.snapshot.has_delta(&ctx, d), Ok(true))
                || batch
                    .joins
                    .iter()
                    .any(|(c, _, ids)| *c == ctx && ids.contains(d))
        };
        if batch.work.get(&ctx).is_some_and(|w| w.deleted) {
            return Err(Err(ExecError::ContextNotFound));
        }
        if known(batch, &id) {
            return Ok(None);
        }
        let missing: Vec<DeltaId> = delta
            .delta
            .parents
            .iter()
            .filter(|p| !known(batch, p))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(Ok(missing));
        }
        let meta = placeholder_meta(ctx);
        let work = self.work(batch, &meta, false).map_err(Err)?;
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
        self.clock.observe(delta.delta.hlc);
        let events = delta.delta.events.clone();
        if !events.is_empty() {
            // An app not loaded yet may have handlers: recorded anyway, the
            // node checks before running one.
            let app = self.runtime.loaded(&blob);
            for (i, e) in events.iter().enumerate() {
                let method = handler_name(&e.kind);
                if app
                    .as_ref()
                    .is_none_or(|a| a.intent(&method) == Some(Intent::Mutating))
                {
                    batch
                        .handlers
                        .push((ctx, id, i as u32, method, e.data.clone()));
                }
            }
        }
        batch.deltas.push((id, delta));
        Ok(Some(events))
    }

    async fn run(
        &mut self,
        batch: &mut Batch,
        meta: &ContextMeta,
        app: &App,
        what: Run,
    ) -> Result<(serde_json::Value, Option<DeltaId>, Vec<Event>, Vec<String>), ExecError> {
        let genesis = matches!(what, Run::Init(_));
        let author = self.author;
        // Asked as it runs, not when it was queued: membership may have
        // changed, and the parents it gets may name newer governance.
        let governance = (self.standing)(meta)?;
        let work = self.work(batch, meta, genesis)?;
        let (Some(mut state), Some(mut private)) = (work.state.take(), work.private.take()) else {
            return Err(ExecError::ContextNotFound);
        };
        state.checkpoint();
        private.checkpoint();
        let app_version = work.meta.app_version.clone();
        let env = CallEnv::new(
            meta.id,
            author,
            app_version,
            state,
            private,
            self.clock.clone(),
        );
        let (env, result) = match what {
            Run::Call(method, args) => self.runtime.call(app, env, &method, args).await,
            Run::Init(args) => {
                let (env, r) = self.runtime.init(app, env, args).await;
                (env, r.map(|()| serde_json::Value::Null))
            }
        };
        let CallEnv {
            state,
            private,
            clock,
            ops,
            events,
            logs,
            ..
        } = env;
        self.clock = clock;
        let (Some(mut state), Some(mut private)) = (state, private) else {
            return Err(ExecError::Store("call environment lost its state".into()));
        };
        let work = batch
            .work
            .get_mut(&meta.id)
            .ok_or(ExecError::ContextNotFound)?;
        let output = match result {
            Ok(output) => {
                state.release();
                private.release();
                output
            }
            Err(e) => {
                state.rollback();
                private.rollback();
                work.state = Some(state);
                work.private = Some(private);
                return Err(e.into());
            }
        };
        work.state = Some(state);
        work.private = Some(private);
        if ops.is_empty() && events.is_empty() && !genesis {
            return Ok((output, None, events, logs));
        }
        let delta = Delta {
            version: 1,
            context: meta.id,
            author,
            parents: std::mem::take(&mut work.heads),
            governance,
            hlc: self.clock.tick(mero_crdt::hlc::wall_millis()),
            ops,
            events: events.clone(),
        };
        let id = delta.id();
        work.heads = vec![id];
        work.deltas += 1;
        work.meta.delta_count += 1;
        work.meta.last_hlc = work.meta.last_hlc.max(delta.hlc);
        // Signed with the rest of the batch's deltas when it goes to commit
        // (`sign_batch`): one signature for them all.
        batch.deltas.push((
            id,
            SignedDelta {
                delta,
                signature: [0; 64],
                proof: Default::default(),
            },
        ));
        batch.unsigned.insert(id);
        Ok((output, Some(id), events, logs))
    }
}

enum Run {
    Call(String, String),
    Init(String),
}

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

/// What a finished commit needs to answer its calls and announce its
/// deltas, from whichever thread wrote it.
struct Announcer {
    committed: broadcast::Sender<Committed>,
    author: Author,
    stats: Arc<ExecStats>,
}

impl Announcer {
    /// Answers a committed batch (or fails it); returns whether it
    /// committed. Deltas are announced in commit order: a batch starts
    /// committing only after the one before it has settled.
    fn settle(&self, answers: Vec<Answer>, done: Result<Committing, String>) -> bool {
        match done {
            Ok(Committing { roots, deltas }) => {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                answer(answers, &roots);
                for (id, delta) in deltas {
                    let _ = self.committed.send(Committed {
                        id,
                        local: delta.delta.author == self.author,
                        root_hash: roots.by_delta.get(&id).copied().unwrap_or_default(),
                        delta: Arc::new(delta),
                    });
                }
                true
            }
            Err(e) => {
                fail_answers(answers, &e);
                false
            }
        }
    }
}

/// Whether a commit on the blocking pool went through. If its thread died,
/// its callers' reply channels were dropped with it: they hear "stopped".
fn settled(done: Result<bool, tokio::task::JoinError>) -> bool {
    done.unwrap_or_else(|e| {
        tracing::error!(error = %e, "commit thread failed; its batch is not applied");
        false
    })
}

/// [`commit`], counted in `stats`, its error as text for the answers.
fn timed_commit(
    store: &Store,
    batch: Batch,
    last_hlc: mero_crdt::Hlc,
    stats: &ExecStats,
) -> Result<Committing, String> {
    let started = std::time::Instant::now();
    let r = commit(store, batch, last_hlc, stats).map_err(|e| e.to_string());
    stats
        .commit_nanos
        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    r
}

/// Writes a batch in one transaction and makes it durable; returns each
/// delta's root and the final root of each context.
fn commit(
    store: &Store,
    batch: Batch,
    last_hlc: mero_crdt::Hlc,
    stats: &ExecStats,
) -> Result<Committing, mero_store::StoreError> {
    let deltas = batch.deltas;
    let mut w = store.write()?;
    let mut roots = Roots::default();
    for (ctx, work) in &batch.work {
        if work.deleted {
            w.delete_context(ctx)?;
        } else if work.created {
            w.put_context_meta(&work.meta)?;
        }
    }
    let after = w.apply_deltas(deltas.iter().map(|(id, d)| (id, d)))?;
    for ((id, delta), root) in deltas.iter().zip(after) {
        roots.by_delta.insert(*id, root);
        roots.by_context.insert(delta.delta.context, root);
    }
    for (ctx, delta, index, method, data) in &batch.handlers {
        w.put_handler(ctx, &delta.0, *index, method, data)?;
    }
    for (ctx, ops, ids) in &batch.joins {
        let root = mero_crdt::apply_ops(&mut w.context_state(*ctx), ops)?;
        for id in ids {
            w.put_delta_stub(ctx, id)?;
        }
        roots.by_context.insert(*ctx, root);
    }
    for (ctx, work) in batch.work {
        if work.deleted {
            continue;
        }
        if let Some(private) = &work.private {
            for (k, v) in private.writes() {
                w.private_put(&ctx, k, v.as_deref())?;
            }
        }
        if work.joined {
            w.set_heads(&ctx, &work.heads)?;
        }
        if work.deltas > 0 || work.joined {
            let mut meta = work.meta;
            meta.last_hlc = meta.last_hlc.max(last_hlc);
            w.put_context_meta(&meta)?;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = roots.by_context.entry(ctx) {
            // Read in the transaction: the snapshot may predate the batch
            // committed just before this one.
            slot.insert(w.root_hash(&ctx)?);
        }
    }
    let started = std::time::Instant::now();
    w.commit()?;
    stats
        .write_nanos
        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    Ok(Committing { roots, deltas })
}

/// The method that handles app events of `kind` on the nodes that receive
/// them: `on_` and the kind in snake case (`TaskAdded` -> `on_task_added`).
/// An app declares a handler by having a mutating method of that name.
pub fn handler_name(kind: &str) -> String {
    let mut out = String::with_capacity(kind.len() + 8);
    out.push_str("on_");
    for (i, c) in kind.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a context exists as the batch sees it.
fn exists(batch: &Batch, ctx: &ContextId) -> bool {
    if let Some(w) = batch.work.get(ctx) {
        return !w.deleted;
    }
    if let Some(c) = batch.carry.get(ctx) {
        return !c.deleted;
    }
    matches!(batch.snapshot.context_meta(ctx), Ok(Some(_)))
}

#[derive(Default)]
struct Roots {
    by_delta: HashMap<DeltaId, Hash>,
    by_context: HashMap<ContextId, Hash>,
}

fn answer(answers: Vec<Answer>, roots: &Roots) {
    for a in answers {
        match a {
            Answer::Call {
                reply,
                mut outcome,
                ctx,
            } => {
                outcome.root_hash = outcome
                    .delta
                    .and_then(|d| roots.by_delta.get(&d))
                    .or_else(|| roots.by_context.get(&ctx))
                    .copied()
                    .unwrap_or_default();
                let _ = reply.send(Ok(outcome));
            }
            Answer::Create { reply, ctx, delta } => {
                let root_hash = roots.by_delta.get(&delta).copied().unwrap_or_default();
                let _ = reply.send(Ok(ContextCreated {
                    id: ctx,
                    delta,
                    root_hash,
                }));
            }
            Answer::Delete { reply, existed } => {
                let _ = reply.send(Ok(existed));
            }
            Answer::Apply { reply, id, events } => {
                let root_hash = roots.by_delta.get(&id).copied().unwrap_or_default();
                let _ = reply.send(Ok(Applied::Merged { root_hash, events }));
            }
            Answer::Replica { reply } => {
                let _ = reply.send(Ok(true));
            }
            Answer::Join { reply, ctx } => {
                let root = roots.by_context.get(&ctx).copied().unwrap_or_default();
                let _ = reply.send(Ok(root));
            }
        }
    }
}

fn fail_answers(answers: Vec<Answer>, why: &str) {
    tracing::error!(
        error = why,
        "commit failed; the batch's calls are not applied"
    );
    for a in answers {
        match a {
            Answer::Call { reply, .. } => drop(reply.send(store_err(why))),
            Answer::Create { reply, .. } => drop(reply.send(store_err(why))),
            Answer::Delete { reply, .. } => drop(reply.send(store_err(why))),
            Answer::Apply { reply, .. } => drop(reply.send(store_err(why))),
            Answer::Replica { reply } => drop(reply.send(store_err(why))),
            Answer::Join { reply, .. } => drop(reply.send(store_err(why))),
        }
    }
}

fn fail_all(jobs: Vec<Job>, why: &str) {
    for job in jobs {
        match job {
            Job::Call { reply, .. } => drop(reply.send(store_err(why))),
            Job::Create { reply, .. } => drop(reply.send(store_err(why))),
            Job::Delete { reply, .. } => drop(reply.send(store_err(why))),
            Job::Apply { reply, .. } => drop(reply.send(store_err(why))),
            Job::Replica { reply, .. } => drop(reply.send(store_err(why))),
            Job::Join { reply, .. } => drop(reply.send(store_err(why))),
            Job::Stop { reply } => drop(reply.send(Ok(()))),
        }
    }
}

fn store_err<T>(why: &str) -> Result<T, ExecError> {
    Err(ExecError::Store(why.to_string()))
}
