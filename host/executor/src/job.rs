//! What the handle and the worker exchange: the jobs, the values they carry
//! and the answers they come back with.

use std::sync::Arc;

use mero_crdt::{Author, ContextId, DeltaId, Event, Hash, Hlc, SignedDelta, StateSnapshot};
use mero_runtime::{App, Runtime};
use mero_store::ContextMeta;
use tokio::sync::oneshot;

use crate::error::{ExecError, store_err};

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

/// Moving a context to another version of its application.
#[derive(Clone)]
pub struct Upgrade {
    /// The application record it will run.
    pub application: [u8; 32],
    /// The new component, loaded on `runtime`.
    pub app: Arc<App>,
    /// The runtime that runs the migration: deterministic (fuel, stopped
    /// clocks), so every node computes the same state.
    pub runtime: Arc<Runtime>,
    /// The new app version.
    pub app_version: String,
    /// `Some(from)` runs the new app's migration from state version `from`
    /// (and its check, if it has one); `None` swaps the code only.
    pub migrate_from: Option<u32>,
    /// Who the migration's writes are stamped with, on every node alike:
    /// the member that ordered the upgrade.
    pub author: Author,
    /// The clock its writes start after, on every node alike.
    pub barrier: Hlc,
    /// Run the migration and its check, then throw the result away: the
    /// verdict without the change.
    pub dry_run: bool,
    /// `Some(heads)`: migrate only if the context's DAG heads are exactly
    /// these (the cut the ordering admin migrated at), else refuse with
    /// `NotAtCut` and change nothing. A member that holds writes past the
    /// cut must not fold them into its migration: its root would differ.
    pub cut: Option<Vec<DeltaId>>,
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrade")
            .field("app_version", &self.app_version)
            .field("migrate_from", &self.migrate_from)
            .finish_non_exhaustive()
    }
}

/// A context that moved to another version.
#[derive(Debug, Clone)]
pub struct Upgraded {
    /// Its root hash afterwards.
    pub root_hash: Hash,
    /// State entries the migration wrote.
    pub writes: usize,
    /// The context's DAG heads it migrated at: the cut it read.
    pub heads: Vec<DeltaId>,
}

/// Where this node stands in a context's governance when it authors a
/// delta there: the governance heads the delta names (its author's
/// authority is judged at them), or why this node may not write.
pub type Standing = Arc<dyn Fn(&ContextMeta) -> Result<Vec<[u8; 32]>, ExecError> + Send + Sync>;

pub(crate) enum Job {
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
    /// Deletes a context; with `keep`, resets it instead: its replicated
    /// state goes, its private storage stays, `keep` is its new record.
    Delete {
        ctx: ContextId,
        keep: Option<Box<ContextMeta>>,
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
    /// Records deltas refused for good as known, with no effect: what
    /// builds on them applies without them.
    Refuse {
        ctx: ContextId,
        deltas: Vec<SignedDelta>,
        reply: oneshot::Sender<Result<Hash, ExecError>>,
    },
    Upgrade {
        meta: Box<ContextMeta>,
        upgrade: Box<Upgrade>,
        reply: oneshot::Sender<Result<Upgraded, ExecError>>,
    },
}

impl Job {
    /// The context the job works on, if one that exists already.
    /// Roughly the bytes the job brings into a batch: what a call or a
    /// merge may write. Bounds how much one batch holds at once.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Job::Call { args, .. } => args.len(),
            Job::Apply { delta, .. } => ops_weight(&delta.delta.ops),
            _ => 0,
        }
    }

    pub(crate) fn context(&self) -> Option<ContextId> {
        match self {
            Job::Call { meta, .. } => Some(meta.id),
            Job::Create { new, .. } => Some(new.id),
            Job::Delete { ctx, .. } | Job::Join { ctx, .. } | Job::Refuse { ctx, .. } => Some(*ctx),
            Job::Apply { delta, .. } => Some(delta.delta.context),
            Job::Replica { meta, .. } | Job::Upgrade { meta, .. } => Some(meta.id),
            Job::Stop { .. } => None,
        }
    }
}

/// Answers jobs that will not run with `why`; a stop request is simply
/// acknowledged.
pub(crate) fn fail_all(jobs: Vec<Job>, why: &str) {
    for job in jobs {
        match job {
            Job::Call { reply, .. } => drop(reply.send(store_err(why))),
            Job::Create { reply, .. } => drop(reply.send(store_err(why))),
            Job::Delete { reply, .. } => drop(reply.send(store_err(why))),
            Job::Apply { reply, .. } => drop(reply.send(store_err(why))),
            Job::Replica { reply, .. } => drop(reply.send(store_err(why))),
            Job::Join { reply, .. } | Job::Refuse { reply, .. } => drop(reply.send(store_err(why))),
            Job::Upgrade { reply, .. } => drop(reply.send(store_err(why))),
            Job::Stop { reply } => drop(reply.send(Ok(()))),
        }
    }
}

/// What running an upgrade job came to.
pub(crate) enum Ran {
    /// Joined the batch; answered at commit.
    Staged,
    /// The context was already touched in this batch: run it first in the
    /// next one, so that its frozen state is the committed one.
    Defer(
        Box<ContextMeta>,
        Box<Upgrade>,
        oneshot::Sender<Result<Upgraded, ExecError>>,
    ),
}

/// What `ops` weigh against a batch's byte cap: their keys, their
/// register values, and a little for each.
pub(crate) fn ops_weight(ops: &[mero_crdt::Op]) -> usize {
    ops.iter()
        .map(|op| op.key.len() + 64)
        .sum::<usize>()
        .saturating_add(register_bytes(ops))
}

/// The bytes of the register values in `ops`.
fn register_bytes(ops: &[mero_crdt::Op]) -> usize {
    ops.iter()
        .map(|op| match &op.entry {
            mero_crdt::Entry::Register(r) => r.value.as_ref().map_or(0, Vec::len),
            mero_crdt::Entry::Authored(a) => a.register.value.as_ref().map_or(0, Vec::len),
            _ => 0,
        })
        .sum()
}
