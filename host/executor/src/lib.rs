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
//!
//! This crate owns the node's write path: the [`Executor`] handle and the
//! jobs it queues, the batching, the merge of remote deltas (no wasm runs),
//! the signing of this node's deltas and the commit. It runs each call on
//! [`mero_runtime`] and writes through [`mero_store`]; it may not know the
//! network, governance or anything of the node above it; policy reaches it
//! only through the [`Standing`] hook and the `authorize` closure of
//! [`Executor::call_authorized`].
//!
//! Layout:
//! - `handle`: [`Executor`], its methods, and the signature and clock checks
//!   a remote delta passes before it is queued.
//! - `job`: the protocol between the handle and the worker: the jobs, the
//!   values they carry and answer with, and the [`Standing`] hook.
//! - `worker`: the serve loop, running a job into a batch, signing, and
//!   handing a batch to commit.
//! - `batch`: one batch's state per context and the pure parts of a job
//!   (taking a context's share, merging a remote delta, joining a snapshot).
//! - `upgrade`: moving a context to another version of its app: the
//!   migration and its check on a staged state, committed only if both
//!   pass; and a migration run again on a state held in memory, stored
//!   nowhere, to prove a snapshot that crossed it.
//! - `commit`: writing a batch in one transaction, then answering its calls
//!   and announcing its deltas.
//! - `lane`: a lane of its own for a context whose calls run long, so
//!   they do not hold up the other contexts' calls.
//! - `error`, `stats`: [`ExecError`] and [`ExecStats`].
//!
//! Tests: `tests/engine.rs` (calls, batching, pipelining), `tests/lanes.rs`
//! (a context whose calls run long, on a lane of its own),
//! `tests/commit_failure.rs` (a failed commit and the batch built on it,
//! with the `fault-injection` hook) and `tests/replicas.rs` (deltas between
//! in-process replicas).

mod batch;
mod commit;
mod error;
mod handle;
mod job;
mod lane;
mod stats;
mod upgrade;
mod worker;

pub use batch::MAX_HANDLERS_PER_DELTA;
pub use error::ExecError;
pub use handle::{
    CheckedSnapshot, Executor, MAX_CLOCK_DRIFT_MILLIS, MAX_SNAPSHOT_BYTES, latest_allowed,
};
pub use job::{
    Applied, CallOutcome, Committed, ContextCreated, NewContext, Standing, Upgrade, Upgraded,
};
pub use stats::ExecStats;
pub use worker::CommitFault;
