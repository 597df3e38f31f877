//! What the node does with the app events of committed deltas: publishes
//! them to subscribers (`StateMutation`, then one `ExecutionEvent` each),
//! and runs the apps' handlers for events merged from peers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// A handler that fails for good (it errs, traps, runs to its deadline,
    /// or this node may not write) is dropped with a warning; one that fails
    /// for a passing reason is retried. Either way its context's handlers
    /// are backed off, so a looping handler neither holds up other
    /// contexts' handlers nor fills the log.
    pub(crate) fn run_handlers(&self) {
        let node = self.clone();
        self.inner.tasks.spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                tokio::select! {
                    () = node.inner.handlers_due.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
                if !node.handler_round(&mut backoff).await {
                    return;
                }
            }
        });
    }

    /// One round of handlers, passing over contexts backed off; false once
    /// the node is stopping.
    async fn handler_round(&self, backoff: &mut Backoff) -> bool {
        let now = Instant::now();
        let pending = match self.inner.store.snapshot().and_then(|s| {
            s.pending_handlers_except(HANDLERS_PER_ROUND, &|c| backoff.waiting(c, now))
        }) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "reading pending event handlers failed");
                return true;
            }
        };
        let more = pending.len() == HANDLERS_PER_ROUND;
        let mut stalled = false;
        for h in pending {
            // Failed earlier in this round: the rest wait out its back-off.
            if backoff.waiting(&h.context, Instant::now()) {
                continue;
            }
            let args = serde_json::from_slice::<Value>(&h.data)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(Value::Null);
            match self.execute(&h.context, &h.method, &args).await {
                Ok(_) | Err(NodeError::Call(CallError::UnknownMethod(_))) => {
                    backoff.ran(&h.context)
                }
                Err(NodeError::Unavailable) => return false,
                Err(NodeError::Internal(e)) => {
                    let wait = backoff.failed(h.context, Instant::now());
                    tracing::warn!(method = %h.method, error = %e, ?wait, "event handler will be retried");
                    stalled = true;
                    continue;
                }
                Err(e) => {
                    let wait = backoff.failed(h.context, Instant::now());
                    tracing::warn!(method = %h.method, error = %e, ?wait, "event handler failed; dropped, and its context's others wait");
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

/// How long a context's handlers wait after one fails: doubling from this
/// per failure in a row, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait after failures in a row.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Contexts whose handlers wait after a failure, until when and after how
/// long a wait; a handler that runs clears its context.
#[derive(Default)]
struct Backoff(HashMap<ContextId, (Instant, Duration)>);

impl Backoff {
    /// Whether `ctx`'s handlers wait at `now`.
    fn waiting(&self, ctx: &ContextId, now: Instant) -> bool {
        self.0.get(ctx).is_some_and(|(until, _)| *until > now)
    }

    /// A handler of `ctx` failed at `now`: its handlers wait twice as long
    /// as after the last failure in a row. Returns the wait.
    fn failed(&mut self, ctx: ContextId, now: Instant) -> Duration {
        let wait = self
            .0
            .get(&ctx)
            .map_or(BACKOFF_FIRST, |(_, last)| (*last * 2).min(BACKOFF_MAX));
        self.0.insert(ctx, (now + wait, wait));
        wait
    }

    /// A handler of `ctx` ran.
    fn ran(&mut self, ctx: &ContextId) {
        self.0.remove(ctx);
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

    /// A context whose handlers fail waits ever longer, up to the cap; the
    /// others do not wait; one handler that runs clears the wait.
    #[test]
    fn a_failing_contexts_handlers_back_off_alone() {
        let (bad, good) = (ContextId([1; 32]), ContextId([2; 32]));
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(!b.waiting(&bad, t0));
        let waits: Vec<Duration> = (0..12).map(|_| b.failed(bad, t0)).collect();
        assert_eq!(
            waits[..3],
            [BACKOFF_FIRST, BACKOFF_FIRST * 2, BACKOFF_FIRST * 4]
        );
        assert_eq!(waits[11], BACKOFF_MAX);
        assert!(b.waiting(&bad, t0 + BACKOFF_MAX - Duration::from_millis(1)));
        assert!(!b.waiting(&bad, t0 + BACKOFF_MAX));
        assert!(!b.waiting(&good, t0));
        b.ran(&bad);
        assert!(!b.waiting(&bad, t0));
        assert_eq!(b.failed(bad, t0), BACKOFF_FIRST);
    }
}
