//! Catching up: parents still missing after a grace period are fetched
//! from a writer, every context is compared with every connected writer
//! periodically (anti-entropy), and governance is pulled from members.

use std::sync::Arc;
use std::time::Duration;

use mero_crdt::ContextId;
use mero_network::PeerId;

use super::Replicator;
use crate::authz;
use crate::sync::{Session, key_of};

/// How long gossip gets to deliver a missing parent before it is fetched.
const PARENT_GRACE: Duration = Duration::from_millis(150);
/// How long a refresh of governance may wait for its member.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

impl Replicator {
    /// Fetches missing parents of held deltas from `peer` if gossip has not
    /// brought them within a grace period. One resolver per context at a
    /// time.
    pub(super) fn resolve_later(self: &Arc<Self>, peer: PeerId, ctx: ContextId) {
        if !self
            .resolving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ctx)
        {
            return;
        }
        let me = self.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(PARENT_GRACE).await;
            if me.pending.waiting(&ctx) > 0 {
                let authority = me.authority(&ctx);
                let mut session = Session::catch_up(ctx, &me.pending);
                let r = match me.view(ctx) {
                    Ok(view) => {
                        let first = session.resolve(&view, &authority);
                        drop(view);
                        me.run(&mut session, first, peer, ctx, &authority).await
                    }
                    Err(e) => Err(e),
                };
                me.record(&ctx, r);
            }
            me.resolving
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&ctx);
        });
    }

    /// Every `sync.frequency_ms` (or when asked): pulls governance, then
    /// compares each context with every connected member that may write it.
    pub(super) async fn anti_entropy(self: Arc<Self>) {
        loop {
            let timer = tokio::select! {
                () = tokio::time::sleep(self.parts.every) => true,
                () = self.sync_now.notified() => false,
            };
            let only = self.take_asked(timer);
            let Ok(client) = self.parts.peers.client() else {
                break;
            };
            let Ok(peers) = client.connected_peers().await else {
                break;
            };
            for (ns, peer) in self.parts.members.pull_sources(&peers) {
                self.parts.members.pull(ns, peer).await;
            }
            let Ok(contexts) = self.parts.store.snapshot().and_then(|s| s.contexts()) else {
                continue;
            };
            for meta in contexts {
                if only.as_ref().is_some_and(|o| !o.contains(&meta.id)) {
                    continue;
                }
                self.compare(meta.id, &peers).await;
            }
        }
    }

    /// One anti-entropy round of `ctx` with each connected member that may
    /// read it: deltas are taken from any of them (each is judged, and a
    /// demoted member's earlier writes reach the others only from it), a
    /// snapshot only from one that may write.
    async fn compare(&self, ctx: ContextId, peers: &[PeerId]) {
        let ns = self.namespace_of(&ctx);
        let candidates: Vec<(PeerId, bool)> = peers
            .iter()
            .filter_map(|p| {
                let k = key_of(p)?;
                let ns = ns.as_deref()?;
                (k != self.parts.me && authz::may_read(ns, &k, &ctx).is_ok())
                    .then(|| (*p, authz::may_author(ns, &k, &ctx)))
            })
            .collect();
        if !candidates.iter().any(|(_, writer)| *writer) {
            self.set_status(&ctx, |s| s.state = "waitingForPeers");
        }
        let authority = self.authority(&ctx);
        for (peer, writer) in candidates {
            let session = Session::catch_up(ctx, &self.pending);
            let mut session = if writer {
                session
            } else {
                session.without_snapshots()
            };
            let first = session.compare();
            let r = self.run(&mut session, first, peer, ctx, &authority).await;
            self.record(&ctx, r);
        }
    }

    /// Refreshes the governance of `ctx`'s namespace from a member it is
    /// connected to (never from the sender of an unknown author's delta,
    /// which may be an impostor), waiting briefly: ingestion goes on either
    /// way, and anti-entropy pulls governance regularly.
    pub(super) async fn refresh_governance(&self, ctx: &ContextId) {
        let Some(ns) = self.namespace_of(ctx) else {
            return;
        };
        let peers = self.parts.peers.connected().await;
        let member = peers
            .iter()
            .find(|p| key_of(p).is_some_and(|k| k != self.parts.me && ns.is_member(&k)))
            .copied();
        let Some(peer) = member else { return };
        let pull = self.parts.members.pull(ns.id, peer);
        if tokio::time::timeout(REFRESH_TIMEOUT, pull).await.is_err() {
            tracing::debug!("refreshing governance timed out");
        }
    }
}
