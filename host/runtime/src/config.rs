use std::path::PathBuf;
use std::time::Duration;

/// Limits and settings of the runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Wall-clock budget of one call. A guest still running is stopped.
    pub call_timeout: Duration,
    /// Linear memory one instance may use.
    pub max_memory_bytes: usize,
    /// Wasm stack one call may use.
    pub max_stack_bytes: usize,
    /// Instances that may exist at once (the pooling allocator's size).
    pub max_instances: u32,
    /// State operations (ops) one call may produce.
    pub max_ops_per_call: usize,
    /// Bytes one call may write (keys plus values).
    pub max_bytes_written_per_call: usize,
    /// Events one call may emit.
    pub max_events_per_call: usize,
    /// Largest event payload.
    pub max_event_bytes: usize,
    /// Log lines one call may write (more are dropped).
    pub max_log_lines_per_call: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            call_timeout: Duration::from_secs(2),
            max_memory_bytes: 64 << 20,
            max_stack_bytes: 512 << 10,
            max_instances: 32,
            max_ops_per_call: 100_000,
            max_bytes_written_per_call: 128 << 20,
            max_events_per_call: 100,
            max_event_bytes: 16 << 10,
            max_log_lines_per_call: 1024,
        }
    }
}

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
