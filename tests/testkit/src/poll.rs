//! Waiting for something to become true by asking again and again until a
//! timeout: how every test here waits, instead of sleeping a fixed time and
//! hoping.

use std::time::{Duration, Instant};

/// How long [`poll`] waits between two questions.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `probe` every `every` until it answers `Some`, or until `timeout`
/// has passed (then `None`). `probe` is always asked at least once.
pub fn poll_every<T>(
    every: Duration,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// [`poll_every`] at [`POLL_INTERVAL`]: for a caller that wants to say more
/// than [`wait_for`] does when the time is up.
pub fn poll<T>(timeout: Duration, probe: impl FnMut() -> Option<T>) -> Option<T> {
    poll_every(POLL_INTERVAL, timeout, probe)
}

/// Waits until `probe` answers `Some` and returns the answer; panics naming
/// `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, probe: impl FnMut() -> Option<T>) -> T {
    match poll(timeout, probe) {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Waits until `ok` holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    wait_for(what, timeout, || ok().then_some(()));
}
