//! Gossip: the network's event loop, merging what members gossip, and
//! publishing what this node commits.

use std::sync::Arc;

use mero_crdt::{ContextId, SignedDelta};
use mero_network::{NetworkEvent, PeerId};
use tokio::sync::mpsc;

use super::{INBOX, Replicator};
use crate::sync::{Gossip, Session, context_topic};

/// Most bytes of deltas gossiped in one message; a delta larger than this
/// is announced by id instead (see [`Gossip::Announced`]).
const GOSSIP_BATCH_BYTES: usize = 1 << 20;

/// Most ids of one announcement looked at.
const MAX_ANNOUNCED: usize = 64;

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
                    Some(Gossip::Announced { context, deltas }) => {
                        self.on_announced(context, &deltas);
                    }
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
            Ok(
                Gossip::Gov(_)
                | Gossip::Presence(_)
                | Gossip::Heartbeat(_)
                | Gossip::Announced { .. },
            ) => {
                tracing::debug!(peer = %source, "unsealed governance gossip ignored");
            }
            Err(e) => tracing::warn!(peer = %source, error = %e, "undecodable gossip"),
        }
    }

    /// Deltas too large to gossip, announced: if this node holds the
    /// context and lacks one, the context is caught up now (from every
    /// member that may read it, each delta judged as ever).
    fn on_announced(&self, ctx: ContextId, deltas: &[mero_crdt::DeltaId]) {
        let lacking = self.parts.store.snapshot().is_ok_and(|s| {
            matches!(s.context_meta(&ctx), Ok(Some(_)))
                && deltas
                    .iter()
                    .take(MAX_ANNOUNCED)
                    .any(|d| !s.has_delta(&ctx, d).unwrap_or(true))
        });
        if lacking {
            self.trigger_one(ctx);
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

    /// Publishes this node's committed deltas: what is committed while a
    /// message is being made joins it if it is of the same context, up to
    /// a size well under the gossip limit, so a busy node sends a few large
    /// messages rather than many small ones. One message is made at a time:
    /// a backlog waits as the executor's shared deltas, not as encoded and
    /// sealed copies.
    pub(super) async fn publish_committed(self: Arc<Self>) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let mut rx = self.parts.exec.subscribe();
        let mut batch: Option<(ContextId, Vec<Vec<u8>>, usize)> = None;
        loop {
            let next = if batch.is_some() {
                match rx.try_recv() {
                    Ok(c) => Ok(c),
                    Err(TryRecvError::Lagged(n)) => Err(Some(n)),
                    Err(TryRecvError::Empty) => {
                        if let Some((ctx, list, _)) = batch.take() {
                            self.publish_deltas(ctx, list).await;
                        }
                        continue;
                    }
                    Err(TryRecvError::Closed) => Err(None),
                }
            } else {
                match rx.recv().await {
                    Ok(c) => Ok(c),
                    Err(RecvError::Lagged(n)) => Err(Some(n)),
                    Err(RecvError::Closed) => Err(None),
                }
            };
            let c = match next {
                Ok(c) if c.local => c,
                Ok(_) => continue,
                Err(Some(missed)) => {
                    tracing::warn!(missed, "publisher lagged; anti-entropy delivers the rest");
                    continue;
                }
                Err(None) => break,
            };
            let ctx = c.delta.delta.context;
            let bytes = c.delta.to_bytes();
            drop(c.delta);
            if bytes.len() > GOSSIP_BATCH_BYTES {
                // Whatever came before it goes first: members merge in order.
                if let Some((ctx, list, _)) = batch.take() {
                    self.publish_deltas(ctx, list).await;
                }
                self.announce(ctx, c.id).await;
                continue;
            }
            match &mut batch {
                Some((last, list, size)) if *last == ctx && *size < GOSSIP_BATCH_BYTES => {
                    *size += bytes.len();
                    list.push(bytes);
                }
                _ => {
                    let len = bytes.len();
                    if let Some((ctx, list, _)) = batch.replace((ctx, vec![bytes], len)) {
                        self.publish_deltas(ctx, list).await;
                    }
                }
            }
        }
        if let Some((ctx, list, _)) = batch {
            self.publish_deltas(ctx, list).await;
        }
    }

    /// Announces a delta too large to gossip, sealed like deltas are.
    async fn announce(&self, ctx: ContextId, id: mero_crdt::DeltaId) {
        self.seal_and_publish(
            ctx,
            &Gossip::Announced {
                context: ctx,
                deltas: vec![id],
            },
        )
        .await;
    }

    /// Gossips encoded deltas of `ctx`.
    async fn publish_deltas(&self, ctx: ContextId, list: Vec<Vec<u8>>) {
        self.seal_and_publish(ctx, &Gossip::Deltas(list)).await;
    }

    /// Seals `msg` about `ctx` for the members of its group (with the key
    /// of its nearest restricted group, else the namespace's: a namespace
    /// member outside a restricted subgroup sees ciphertext) and gossips
    /// it. Nothing is made while no peer is on the topic: anti-entropy
    /// brings a later one up to date, and sealing is not free.
    async fn seal_and_publish(&self, ctx: ContextId, msg: &Gossip) {
        let topic = context_topic(&ctx);
        if !self.parts.peers.anyone_on(&topic).await {
            return;
        }
        let sealed = self.namespace_of(&ctx).and_then(|ns| {
            let bytes = borsh::to_vec(msg).ok()?;
            self.parts
                .members
                .keys()
                .seal(&ns.key_of_context(&ctx.0), &bytes)
        });
        match sealed {
            Some(sealed) => {
                self.parts
                    .peers
                    .publish(&topic, &Gossip::Sealed(sealed))
                    .await;
            }
            None => tracing::warn!(
                context = %bs58::encode(ctx.0).into_string(),
                "no key of the context's group to seal deltas with; anti-entropy delivers them"
            ),
        }
    }
}
