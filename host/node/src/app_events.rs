//! What the node does with the app events of committed deltas: publishes
//! them to subscribers (`StateMutation`, then one `ExecutionEvent` each),
//! and runs the apps' handlers for events merged from peers.

use std::sync::Arc;

use mero_crdt::ContextId;
use mero_executor::Committed;
use serde_json::Value;
use tokio::sync::{Notify, broadcast};

use crate::blocking::blocking;
use crate::error::NodeError;
use crate::events::{Data, EventBus, Scope};
use crate::node::Node;
use mero_runtime::CallError;

/// Handlers read from the store per round.
const HANDLERS_PER_ROUND: usize = 64;

impl Node {
    /// Publishes the events of every committed delta: `StateMutation` with
    /// the new root and the app's events (upstream's shape), then one
    /// `ExecutionEvent` per app event with its data as JSON.
    pub(crate) fn forward_commits(&self) {
        let rx = self.inner.exec.subscribe();
        let bus = self.inner.events.clone();
        let handlers = self.inner.handlers_due.clone();
        let store = self.inner.store.clone();
        // Which contexts a gap may have hidden commits of: every one held.
        let held = move || {
            store
                .snapshot()
                .and_then(|s| s.contexts())
                .map(|all| all.into_iter().map(|m| m.id).collect())
                .unwrap_or_default()
        };
        self.inner.tasks.spawn(forward(rx, bus, handlers, held));
    }

    /// Runs the event handlers merged deltas left in the store, then forgets
    /// them: at least once per receiving node (a crash between a handler's
    /// commit and forgetting it runs it again), never on the author's node.
    /// A handler that fails for good (it errs, or this node may not write)
    /// is dropped with a warning; one that fails for a passing reason is
    /// retried.
    pub(crate) fn run_handlers(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = node.inner.handlers_due.notified() => {}
                    () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                }
                if !node.handler_round().await {
                    return;
                }
            }
        });
    }

    /// One round of handlers; false once the node is stopping.
    async fn handler_round(&self) -> bool {
        let pending = match self
            .inner
            .store
            .snapshot()
            .and_then(|s| s.pending_handlers(HANDLERS_PER_ROUND))
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "reading pending event handlers failed");
                return true;
            }
        };
        let more = pending.len() == HANDLERS_PER_ROUND;
        let mut stalled = false;
        for h in pending {
            let args = serde_json::from_slice::<Value>(&h.data)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(Value::Null);
            match self.execute(&h.context, &h.method, &args).await {
                Ok(_) => {}
                Err(NodeError::Unavailable) => return false,
                Err(NodeError::Internal(e)) => {
                    // Retried on the next round, not at once.
                    tracing::warn!(method = %h.method, error = %e, "event handler will be retried");
                    stalled = true;
                    continue;
                }
                Err(NodeError::Call(CallError::UnknownMethod(_))) => {}
                Err(e) => {
                    tracing::warn!(method = %h.method, error = %e, "event handler failed; dropped");
                }
            }
            let store = self.inner.store.clone();
            let forgot = blocking(move || {
                let mut w = store.write()?;
                w.delete_handler(&h)?;
                w.commit()?;
                Ok(())
            })
            .await;
            if let Err(e) = forgot {
                tracing::warn!(error = %e, "forgetting a handler that ran failed");
            }
        }
        if more && !stalled {
            self.inner.handlers_due.notify_one();
        }
        true
    }
}

/// The forwarder of [`Node::forward_commits`]. Falling behind the executor
/// loses commits' events: subscribers of every context in `held` get a
/// `Gap` event saying how many commits were missed (their state is right;
/// their events are not all there), and the bus counts them.
async fn forward(
    mut rx: broadcast::Receiver<Committed>,
    bus: Arc<EventBus>,
    handlers: Arc<Notify>,
    held: impl Fn() -> Vec<ContextId> + Send,
) {
    loop {
        match rx.recv().await {
            Ok(c) => {
                let ctx = c.delta.delta.context;
                let events = &c.delta.delta.events;
                if !c.local && !events.is_empty() {
                    handlers.notify_one();
                }
                bus.publish_data(
                    Scope::Context(ctx),
                    "StateMutation",
                    None,
                    Data::Mutation {
                        root: c.root_hash,
                        id: c.id,
                        local: c.local,
                        events: events.clone(),
                    },
                );
                for e in events {
                    bus.publish_data(
                        Scope::Context(ctx),
                        "ExecutionEvent",
                        Some(e.kind.clone()),
                        Data::App(e.clone()),
                    );
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "event forwarding fell behind the executor");
                bus.forwarding_gap(n, &held());
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use mero_crdt::{Author, Delta, Hlc, SignedDelta};
    use serde_json::json;

    use super::*;

    fn committed(n: u8) -> Committed {
        let delta = SignedDelta::sign(
            Delta {
                version: 1,
                context: ContextId([1; 32]),
                author: Author([n; 32]),
                parents: vec![],
                governance: vec![],
                layout: 0,
                hlc: Hlc {
                    millis: u64::from(n),
                    counter: 0,
                },
                ops: vec![],
                events: vec![],
            },
            &ed25519_dalek::SigningKey::from_bytes(&[n; 32]),
        );
        Committed {
            id: delta.delta.id(),
            delta: Arc::new(delta),
            local: true,
            root_hash: [n; 32],
        }
    }

    #[tokio::test]
    async fn a_forwarder_that_falls_behind_tells_each_context_with_a_gap_and_counts_it() {
        // Room for two: five commits before the forwarder reads any leave
        // it three behind.
        let (tx, rx) = broadcast::channel(2);
        for n in 0..5 {
            tx.send(committed(n)).unwrap();
        }
        drop(tx);
        let bus = Arc::new(EventBus::default());
        let mut sub = bus.subscribe();
        let held = || vec![ContextId([1; 32]), ContextId([2; 32])];
        forward(rx, bus.clone(), Arc::default(), held).await;

        let mut seen = Vec::new();
        while let Ok(e) = sub.try_recv() {
            seen.push(serde_json::from_str::<Value>(e.text()).unwrap());
        }
        let gap = |c: u8| {
            json!({
                "contextId": bs58::encode([c; 32]).into_string(),
                "type": "Gap",
                "data": {
                    "reason": "the node's event forwarding fell behind its commits",
                    "missedCommits": 3,
                    "totalMissedCommits": 3,
                },
            })
        };
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[..2], [gap(1), gap(2)]);
        // Then the two commits still there, in order.
        for (e, n) in seen[2..].iter().zip([3u8, 4]) {
            assert_eq!(e["type"], "StateMutation");
            assert_eq!(e["data"]["newRoot"], bs58::encode([n; 32]).into_string());
        }
        assert_eq!(bus.missed_commits(), 3);
    }
}
