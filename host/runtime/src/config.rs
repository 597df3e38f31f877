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
    /// Blob bytes one call may read.
    pub max_blob_bytes_read_per_call: u64,
    /// Deterministic runs, for migrations: when set, a call is metered by
    /// this much fuel instead of `call_timeout`, its clocks read the time
    /// the caller gives it, its randomness is seeded from the call, and
    /// floats are canonical. Every node then computes the same result, and
    /// the same verdict on a budget overrun, from the same state.
    pub fuel: Option<u64>,
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
            max_blob_bytes_read_per_call: 64 << 20,
            fuel: None,
        }
    }
}

impl RuntimeConfig {
    /// The configuration of a runtime for migrations: `fuel` per call, and
    /// budgets sized for rewriting a whole state in one call.
    pub fn deterministic(self, fuel: u64) -> Self {
        RuntimeConfig {
            fuel: Some(fuel),
            max_ops_per_call: usize::MAX,
            max_bytes_written_per_call: usize::MAX,
            max_instances: self.max_instances.min(4),
            ..self
        }
    }
}

/// Fuel a migration gets unless the node is configured otherwise: about
/// ten seconds of guest work on a laptop, far above what rewriting 100,000
/// entries takes, and the same on every node.
pub const DEFAULT_MIGRATION_FUEL: u64 = 20_000_000_000;

/// How often the epoch advances; deadlines are counted in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
