//! A lane of its own for a context whose calls run long.
//!
//! The worker executes the calls of a batch one after another, so a call
//! that loops until its deadline would hold up every other context's calls
//! in that batch and the batches behind it. A context whose call ran longer
//! than [`SLOW_CALL`] is therefore moved off the worker: its next calls run
//! one at a time on a task of their own (on a fresh snapshot, committed by
//! that task), while the worker goes on with the other contexts. Jobs for
//! the context that arrive meanwhile (calls, merges, upgrades) wait, in
//! order, until its call is done, so only one writer ever touches a
//! context. A call that comes back fast returns the context to the worker.
//! The first long call of a context still holds up its batch once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mero_crdt::{Clock, ContextId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::batch::Batch;
use crate::commit::timed_commit;
use crate::job::{Job, fail_all};
use crate::worker::{Worker, fault};

/// A call that runs longer than this moves its context to a lane of its
/// own: calls usually take well under a millisecond.
pub(crate) const SLOW_CALL: Duration = Duration::from_millis(100);

/// A context's call, done on its own lane.
pub(crate) struct Freed {
    ctx: ContextId,
    /// The lane's clock after the call: the worker's must not fall behind.
    clock: Clock,
    /// Whether the call ran long again.
    slow: bool,
}

/// The worker's bookkeeping of contexts on lanes of their own.
pub(crate) struct Lanes {
    /// Contexts whose last call ran long.
    slow: HashSet<ContextId>,
    /// Jobs waiting for a context's call on its lane, in arrival order.
    parked: HashMap<ContextId, Vec<Job>>,
    /// Running lane calls.
    running: JoinSet<()>,
    freed_tx: mpsc::Sender<Freed>,
    pub(crate) freed: mpsc::Receiver<Freed>,
}

impl Default for Lanes {
    fn default() -> Self {
        // One message per running lane: a context runs at most one.
        let (freed_tx, freed) = mpsc::channel(1024);
        Lanes {
            slow: HashSet::new(),
            parked: HashMap::new(),
            running: JoinSet::new(),
            freed_tx,
            freed,
        }
    }
}

impl Worker {
    /// Whether `job` waits for its context's call on a lane (it is then
    /// kept, in order, for when that call is done).
    pub(crate) fn park(&mut self, job: Job) -> Option<Job> {
        match job.context() {
            Some(ctx) if self.lanes.parked.contains_key(&ctx) => {
                self.lanes.parked.entry(ctx).or_default().push(job);
                None
            }
            _ => Some(job),
        }
    }

    /// Whether a call of `ctx` goes to a lane of its own: its last call ran
    /// long, and this batch (and the one committing) hold nothing of it.
    pub(crate) fn goes_to_lane(&self, batch: &Batch, ctx: &ContextId) -> bool {
        self.lanes.slow.contains(ctx) && !batch.work.contains_key(ctx) && !batch.carries(ctx)
    }

    /// Notes how long a call of `ctx` took on the worker.
    pub(crate) fn timed_call(&mut self, ctx: ContextId, took: Duration) {
        if took > SLOW_CALL {
            tracing::info!(context = ?ctx, ms = took.as_millis() as u64, "a call ran long: the context's calls run on a lane of their own");
            self.lanes.slow.insert(ctx);
        }
    }

    /// Runs call `job` of `ctx` on a lane of its own, committing it there.
    pub(crate) fn run_on_lane(&mut self, ctx: ContextId, job: Job) {
        self.lanes.parked.insert(ctx, Vec::new());
        let mut lane = Worker {
            committed: self.committed.clone(),
            runtime: self.runtime.clone(),
            store: self.store.clone(),
            key: self.key.clone(),
            author: self.author,
            clock: self.clock.clone(),
            stats: self.stats.clone(),
            standing: self.standing.clone(),
            deferred: Vec::new(),
            commit_fault: self.commit_fault.clone(),
            lanes: Lanes::default(),
        };
        let freed = self.lanes.freed_tx.clone();
        self.lanes.running.spawn(async move {
            let started = Instant::now();
            match lane.store.snapshot() {
                Err(e) => fail_all(vec![job], &e.to_string()),
                Ok(snapshot) => {
                    let mut batch = Batch::new(snapshot, HashMap::new(), HashSet::new());
                    lane.run_job(&mut batch, job).await;
                    lane.sign_batch(&mut batch);
                    let answers = std::mem::take(&mut batch.answers);
                    let done = fault(&lane.commit_fault, false).and_then(|()| {
                        timed_commit(&lane.store, batch, lane.clock.last(), &lane.stats)
                    });
                    lane.announcer().settle(answers, done);
                }
            }
            let slow = started.elapsed() > SLOW_CALL;
            let _ = freed
                .send(Freed {
                    ctx,
                    clock: lane.clock,
                    slow,
                })
                .await;
        });
    }

    /// A lane's call is done: the jobs that waited for it run next, first
    /// in the next batch.
    pub(crate) fn freed(&mut self, f: Freed) {
        self.clock.observe(f.clock.last());
        if !f.slow {
            self.lanes.slow.remove(&f.ctx);
        }
        let waiting = self.lanes.parked.remove(&f.ctx).unwrap_or_default();
        // `deferred` runs in order, the last pushed first taken as the
        // batch's first job and then the rest behind it.
        self.deferred.extend(waiting);
    }

    /// At a stop: waits for the lanes' calls and refuses what waited.
    pub(crate) async fn drain_lanes(&mut self) {
        while self.lanes.running.join_next().await.is_some() {}
        for (_, jobs) in self.lanes.parked.drain() {
            fail_all(jobs, "the node is shutting down");
        }
    }
}
