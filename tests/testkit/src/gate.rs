//! A commit gate for the executor's `fault-injection` hook: while armed,
//! each commit stops at the gate, says whether it was pipelined, and waits
//! for the test's verdict, so batches form the same way on every run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc as sync_mpsc};
use std::time::Duration;

use tokio::sync::mpsc;

/// How long a held commit waits for its verdict before failing.
const VERDICT_WAIT: Duration = Duration::from_secs(30);

/// Holds each commit, while armed, until the test says how it ends.
pub struct Gate {
    armed: AtomicBool,
    entered: mpsc::Sender<bool>,
    verdicts: Mutex<sync_mpsc::Receiver<Result<(), String>>>,
}

/// The test's side of a [`Gate`].
pub struct GateControl {
    /// Each held commit, by whether a later batch may build on it.
    pub entered: mpsc::Receiver<bool>,
    /// How the held commit ends: `Err` fails it with that reason.
    pub verdict: sync_mpsc::SyncSender<Result<(), String>>,
}

impl Gate {
    /// An unarmed gate, and the test's side of it.
    pub fn new() -> (Arc<Gate>, GateControl) {
        let (entered_tx, entered) = mpsc::channel(8);
        let (verdict, verdicts) = sync_mpsc::sync_channel(8);
        let gate = Arc::new(Gate {
            armed: AtomicBool::new(false),
            entered: entered_tx,
            verdicts: Mutex::new(verdicts),
        });
        (gate, GateControl { entered, verdict })
    }

    /// The executor's hook: `Executor::spawn_with_commit_fault(…, hook)`.
    pub fn hook(self: &Arc<Self>) -> Arc<dyn Fn(bool) -> Result<(), String> + Send + Sync> {
        let gate = self.clone();
        Arc::new(move |pipelined| gate.commit(pipelined))
    }

    fn commit(&self, pipelined: bool) -> Result<(), String> {
        if !self.armed.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.entered
            .try_send(pipelined)
            .map_err(|e| e.to_string())?;
        let verdicts = self.verdicts.lock().map_err(|e| e.to_string())?;
        verdicts
            .recv_timeout(VERDICT_WAIT)
            .unwrap_or_else(|_| Err("the test gave no verdict".into()))
    }

    /// Arms (or disarms) the gate.
    pub fn arm(&self, armed: bool) {
        self.armed.store(armed, Ordering::SeqCst);
    }
}
