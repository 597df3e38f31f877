//! Writing a batch in one transaction and making it durable, then answering
//! its jobs and announcing its deltas, from whichever thread wrote it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mero_crdt::{Author, ContextId, DeltaId, Hash, SignedDelta};
use mero_store::Store;
use tokio::sync::broadcast;

use crate::batch::{Answer, Batch};
use crate::error::store_err;
use crate::job::{Applied, Committed, ContextCreated};
use crate::stats::ExecStats;

/// What a committed batch gives back.
pub(crate) struct Committing {
    roots: Roots,
    deltas: Vec<(DeltaId, SignedDelta)>,
}

/// The root hash after each delta, and the last of each context.
#[derive(Default)]
struct Roots {
    by_delta: HashMap<DeltaId, Hash>,
    by_context: HashMap<ContextId, Hash>,
}

/// What a finished commit needs to answer its calls and announce its
/// deltas, from whichever thread wrote it.
pub(crate) struct Announcer {
    pub(crate) committed: broadcast::Sender<Committed>,
    pub(crate) author: Author,
    pub(crate) stats: Arc<ExecStats>,
}

impl Announcer {
    /// Answers a committed batch (or fails it); returns whether it
    /// committed. Deltas are announced in commit order: a batch starts
    /// committing only after the one before it has settled.
    pub(crate) fn settle(&self, answers: Vec<Answer>, done: Result<Committing, String>) -> bool {
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

/// [`commit`], counted in `stats`, its error as text for the answers.
pub(crate) fn timed_commit(
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
    mut batch: Batch,
    last_hlc: mero_crdt::Hlc,
    stats: &ExecStats,
) -> Result<Committing, mero_store::StoreError> {
    let deltas = batch.deltas;
    let mut w = store.write()?;
    let mut roots = Roots::default();
    for (ctx, work) in &batch.work {
        if work.deleted && work.reset {
            w.reset_context(ctx)?;
            w.put_context_meta(&work.meta)?;
        } else if work.deleted {
            w.delete_context(ctx)?;
        } else if work.created {
            w.put_context_meta(&work.meta)?;
        }
    }
    // Stored as the overlay holds them, each freed once written: a
    // migration may have rewritten every entry of its context.
    for (ctx, writes) in std::mem::take(&mut batch.migrations) {
        let started = std::time::Instant::now();
        let root = w.put_writes(ctx, writes)?;
        stats
            .migration_store_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        roots.by_context.insert(ctx, root);
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
    for (ctx, delta) in &batch.refused {
        w.put_refused_delta(ctx, delta)?;
    }
    for (ctx, delta) in &batch.joined_bodies {
        w.put_joined_delta(ctx, delta)?;
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
        if work.deltas > 0 || work.joined || work.meta_changed {
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

/// Answers each job of a committed batch, with the root after its delta
/// (or its context's, if it made none).
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
            Answer::Upgrade {
                reply,
                ctx,
                writes,
                heads,
            } => {
                let root_hash = roots.by_context.get(&ctx).copied().unwrap_or_default();
                let _ = reply.send(Ok(crate::job::Upgraded {
                    root_hash,
                    writes,
                    heads,
                }));
            }
        }
    }
}

/// Answers each job of a batch that did not commit with `why`.
pub(crate) fn fail_answers(answers: Vec<Answer>, why: &str) {
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
            Answer::Upgrade { reply, .. } => drop(reply.send(store_err(why))),
            Answer::Join { reply, .. } => drop(reply.send(store_err(why))),
        }
    }
}
