//! Counters of the executor, for logs and benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};

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
    /// The part of `exec_nanos` spent running migrations (`migrate`).
    pub migrate_nanos: AtomicU64,
    /// The part of `exec_nanos` spent running their checks.
    pub check_nanos: AtomicU64,
    /// The part of `commit_nanos` spent storing what migrations wrote
    /// (entries, counts, the Merkle trie), before it is made durable.
    pub migration_store_nanos: AtomicU64,
    /// The most bytes of arguments and merged values one batch took in
    /// (capped near 32 MiB: one job over the cap still runs, alone).
    pub largest_batch_bytes: AtomicU64,
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
