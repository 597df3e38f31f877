//! The worker: the one task that owns the write path. It takes every job
//! waiting as one batch, runs the calls on the runtime (the merges and joins
//! need no wasm), signs this node's deltas, and hands the batch to commit
//! while the next one already runs on top of it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ed25519_dalek::SigningKey;
use mero_crdt::{Author, Clock, ContextId, Delta, DeltaId, Event, SignedDelta};
use mero_runtime::{App, CallEnv, Runtime};
use mero_store::{ContextMeta, Store};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::batch::{Answer, Batch, Carried};
use crate::commit::{Announcer, fail_answers, timed_commit};
use crate::error::ExecError;
use crate::job::{Applied, CallOutcome, Committed, Job, Ran, Standing, fail_all, ops_weight};
use crate::lane::Lanes;
use crate::stats::ExecStats;

/// Most jobs committed together.
const MAX_BATCH: usize = 512;

/// Most bytes of arguments, merged values and what calls wrote taken into
/// one batch (one job over it still runs, alone): a batch holds what its
/// calls write several times over (their arguments, the guest's copy, the
/// overlay, the delta, the log record) until it commits.
pub(crate) const MAX_BATCH_BYTES: usize = 32 << 20;

/// Test-only (feature `fault-injection`): asked before each batch is
/// written, with whether a later batch may build on it (it commits on the
/// blocking pool); an error fails the batch as a failed write would. None
/// in a node.
pub type CommitFault = Arc<dyn Fn(bool) -> Result<(), String> + Send + Sync>;

/// A batch being committed on a blocking thread, which also answers its
/// calls the moment they are durable; the handle says whether it committed.
struct InFlight {
    handle: tokio::task::JoinHandle<bool>,
    carry: HashMap<ContextId, Carried>,
    ids: HashSet<DeltaId>,
}

/// The state of the executor task; the handle builds it and spawns
/// [`serve`](Worker::serve).
pub(crate) struct Worker {
    pub(crate) committed: broadcast::Sender<Committed>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) store: Store,
    /// Signs this node's deltas.
    pub(crate) key: SigningKey,
    pub(crate) author: Author,
    pub(crate) clock: Clock,
    pub(crate) stats: Arc<ExecStats>,
    pub(crate) standing: Standing,
    /// Upgrades that wait for the next batch (see `upgrade`).
    pub(crate) deferred: Vec<Job>,
    pub(crate) commit_fault: Option<CommitFault>,
    /// Contexts whose calls run on lanes of their own (see `lane`).
    pub(crate) lanes: Lanes,
}

