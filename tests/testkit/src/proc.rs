//! A process's memory as Linux reports it in `/proc/<pid>/status`: now,
//! and sampled for its peak.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Field `field` of `pid`'s status (`"VmRSS:"` resident now, `"VmHWM:"`
/// its peak since start), in KiB; 0 if the process is gone.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Samples field `field` of a process's status every 5 ms, from when it
/// is made until [`finish`](Peak::finish): the peak of a figure /proc
/// keeps no peak of (`RssAnon:`), or of one since a moment (`VmRSS:`).
pub struct Peak {
    done: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Peak {
    /// Starts sampling `field` of `pid`.
    pub fn watch(pid: u32, field: &'static str) -> Peak {
        let done = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(status_kib(pid, field)));
        let thread = std::thread::spawn({
            let (done, peak) = (done.clone(), peak.clone());
            move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kib(pid, field), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        Peak { done, peak, thread }
    }

    /// Stops sampling; the peak seen, in KiB.
    pub fn finish(self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}
