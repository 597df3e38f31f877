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
    /// acknowledged once a peer reported a root at least as far as the
    /// one it led to (`acked` says whether a peer reported `root`).
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
    /// the version the context now runs, in the background.
    pub(super) fn rewrite_mine(&self, ctx: ContextId) {
        let node = self.clone();
        tokio::spawn(async move {
            let outcome = node
                .execute(&ctx, "migrate_my_entries", &serde_json::Value::Null)
                .await;
            let (summary, o_root) = match outcome {
                Ok(o) => match serde_json::from_value::<Summary>(o.output) {
                    Ok(s) => (s, o.root_hash),
                    // An app of its own with that name: not ours to read.
                    Err(_) => return,
                },
                // No authored field (the method does not exist), or a
                // member that may not write: nothing of its own to rewrite.
                Err(e) => {
                    tracing::debug!(context = %b58(&ctx), error = %e, "no owner-driven rewrite");
                    return;
                }
            };
            tracing::info!(context = %b58(&ctx), converted = summary.converted, remaining = summary.remaining, "owner-driven convert: re-stamped this member's authored entries");
            let root = o_root;
            node.inner.authored.lock().insert(
                ctx,
                Progress {
                    remaining: summary.remaining,
                    unacknowledged: (summary.converted > 0).then_some((summary.converted, root)),
                },
            );
        });
    }
}
