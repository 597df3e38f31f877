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
//! context. A context goes back to the worker once its calls have been
//! fast for [`LANE_COOLDOWN`] since its last long one: a guest alternating
//! fast calls and looping ones cannot hold the worker up every other call.
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

/// How long a context stays on its lane after its last long call, however
/// fast its calls since. A lane commits each call alone, so this costs the
/// context batching for a while, not correctness.
pub(crate) const LANE_COOLDOWN: Duration = Duration::from_secs(60);

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
    /// Contexts on lanes, with when a call of theirs last ran long.
    slow: HashMap<ContextId, Instant>,
    /// Jobs waiting for a context's call on its lane, in arrival order.
    parked: HashMap<ContextId, Vec<Job>>,
    /// Calls of slow contexts that wait for the commit holding earlier
    /// writes of theirs (the batch being built, or the one committing):
    /// a lane reads the store, so it starts after that commit.
    waiting: Vec<(ContextId, Job)>,
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
            slow: HashMap::new(),
            parked: HashMap::new(),
            waiting: Vec::new(),
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

    /// Takes call `job` of `ctx` to a lane of its own if its context's last
    /// call ran long (handing it back otherwise): right away, or once the
    /// commit holding the context's earlier writes is done.
    pub(crate) fn take_to_lane(&mut self, batch: &Batch, ctx: ContextId, job: Job) -> Option<Job> {
        if !self.lanes.slow.contains_key(&ctx) {
            return Some(job);
        }
        if batch.work.contains_key(&ctx) || batch.carries(&ctx) {
            // Its later jobs wait behind it, in order.
            self.lanes.parked.entry(ctx).or_default();
            self.lanes.waiting.push((ctx, job));
        } else {
            self.run_on_lane(ctx, job);
        }
        None
    }

    /// Starts the waiting lane calls whose contexts `held` (the commit in
    /// flight) no longer holds.
    pub(crate) fn release_waiting(&mut self, held: impl Fn(&ContextId) -> bool) {
        let (still, free): (Vec<_>, Vec<_>) = std::mem::take(&mut self.lanes.waiting)
            .into_iter()
            .partition(|(ctx, _)| held(ctx));
        self.lanes.waiting = still;
        for (ctx, job) in free {
            self.run_on_lane(ctx, job);
        }
    }

    /// Notes how long a call of `ctx` took on the worker.
    pub(crate) fn timed_call(&mut self, ctx: ContextId, took: Duration) {
        if took > SLOW_CALL {
            tracing::info!(context = ?ctx, ms = took.as_millis() as u64, "a call ran long: the context's calls run on a lane of their own");
            self.lanes.slow.insert(ctx, Instant::now());
        }
    }

    /// Runs call `job` of `ctx` on a lane of its own, committing it there.
    pub(crate) fn run_on_lane(&mut self, ctx: ContextId, job: Job) {
        // Jobs parked while it waited for a commit stay parked.
        self.lanes.parked.entry(ctx).or_default();
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
        // On a thread of its own, not a task of the runtime: a guest that
        // loops until its deadline keeps its thread busy, yielding only at
        // each epoch tick, which would slow every task queued on that
        // runtime thread (the worker's own, when woken from there).
        let runtime = tokio::runtime::Handle::current();
        self.lanes.running.spawn_blocking(move || {
            runtime.block_on(async move {
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
            })
        });
    }

    /// A lane's call is done: the jobs that waited for it run next, first
    /// in the next batch.
    pub(crate) fn freed(&mut self, f: Freed) {
        self.clock.observe(f.clock.last());
        if f.slow {
            self.lanes.slow.insert(f.ctx, Instant::now());
        } else if self
            .lanes
            .slow
            .get(&f.ctx)
            .is_some_and(|last| last.elapsed() > LANE_COOLDOWN)
        {
            self.lanes.slow.remove(&f.ctx);
        }
        let waiting = self.lanes.parked.remove(&f.ctx).unwrap_or_default();
        // `deferred` runs in order, the last pushed first taken as the
        // batch's first job and then the rest behind it.
        self.deferred.extend(waiting);
    }

    /// At a stop: runs the lanes' calls and refuses what waited for them.
    pub(crate) async fn drain_lanes(&mut self) {
        // Nothing is committing any more: the calls that waited for it run.
        self.release_waiting(|_| false);
        while self.lanes.running.join_next().await.is_some() {}
        for (_, jobs) in self.lanes.parked.drain() {
            fail_all(jobs, "the node is shutting down");
        }
    }
}
