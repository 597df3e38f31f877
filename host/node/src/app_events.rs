//! What the node does with the app events of committed deltas: publishes
//! them to subscribers (`StateMutation`, then one `ExecutionEvent` each),
//! and runs the apps' handlers for events merged from peers.

use serde_json::Value;
use tokio::sync::broadcast;

use crate::blocking::blocking;
use crate::error::NodeError;
use crate::events::{Data, Scope};
use crate::node::Node;
use mero_runtime::CallError;

/// Handlers read from the store per round.
const HANDLERS_PER_ROUND: usize = 64;

impl Node {
    /// Publishes the events of every committed delta: `StateMutation` with
    /// the new root and the app's events (upstream's shape), then one
    /// `ExecutionEvent` per app event with its data as JSON.
    pub(crate) fn forward_commits(&self) {
        let mut rx = self.inner.exec.subscribe();
        let bus = self.inner.events.clone();
        let handlers = self.inner.handlers_due.clone();
        self.inner.tasks.spawn(async move {
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
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
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
