//! Gossip: the network's event loop, merging what members gossip, and
//! publishing what this node commits.

use std::sync::Arc;

use mero_crdt::{ContextId, SignedDelta};
use mero_network::{NetworkEvent, PeerId};
use tokio::sync::mpsc;

use super::{INBOX, Replicator};
use crate::sync::{Gossip, Session, context_topic};

/// Most bytes of deltas gossiped in one message.
const GOSSIP_BATCH_BYTES: usize = 1 << 20;

impl Replicator {
    /// The network's events: gossip (deltas queued in arrival order,
    /// governance applied), requests (each answered in a task of its own),
    /// new peers (an anti-entropy round).
    pub(super) async fn drive(self: Arc<Self>, mut events: mpsc::Receiver<NetworkEvent>) {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::Message { source, data, .. } => self.on_gossip(source, &data),
                NetworkEvent::Request { peer, data, handle } => {
                    let me = self.clone();
                    self.tasks.spawn(async move {
                        let answer = me.on_request(peer, &data).await;
                        let Ok(client) = me.parts.peers.client() else {
                            return;
                        };
                        match borsh::to_vec(&answer) {
                            Ok(bytes) => {
                                if let Err(e) = client.respond(handle, bytes).await {
                                    tracing::debug!(error = %e, "answering a peer failed");
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "an answer could not be encoded"),
                        }
                    });
                }
                NetworkEvent::PeerConnected(p) => {
                    tracing::debug!(peer = %p, "peer connected");
                    self.sync_now.notify_one();
                }
                _ => {}
            }
        }
    }

    fn on_gossip(self: &Arc<Self>, source: PeerId, data: &[u8]) {
        match borsh::from_slice(data) {
            // Unsealed deltas are judged like any others (sealing keeps
            // state from non-members; it proves nothing about authors), if
            // a namespace here admitted their sender (the network's guard
            // refuses the rest; this is for gossip before it is installed).
            Ok(Gossip::Deltas(list)) if self.admitted(&source) => self.queue_deltas(source, &list),
            Ok(Gossip::Deltas(_)) => {
                tracing::debug!(peer = %source, "unsealed deltas from a stranger ignored");
            }
            Ok(Gossip::Sealed(sealed)) => {
                let opened = self
                    .parts
                    .members
                    .keys()
                    .open(&sealed)
                    .and_then(|b| borsh::from_slice::<Gossip>(&b).ok());
                match opened {
                    // Deltas keep their arrival order: queued here, not in a task.
                    Some(Gossip::Deltas(list)) => self.queue_deltas(source, &list),
                    Some(Gossip::Gov(op)) => {
                        let me = self.clone();
                        self.tasks
                            .spawn(async move { me.parts.members.receive(source, *op).await });
                    }
                    Some(Gossip::Presence(p)) => self.on_presence(&p),
                    Some(Gossip::Heartbeat(h)) => self.on_heartbeat(&h),
                    Some(Gossip::Sealed(_)) => {
                        tracing::warn!(peer = %source, "sealed gossip inside sealed gossip");
                    }
                    None => tracing::debug!(
                        peer = %source,
                        epoch = sealed.epoch,
                        "sealed gossip under a key this node does not hold"
                    ),
                }
            }
            // Members seal governance and presence; anything else is not a
            // member's.
            Ok(Gossip::Gov(_) | Gossip::Presence(_) | Gossip::Heartbeat(_)) => {
                tracing::debug!(peer = %source, "unsealed governance gossip ignored");
            }
            Err(e) => tracing::warn!(peer = %source, error = %e, "undecodable gossip"),
        }
    }

    /// A member's transient state: judged against the governance of the
    /// context's namespace here, and kept only for contexts this node holds.
    fn on_presence(&self, p: &crate::sync::Presence) {
        let ctx = ContextId(p.context);
        let ns = self.namespace_of(&ctx);
        if let Err(why) = self.parts.presence.receive(p, ns.as_deref()) {
            tracing::debug!(context = %bs58::encode(ctx.0).into_string(), ?why, "presence dropped");
        }
    }

    /// A member's migration report, judged against its namespace's
    /// governance here.
    fn on_heartbeat(&self, h: &crate::sync::Heartbeat) {
        let ns = self.parts.members.get(&h.namespace);
        let keys = self.parts.members.keys();
        if let Err(why) = self
            .parts
            .heartbeats
            .receive(h, ns.as_deref(), |s| keys.open(s))
        {
            tracing::debug!(namespace = %hex::encode(h.namespace), ?why, "heartbeat dropped");
        }
    }

    /// Queues a message's deltas in order; one warning per message for
    /// those that do not decode, however many they are.
    fn queue_deltas(&self, source: PeerId, list: &[Vec<u8>]) {
        let mut undecodable = 0usize;
        let mut full = 0usize;
        for bytes in list {
            let Ok(delta) = SignedDelta::from_bytes(bytes) else {
                undecodable += 1;
                continue;
            };
            if self.inbox.try_send((source, delta)).is_err() {
                full += 1;
            }
        }
        if undecodable > 0 {
            tracing::warn!(peer = %source, count = undecodable, "undecodable deltas on gossip");
        }
        if full > 0 {
            tracing::warn!(
                count = full,
                "gossip inbox full; deltas are left to anti-entropy"
            );
        }
    }

    /// Merges gossiped deltas: everything waiting is taken at once and
    /// merged per context in arrival order, so consecutive deltas share
    /// commits and rarely find their parents missing.
    pub(super) async fn merge_gossip(
        self: Arc<Self>,
        mut inbox: mpsc::Receiver<(PeerId, SignedDelta)>,
    ) {
        while let Some(first) = inbox.recv().await {
            let mut all = vec![first];
            while all.len() < INBOX {
                match inbox.try_recv() {
                    Ok(m) => all.push(m),
                    Err(_) => break,
                }
            }
            // Per context, in order; the first sender answers parent requests.
            let mut by_ctx: Vec<(ContextId, PeerId, Vec<SignedDelta>)> = Vec::new();
            for (peer, d) in all {
                let ctx = d.delta.context;
                match by_ctx.iter_mut().find(|(c, _, _)| *c == ctx) {
                    Some((_, _, list)) => list.push(d),
                    None => by_ctx.push((ctx, peer, vec![d])),
                }
            }
            for (ctx, peer, deltas) in by_ctx {
                self.merge_gossiped(ctx, peer, deltas).await;
            }
        }
    }

    async fn merge_gossiped(
        self: &Arc<Self>,
        ctx: ContextId,
        peer: PeerId,
        deltas: Vec<SignedDelta>,
    ) {
        if !matches!(
            self.parts
                .store
                .snapshot()
                .and_then(|s| s.context_meta(&ctx)),
            Ok(Some(_))
        ) {
            return;
        }
        let mut authority = self.authority(&ctx);
        let writer = self.writer(&ctx);
        if deltas
            .iter()
            .any(|d| writer(&d.delta.author.0) && authority(&d.delta, &[]).is_err())
        {
            // A member's delta may name governance newer than ours (a
            // stranger's cannot make this node wait).
            self.refresh_governance(&ctx).await;
            authority = self.authority(&ctx);
        }
        let mut session = Session::gossip(ctx, &self.pending);
        let r = match self.view(ctx) {
            Ok(view) => {
                let first = session.offer(deltas, &view, &authority);
                drop(view);
                self.run(&mut session, first, peer, ctx, &authority).await
            }
            Err(e) => Err(e),
        };
        self.record(&ctx, r);
        // Parents and snapshots come only from a member that may write,
        // never from whoever happened to relay the gossip.
        if self.pending.waiting(&ctx) > 0
            && let Some(writer) = self.writer_peer(&ctx, peer).await
        {
            self.resolve_later(writer, ctx);
        }
    }

    /// Publishes this node's committed deltas: everything committed since
    /// the last round goes out as one message per context, so a busy node
    /// sends a few large messages rather than many small ones.
    pub(super) async fn publish_committed(self: Arc<Self>) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let mut rx = self.parts.exec.subscribe();
        loop {
            let mut ready = Vec::new();
            match rx.recv().await {
                Ok(c) => ready.push(c),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "publisher lagged; anti-entropy delivers the rest"
                    );
                }
                Err(RecvError::Closed) => break,
            }
            loop {
                match rx.try_recv() {
                    Ok(c) => ready.push(c),
                    Err(TryRecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "publisher lagged; anti-entropy delivers the rest"
                        );
                    }
                    Err(_) => break,
                }
            }
            let mut by_ctx: Vec<(ContextId, Vec<Vec<u8>>, usize)> = Vec::new();
            for c in ready.into_iter().filter(|c| c.local) {
                let ctx = c.delta.delta.context;
                let bytes = c.delta.to_bytes();
                match by_ctx.last_mut() {
                    // Consecutive deltas of one context share a message, up
                    // to a size well under the gossip limit.
                    Some((last, list, size)) if *last == ctx && *size < GOSSIP_BATCH_BYTES => {
                        *size += bytes.len();
                        list.push(bytes);
                    }
                    _ => by_ctx.push((ctx, vec![bytes.clone()], bytes.len())),
                }
            }
            for (ctx, list, _) in by_ctx {
                self.publish_deltas(ctx, list).await;
            }
        }
    }

    /// Seals deltas of `ctx` for the members of its group (with the key of
    /// its nearest restricted group, else the namespace's: a namespace
    /// member outside a restricted subgroup sees ciphertext) and gossips
    /// them.
    async fn publish_deltas(&self, ctx: ContextId, list: Vec<Vec<u8>>) {
        let sealed = self.namespace_of(&ctx).and_then(|ns| {
            let bytes = borsh::to_vec(&Gossip::Deltas(list)).ok()?;
            self.parts
                .members
                .keys()
                .seal(&ns.key_of_context(&ctx.0), &bytes)
        });
        match sealed {
            Some(sealed) => {
                self.parts
                    .peers
                    .publish(&context_topic(&ctx), &Gossip::Sealed(sealed))
                    .await;
            }
            None => tracing::warn!(
                context = %bs58::encode(ctx.0).into_string(),
                "no key of the context's group to seal deltas with; anti-entropy delivers them"
            ),
        }
    }
}