impl Worker {
    /// Runs until every handle is gone or a stop is asked for; returns the
    /// stop request. `self`, and with it the store, is dropped on return.
    pub(crate) async fn serve(
        mut self,
        mut rx: mpsc::Receiver<Job>,
    ) -> Option<oneshot::Sender<Result<(), ExecError>>> {
        let mut stop: Option<oneshot::Sender<Result<(), ExecError>>> = None;
        let mut inflight: Option<InFlight> = None;
        loop {
            // Wait for work, noting a commit or a lane's call that
            // finishes meanwhile.
            let first = if let Some(job) = self.deferred.pop() {
                Some(job)
            } else {
                let woke = match inflight.as_mut() {
                    Some(f) => tokio::select! {
                        job = rx.recv() => Woke::Job(job),
                        done = &mut f.handle => Woke::Committed(done),
                        freed = self.lanes.freed.recv() => Woke::Freed(freed),
                    },
                    None => tokio::select! {
                        job = rx.recv() => Woke::Job(job),
                        freed = self.lanes.freed.recv() => Woke::Freed(freed),
                    },
                };
                match woke {
                    Woke::Job(job) => job,
                    Woke::Committed(done) => {
                        inflight = None;
                        settled(done);
                        self.release_waiting(|_| false);
                        continue;
                    }
                    Woke::Freed(freed) => {
                        if let Some(f) = freed {
                            self.freed(f);
                        }
                        continue;
                    }
                }
            };
            let Some(first) = first else { break };
            // Upgrades put off by the last batch run first in this one.
            let mut jobs = std::mem::take(&mut self.deferred);
            jobs.push(first);
            let mut bytes: usize = jobs.iter().map(Job::weight).sum();
            while jobs.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(job) => {
                        bytes = bytes.saturating_add(job.weight());
                        jobs.push(job);
                    }
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
            // A commit already done leaves nothing to build on: this batch
            // reads it from the store (so a call of a context it held may
            // go to a lane of its own).
            if inflight.as_ref().is_some_and(|f| f.handle.is_finished())
                && let Some(f) = inflight.take()
            {
                settled(f.handle.await);
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
            self.release_waiting(|ctx| carry.contains_key(ctx));
            let mut batch = Batch::new(snapshot, carry, carried_ids);
            let mut jobs = jobs.into_iter();
            while let Some(job) = jobs.next() {
                self.run_job(&mut batch, job).await;
                // What the calls wrote counts too: past the cap, the rest
                // run first in the next batch, in order.
                if batch.written >= MAX_BATCH_BYTES {
                    self.deferred.extend(jobs);
                    break;
                }
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
                        job = rx.recv(), if open && batch.answers.len() < MAX_BATCH && bytes.saturating_add(batch.written) < MAX_BATCH_BYTES => match job {
                            Some(Job::Stop { reply }) => {
                                stop = Some(reply);
                                rx.close();
                                open = false;
                            }
                            Some(job) => {
                                bytes = bytes.saturating_add(job.weight());
                                self.run_job(&mut batch, job).await;
                            }
                            None => open = false,
                        },
                    }
                };
                if !committed {
                    fail_answers(
                        std::mem::take(&mut batch.answers),
                        "the batch it built on failed to commit",
                    );
                    self.release_waiting(|_| false);
                    if stop.is_some() {
                        break;
                    }
                    continue;
                }
            }
            // A batch that migrated a context commits here as well: the
            // migration's writes leave its overlay for the commit, so no
            // batch may build on them before they are stored.
            self.stats.largest_batch_bytes.fetch_max(
                bytes.saturating_add(batch.written) as u64,
                Ordering::Relaxed,
            );
            let lone = batch.answers.len() <= 1 && rx.is_empty() && stop.is_none();
            if lone || !batch.migrations.is_empty() {
                // A lone call with nothing waiting behind it: commit on this
                // thread. It skips two thread hand-offs (to the blocking
                // pool and back), ~10% of its round trip. The worker is
                // blocked for one durable write; the runtime's other workers
                // serve the rest. Under load, batches are larger and commit
                // on the blocking pool, overlapping the next batch.
                self.sign_batch(&mut batch);
                let answers = std::mem::take(&mut batch.answers);
                let done = fault(&self.commit_fault, false).and_then(|()| {
                    timed_commit(&self.store, batch, self.clock.last(), &self.stats)
                });
                self.announcer().settle(answers, done);
                self.release_waiting(|_| false);
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
        self.drain_lanes().await;
        stop
    }

    /// Executes one job into `batch`, counting it and its time.
    pub(crate) async fn run_job(&mut self, batch: &mut Batch, job: Job) {
        self.stats.jobs.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        self.execute(batch, job).await;
        self.stats
            .exec_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn announcer(&self) -> Announcer {
        Announcer {
            committed: self.committed.clone(),
            author: self.author,
            stats: self.stats.clone(),
        }
    }

    /// Signs the deltas this node authored in the batch, with one
    /// signature: a signature costs more than executing a small call, and
    /// under load a batch holds many. Each delta still verifies on its own.
    pub(crate) fn sign_batch(&self, batch: &mut Batch) {
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
        let carry = batch.carry_over();
        let ids = batch.deltas.iter().map(|(id, _)| *id).collect();
        let answers = std::mem::take(&mut batch.answers);
        let store = self.store.clone();
        let last_hlc = self.clock.last();
        let announcer = self.announcer();
        let commit_fault = self.commit_fault.clone();
        // The blocking thread answers too: a caller hears back as soon as its
        // call is durable, not when this worker next looks up from executing.
        let handle = tokio::task::spawn_blocking(move || {
            let done = fault(&commit_fault, true)
                .and_then(|()| timed_commit(&store, batch, last_hlc, &announcer.stats));
            announcer.settle(answers, done)
        });
        InFlight { handle, carry, ids }
    }

    /// Runs one job into the batch; answers failures right away.
    async fn execute(&mut self, batch: &mut Batch, job: Job) {
        if job.context().is_some_and(|ctx| batch.migrating(&ctx)) {
            // Its migration's writes are on their way to the store and out
            // of the batch's view: the next batch reads them from there.
            self.deferred.push(job);
            return;
        }
        // Its context's call runs on a lane: after that call.
        let Some(job) = self.park(job) else {
            return;
        };
        let job = match &job {
            Job::Call { meta, .. } => {
                let ctx = meta.id;
                match self.take_to_lane(batch, ctx, job) {
                    Some(job) => job,
                    None => return,
                }
            }
            _ => job,
        };
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
                let started = std::time::Instant::now();
                let ran = self.run(batch, &meta, &app, Run::Call(method, args)).await;
                self.timed_call(ctx, started.elapsed());
                match ran {
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
                let exists = batch.exists(&new.id);
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
                let r = batch.merge(id, *delta, &mut self.clock, &self.runtime);
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
                let exists = batch.exists(&meta.id);
                if exists {
                    let _ = reply.send(Ok(false));
                    return;
                }
                let id = meta.id;
                match batch.work(&meta, true) {
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
            } => match batch.join(ctx, snapshot) {
                Ok(()) => batch.answers.push(Answer::Join { reply, ctx }),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Job::Refuse { ctx, deltas, reply } => match batch.refuse(ctx, deltas) {
                Ok(()) => batch.answers.push(Answer::Join { reply, ctx }),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Job::Upgrade {
                meta,
                upgrade,
                reply,
            } => {
                if let Ran::Defer(meta, upgrade, reply) =
                    self.upgrade(batch, meta, upgrade, reply).await
                {
                    self.deferred.push(Job::Upgrade {
                        meta,
                        upgrade,
                        reply,
                    });
                }
            }
            Job::Delete { ctx, keep, reply } => {
                let existed = batch.exists(&ctx);
                batch.delete(ctx);
                if let (true, Some(meta)) = (existed, keep)
                    && let Some(w) = batch.work.get_mut(&ctx)
                {
                    w.meta = *meta;
                    w.reset = true;
                }
                batch.answers.push(Answer::Delete { reply, existed });
            }
        }
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
        let work = batch.work(meta, genesis)?;
        if work.meta.blob != app.hash() {
            // An upgrade committed while the call waited: it was made for
            // the old version, and must not run against the new state.
            return Err(ExecError::Denied {
                kind: "UpgradeInProgress",
                message: format!(
                    "the context moved to version {} while the call waited; retry it",
                    work.meta.app_version
                ),
            });
        }
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
            layout: work.meta.state_version,
            hlc: self.clock.tick(mero_crdt::hlc::wall_millis()),
            ops,
            events: events.clone(),
        };
        let id = delta.id();
        batch.written = batch.written.saturating_add(ops_weight(&delta.ops));
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

/// What woke the worker while it waited for work.
#[allow(
    clippy::large_enum_variant,
    reason = "held on the stack for a moment; boxing would cost every job an allocation"
)]
enum Woke {
    Job(Option<Job>),
    Committed(Result<bool, tokio::task::JoinError>),
    Freed(Option<crate::lane::Freed>),
}

/// What the test hook, if any, says of the commit about to start.
pub(crate) fn fault(hook: &Option<CommitFault>, pipelined: bool) -> Result<(), String> {
    hook.as_ref().map_or(Ok(()), |f| f(pipelined))
}

/// Whether a commit on the blocking pool went through. If its thread died,
/// its callers' reply channels were dropped with it: they hear "stopped".
fn settled(done: Result<bool, tokio::task::JoinError>) -> bool {
    done.unwrap_or_else(|e| {
        tracing::error!(error = %e, "commit thread failed; its batch is not applied");
        false
    })
}
