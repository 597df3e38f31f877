//! The structural limits every replica enforces on what it stores and
//! receives.

/// Largest key (map key, set element, private-storage key) accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;
/// Largest value (register value, vector element) accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 10 * 1024 * 1024;
/// Most ops one delta may carry.
pub const MAX_OPS_PER_DELTA: usize = 200_000;
