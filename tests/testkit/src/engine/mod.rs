//! A node's engine in-process, with no node around it: an LMDB store in a
//! directory (a temp dir unless given), a wasmtime runtime caching compiled
//! components there, a fixture component installed (blob and application
//! record), and an executor over them.
//!
//! - [`Host`]: the store and the runtime, and installing a component; what
//!   the runtime's bench needs, with no executor.
//! - [`Engine`]: a host with an executor (plain, or with a `Standing` hook),
//!   and the calls tests make on it. [`engine`], [`engine_at`] and
//!   [`engine_with_instances`] are the executor tests' engines.
//! - [`Limits`]: the settings of both: tight ones for tests, the defaults
//!   for benches and the example.

mod executor;
mod host;

use std::path::Path;
use std::time::Duration;

use mero_runtime::RuntimeConfig;
use mero_store::StoreConfig;

pub use executor::{
    Engine, engine, engine_at, engine_with_instances, engine_with_runtime, prefill_key,
};
pub use host::Host;

/// The test calls' deadline: generous, so that on a loaded machine only a
/// guest that never returns meets it (a 10 MiB value or 6,000 writes took
/// over 500 ms under load).
pub const CALL_TIMEOUT_MS: u64 = 3_000;

/// The guest error a call failed with; panics on any other outcome.
pub fn call_err(
    r: Result<mero_executor::CallOutcome, mero_executor::ExecError>,
) -> mero_runtime::CallError {
    match r {
        Err(mero_executor::ExecError::Call(e)) => e,
        other => panic!("expected a call error, got {other:?}"),
    }
}

/// Which settings a [`Host`] runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limits {
    /// Tests: a [`CALL_TIMEOUT_MS`] deadline, 48 MiB of guest memory,
    /// 10,000 storage operations a call, and a 1 GiB map.
    Test,
    /// The runtime's and the store's defaults: what benches measure.
    Defaults,
}

impl Limits {
    /// The runtime's settings, caching compiled components in
    /// `dir/compiled`.
    pub fn runtime(self, dir: &Path) -> RuntimeConfig {
        let cached = RuntimeConfig {
            cache_dir: Some(dir.join("compiled")),
            ..RuntimeConfig::default()
        };
        match self {
            Limits::Test => RuntimeConfig {
                call_timeout: Duration::from_millis(CALL_TIMEOUT_MS),
                max_memory_bytes: 48 << 20,
                max_ops_per_call: 10_000,
                ..cached
            },
            Limits::Defaults => cached,
        }
    }

    /// The store's settings.
    pub fn store(self) -> StoreConfig {
        match self {
            Limits::Test => StoreConfig {
                map_size: 1 << 30,
                ..StoreConfig::default()
            },
            Limits::Defaults => StoreConfig::default(),
        }
    }
}
