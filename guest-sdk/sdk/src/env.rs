//! Facts about the running call.

use crate::bindings::calimero::context::context as host;
pub use host::{ChainAttestation, ChainIdentity, LogLevel};

/// The 32-byte id of the context the call runs in.
pub fn context_id() -> [u8; 32] {
    to32(host::context_id())
}

/// The 32-byte Ed25519 public key of the member executing the call.
pub fn executor_id() -> [u8; 32] {
    to32(host::executor_id())
}

/// The version of the app, as installed.
pub fn app_version() -> String {
    host::app_version()
}

/// The chain accounts (NEAR, Ethereum, ICP, Stellar) the executing member
/// proved it holds in the context's namespace (`meroctl namespace
/// prove-chain`, or joining with an invitation bound to the account), in
/// the order it proved them: `chain`, canonical `account`, and
/// `verified_on_chain` (false for a named NEAR account). Empty in a
/// migration, which must compute the same state on every node.
pub fn chain_identities() -> Vec<ChainIdentity> {
    host::chain_identities()
}

/// Attestations recorded in the context's namespace about the executing
/// member's proven chain accounts: a member's node's signed claim of what
/// the chain said (e.g. that the account held at least some amount of a
/// token when it was admitted), with the chain, network, block, `kind`
/// (`balance`, `token-balance`, `near-access-key`), what was read and
/// whether it held. Other nodes checked the signature and trust the
/// attesting node for the chain. Empty in a migration.
pub fn chain_attestations() -> Vec<ChainAttestation> {
    host::chain_attestations()
}

/// Milliseconds since the Unix epoch, from the call's hybrid logical clock.
pub fn now_millis() -> u64 {
    host::now_millis()
}

/// Logs a line at info level.
pub fn log(message: &str) {
    host::log(LogLevel::Info, message);
}

/// Logs a line at the given level.
pub fn log_at(level: LogLevel, message: &str) {
    host::log(level, message);
}

fn to32(bytes: Vec<u8>) -> [u8; 32] {
    let mut out = [0; 32];
    let n = bytes.len().min(32);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}
