//! A member that cannot migrate its own copy of a context:
//!
//! - it wrote past an upgrade's cut (made writes under the old version
//!   before it heard of the upgrade, or holds another member's such
//!   writes): migrating its copy would fold them into the migrated state, so
//!   its root would differ from every other member's, and the other members
//!   refuse those writes (their ops name the old layout's collections);
//! - or a rung it must climb has a component no connected member holds any
//!   more, so it cannot run that rung's migration at all.
//!
//! Instead it keeps the old version until a migrated member's state has
//! arrived, takes that state (the context moves to the version its group
//! runs, private storage kept), then calls again, under the new version,
//! each of its own calls whose delta that state lacks (from the
//! [`journal`](super::journal)): the writes are carried over through the
//! new code, neither lost nor applied to a layout they were not written for.
//! The state taken is checked first: its entries must give a root that a
//! member on the group's version reported for the context in its signed
//! heartbeat; another is refused and asked for again.

use std::time::Duration;

use mero_crdt::{ContextId, DeltaId};

use super::{b58, journal::Call};
use crate::events::Scope;
use crate::node::Node;
use crate::replication::Taking;

/// How long a member keeps asking for a migrated member's state.
const GIVE_UP: Duration = Duration::from_secs(600);
/// The longest pause between two asks.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// What a group's upgrade says of the version a context moves to.
pub(super) struct Target {
    pub(super) group: [u8; 32],
    pub(super) blob: [u8; 32],
    pub(super) from_version: String,
    pub(super) to_version: String,
}

impl Node {
    /// Starts taking a migrated member's state of `ctx` and re-running this
    /// node's calls past the cut, unless that already runs.
    pub(super) fn rejoin_past_cut(&self, ctx: ContextId, target: Target) {
        let Ok(mut running) = self.inner.rejoining.lock() else {
            return;
        };
        if !running.insert(ctx) {
            return;
        }
        drop(running);
        tracing::info!(context = %b58(&ctx), to = %target.to_version, "taking a migrated member's state, then re-running this node's calls it lacks");
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            node.rejoin(ctx, &target).await;
            if let Ok(mut running) = node.inner.rejoining.lock() {
                running.remove(&ctx);
            }
            node.finish(&target.group);
        });
    }

    async fn rejoin(&self, ctx: ContextId, target: &Target) {
        // This node's deltas before the state is replaced: those the new
        // state lacks and the journal does not hold are counted as lost.
        let mine = self.own_deltas(&ctx);
        let deadline = tokio::time::Instant::now() + GIVE_UP;
        let mut pause = Duration::from_millis(200);
        loop {
            // A member still on the old version sends a snapshot of the
            // old layout, which the join refuses: the next ask may find a
            // migrated one.
            let roots = self.reported_roots(&ctx, &target.blob);
            let found = if roots.is_empty() {
                Err(crate::error::NodeError::conflict(
                    "NoReportedRoot",
                    "no member on the group's version has reported its root yet",
                ))
            } else {
                let taking = Taking {
                    roots: Some(&roots),
                    ..Taking::default()
                };
                self.resync_to(&ctx, true, taking).await
            };
            match found {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() + pause < deadline => {
                    tracing::debug!(context = %b58(&ctx), error = %e, "no migrated member's state yet");
                    let _ = self.trigger_sync();
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                Err(e) => {
                    let why = format!("no migrated member sent its state: {e}");
                    self.context_failed(&target.group, &ctx, &target.blob, why);
                    return;
                }
            }
        }
        let snap = self.inner.store.snapshot().ok();
        // Unreadable: taken as there, so nothing runs twice.
        let has = |d: &DeltaId| {
            snap.as_ref()
                .is_none_or(|s| s.has_delta(&ctx, d).unwrap_or(true))
        };
        let calls = self.inner.journal.take_missing(&ctx, has);
        let lost = mine
            .iter()
            .filter(|d| !has(d) && !calls.iter().any(|c| c.delta == **d))
            .count();
        drop(snap);
        let rerun = calls.len();
        let mut failed = Vec::new();
        for Call { method, args, .. } in calls {
            if let Err(e) = self.execute_text(&ctx, &method, args).await {
                failed.push(format!("{method}: {e}"));
            }
        }
        if !failed.is_empty() || lost > 0 {
            tracing::warn!(context = %b58(&ctx), rerun, ?failed, lost, "writes past the cut not carried over");
        }
        let root = self
            .inner
            .store
            .snapshot()
            .and_then(|s| s.root_hash(&ctx))
            .ok();
        self.inner.upgrades.update(&target.group, |s| {
            s.swapped += 1;
            if let Some(c) = s.contexts.iter_mut().find(|c| c.context == ctx) {
                c.root_hash = root;
            }
        });
        self.inner.events.publish(
            Scope::Context(ctx),
            "AppVersionChanged",
            None,
            serde_json::json!({
                "fromVersion": target.from_version,
                "toVersion": target.to_version,
            }),
        );
        self.rewrite_mine(ctx);
        self.inner.events.publish(
            Scope::Context(ctx),
            "WritesCarriedOver",
            None,
            serde_json::json!({
                "rerun": rerun - failed.len(),
                "failed": failed,
                "notJournaled": lost,
            }),
        );
    }

    /// The roots of `ctx` members running `blob` reported in their fresh
    /// signed heartbeats, by reporter.
    fn reported_roots(&self, ctx: &ContextId, blob: &[u8; 32]) -> Vec<([u8; 32], mero_crdt::Hash)> {
        let Some(ns) = self
            .inner
            .store
            .snapshot()
            .ok()
            .and_then(|s| s.context_meta(ctx).ok().flatten())
            .and_then(|m| m.group)
        else {
            return Vec::new();
        };
        let Some(gov) = self.inner.members.get(&ns) else {
            return Vec::new();
        };
        let mut roots: Vec<([u8; 32], mero_crdt::Hash)> = self
            .inner
            .heartbeats
            .fresh(&gov.id)
            .iter()
            .flat_map(|(reporter, (r, _))| r.contexts.iter().map(move |c| (*reporter, c)))
            .filter(|(_, c)| c.context == ctx.0 && c.blob == *blob)
            .filter_map(|(reporter, c)| Some((reporter, c.root?)))
            .collect();
        roots.sort_unstable();
        roots.dedup();
        roots
    }

    /// The deltas of `ctx` this node authored (a rare path: reads them all).
    fn own_deltas(&self, ctx: &ContextId) -> Vec<DeltaId> {
        let me = self.public_key();
        let Ok(snap) = self.inner.store.snapshot() else {
            return Vec::new();
        };
        snap.delta_ids(ctx)
            .unwrap_or_default()
            .into_iter()
            .filter(|d| {
                snap.delta(ctx, d)
                    .ok()
                    .flatten()
                    .is_some_and(|s| s.delta.author.0 == me)
            })
            .collect()
    }
}
