//! Ephemeral state as the API shows it (upstream's `set_ephemeral`): this
//! node sets its state in a context, members' states are replayed to new
//! subscribers, and a task republishes this node's states and expires
//! members' stale ones. What is kept and checked is [`crate::presence`]'s.

use mero_crdt::ContextId;

use crate::authz;
use crate::error::{NodeError, Result};
use crate::events::Event;
use crate::node::Node;
use crate::presence::PresenceError;
use crate::sync::{Gossip, Presence, context_topic};

impl Node {
    /// Sets this node's transient state in `ctx` (at most
    /// [`crate::MAX_EPHEMERAL_BYTES`]; empty withdraws it): an `Ephemeral`
    /// event here and on every member node holding the context, never in
    /// its DAG, gone from the others a TTL after this node stops
    /// republishing it.
    pub async fn set_ephemeral(&self, ctx: &ContextId, state: Vec<u8>) -> Result<()> {
        let meta = self
            .inner
            .store
            .snapshot()?
            .context_meta(ctx)?
            .ok_or_else(|| NodeError::not_found("ContextNotFound", "Context not found"))?;
        let ns = meta.group.and_then(|g| self.inner.members.get(&g));
        let Some(ns) = ns else {
            return Err(authz::Denied::NotAMember.into());
        };
        authz::may_read(&ns, &self.public_key(), ctx)?;
        let signed = self
            .inner
            .presence
            .set_own(*ctx, state)
            .map_err(|e| match e {
                PresenceError::TooLarge { .. } => NodeError::bad("SliceTooLarge", e.to_string()),
                PresenceError::Signing(m) => NodeError::Internal(m),
            })?;
        self.publish_presence(&ns.id, signed).await;
        Ok(())
    }

    /// The states of `ctx` now, as events for a new subscriber (each with
    /// its `ageMs`).
    pub fn ephemeral_replay(&self, ctx: &ContextId) -> Vec<Event> {
        self.inner.presence.replay(ctx)
    }

    /// Seals `p` for the members of its context's group (with the key of
    /// its nearest restricted group, else the namespace's) and gossips it
    /// on its context's topic.
    async fn publish_presence(&self, ns: &[u8; 32], p: Presence) {
        let topic = context_topic(&ContextId(p.context));
        let key = self
            .inner
            .members
            .get(ns)
            .map_or(*ns, |state| state.key_of_context(&p.context));
        let sealed = borsh::to_vec(&Gossip::Presence(Box::new(p)))
            .ok()
            .and_then(|bytes| self.inner.members.keys().seal(&key, &bytes));
        match sealed {
            Some(sealed) => {
                self.inner
                    .peers
                    .publish(&topic, &Gossip::Sealed(sealed))
                    .await;
            }
            None => tracing::debug!("no namespace key to seal presence with"),
        }
    }

    /// Every third of the TTL: republishes this node's states (so members
    /// keep them) and expires members' states not heard of for a TTL.
    pub(crate) fn run_presence(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            let presence = &node.inner.presence;
            let mut tick = tokio::time::interval(presence.heartbeat_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                for p in presence.heartbeat() {
                    let ctx = ContextId(p.context);
                    let ns = node
                        .inner
                        .store
                        .snapshot()
                        .ok()
                        .and_then(|s| s.context_meta(&ctx).ok().flatten())
                        .and_then(|m| m.group);
                    match ns {
                        Some(ns) => node.publish_presence(&ns, p).await,
                        // Deleted meanwhile: stop republishing.
                        None => presence.forget(&ctx),
                    }
                }
                presence.sweep();
            }
        });
    }
}
