//! The node's background tasks, owned: every task the node starts is in
//! one [`JoinSet`] with one cancellation token, so shutting down stops them
//! all and waits until they have stopped. Nothing is spawned detached.

use std::future::Future;
use std::sync::Mutex;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A set of tasks that stop together.
#[derive(Default)]
pub(crate) struct Tasks {
    set: Mutex<JoinSet<()>>,
    cancel: CancellationToken,
}

impl Tasks {
    fn lock(&self) -> std::sync::MutexGuard<'_, JoinSet<()>> {
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `task` until it ends or the set is shut down. Tasks that ended
    /// are reaped here, so short-lived ones (one per peer request) do not
    /// pile up.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        let mut set = self.lock();
        while let Some(done) = set.try_join_next() {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(error = %e, "a node task panicked");
            }
        }
        if cancel.is_cancelled() {
            return;
        }
        set.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = task => {}
            }
        });
    }

    /// Cancels every task and waits for them to end.
    pub(crate) async fn shutdown(&self) {
        self.cancel.cancel();
        let mut set = std::mem::take(&mut *self.lock());
        while let Some(done) = set.join_next().await {
            if let Err(e) = done
                && e.is_panic()
            {
                tracing::error!(error = %e, "a node task panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_stops_every_task_and_refuses_new_ones() {
        let tasks = Tasks::default();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        for _ in 0..3 {
            let tx = tx.clone();
            // Each holds a sender until it is cancelled.
            tasks.spawn(async move {
                std::future::pending::<()>().await;
                drop(tx);
            });
        }
        drop(tx);
        tasks.shutdown().await;
        // Every sender is gone: the tasks were dropped.
        assert!(rx.recv().await.is_none());
        tasks.spawn(async {});
        assert!(tasks.lock().is_empty());
    }
}
