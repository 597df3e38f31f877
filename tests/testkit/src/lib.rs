//! Test support for the workspace: the setup that tests, benches and the
//! engine example would otherwise each copy.
//!
//! It owns no behaviour of the product. It may use any crate's public API,
//! and it is only ever a dev-dependency (or a dependency of the end-to-end
//! crate): nothing under a host crate's `src/` may use it. It fails fast:
//! a setup step that cannot be done panics with what went wrong.
//!
//! Layout, one module per job:
//! - [`engine`]: a node's engine in-process: a store in a temp dir with a
//!   fixture installed, a runtime with a cache dir and test limits, an
//!   executor over them (plain or with a `Standing` hook).
//! - `governance` (feature `governance`): a namespace made by one key, and
//!   contexts registered in it, for the node's tests and bench.
//! - [`gate`]: a hook that holds the executor's commits until the test
//!   says how they end, so batches form the same way on every run.
//! - [`node`]: real `merod` processes on free 127.0.0.1 ports, driven with
//!   the real `meroctl` and raw HTTP, and waiting for their roots to agree.
//! - [`poll`]: waiting for a condition with a timeout; nothing sleeps a
//!   fixed time to wait.
//! - [`proc`]: a process's resident memory, now and at its peak.
//! - [`spy`]: a bare network peer dialing a node, to overhear its gossip
//!   or speak as a stranger.
//! - [`chain`]: a real Ethereum chain on 127.0.0.1 (Hardhat Network from
//!   `tests/chain`'s npm package) with a test ERC-20, for the relayer.
//! - [`bench`]: what the benchmarks share: arguments, a tokio runtime, and
//!   p50/p99 timing.
//!
//! Tests: `tests/apps.rs`, one per fixture app (the fixtures' `foreach_app!`
//! makes a missing one a compile error).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support fails fast"
)]

pub mod bench;
pub mod chain;
pub mod engine;
pub mod gate;
#[cfg(feature = "governance")]
pub mod governance;
pub mod node;
pub mod poll;
pub mod proc;
pub mod spy;

pub use poll::{wait_for, wait_until};
