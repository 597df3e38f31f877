//! The owner's side of authored entries after an upgrade. Only a member
//! can rewrite its own authored entries (a migration cannot: it runs as no
//! member), so right after a context moved to a new version this node runs
//! the app's `migrate_my_entries` as its member, and reports in its
//! heartbeats what is left (`authoredRemaining`) and what it rewrote that
//! no peer has yet shown it holds (`authoredUnacknowledged`): "safe to
//! disconnect" is both at 0.

use std::collections::HashMap;
use std::sync::Mutex;

use mero_crdt::ContextId;

use super::b58;
use crate::Node;

/// Per context: entries of this member not rewritten yet, and rewrites
/// with the root they led to, until a peer reports that root.
#[derive(Default)]
pub(crate) struct Authored {
    progress: Mutex<HashMap<ContextId, Progress>>,
}

#[derive(Clone, Copy, Default)]
struct Progress {
    remaining: u64,
    unacknowledged: Option<(u64, [u8; 32])>,
}

impl Authored {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContextId, Progress>> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (remaining, unacknowledged) of `ctx`; a rewrite counts as
    /// acknowledged once `acked` says a peer reported a root that holds
    /// it (the root it led to, or this node's current one).
    pub(crate) fn figures(&self, ctx: &ContextId, acked: impl Fn(&[u8; 32]) -> bool) -> (u64, u64) {
        let mut all = self.lock();
        let Some(p) = all.get_mut(ctx) else {
            return (0, 0);
        };
        if let Some((_, root)) = p.unacknowledged
            && acked(&root)
        {
            p.unacknowledged = None;
        }
        (p.remaining, p.unacknowledged.map_or(0, |(n, _)| n))
    }
}

/// What `migrate_my_entries` answers.
#[derive(serde::Deserialize)]
struct Summary {
    converted: u64,
    remaining: u64,
}

impl Node {
    /// Has this node's member rewrite its authored entries of `ctx` under
    /// the version the context now runs, in the background. A member that
    /// may not write (or an app whose rewrite fails) leaves them pending:
    /// what is left is then counted, for the status to show.
    pub(super) fn rewrite_mine(&self, ctx: ContextId) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            let null = serde_json::Value::Null;
            // Recorded by `noted_rewrite`, as an explicit call is.
            let Err(e) = node.execute(&ctx, "migrate_my_entries", &null).await else {
                return;
            };
            tracing::debug!(context = %b58(&ctx), error = %e, "no owner-driven rewrite");
            // No such method (no authored field): nothing to count either.
            if let Ok(o) = node.execute(&ctx, "count_my_pending", &null).await
                && let Some(remaining) = o.output.as_u64()
            {
                node.inner.authored.lock().insert(
                    ctx,
                    Progress {
                        remaining,
                        unacknowledged: None,
                    },
                );
                node.inner.heartbeat_due.notify_one();
            }
        });
    }

    /// Records what a committed `migrate_my_entries` call of `ctx` did
    /// (`output` is its result, `root` the root after it), however it was
    /// called.
    pub(crate) fn noted_rewrite(&self, ctx: ContextId, output: &serde_json::Value, root: [u8; 32]) {
        let Ok(summary) = serde_json::from_value::<Summary>(output.clone()) else {
            // An app of its own with that name: not ours to read.
            return;
        };
        tracing::info!(context = %b58(&ctx), converted = summary.converted, remaining = summary.remaining, "owner-driven convert: re-stamped this member's authored entries");
        {
            let mut all = self.inner.authored.lock();
            let p = all.entry(ctx).or_default();
            p.remaining = summary.remaining;
            if summary.converted > 0 {
                let before = p.unacknowledged.map_or(0, |(n, _)| n);
                p.unacknowledged = Some((before + summary.converted, root));
            }
        }
        // The members hear the new figures now, not at the next beat.
        self.inner.heartbeat_due.notify_one();
    }
}
