//! How table keys are built. Every per-context key starts with the context
//! id (see the table in the crate doc), so a context's data is one prefix.

use mero_crdt::ContextId;

/// Concatenates key parts.
pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The `aliases` key of `name` among aliases of `kind`; with an empty name,
/// the prefix of every alias of that kind.
pub(crate) fn alias_key(kind: &str, name: &str) -> Vec<u8> {
    key(&[kind.as_bytes(), b"\0", name.as_bytes()])
}

/// The `local` key of `key` among records of `kind`; with an empty key, the
/// prefix of every record of that kind.
pub(crate) fn local_key(kind: &str, key_: &[u8]) -> Vec<u8> {
    key(&[kind.as_bytes(), b"\0", key_])
}

/// The `merkle` key of the inner node at `level` with `prefix`.
pub(crate) fn merkle_key(ctx: &ContextId, level: u8, prefix: u16) -> Vec<u8> {
    key(&[&ctx.0, &[level], &prefix.to_be_bytes()])
}

/// The `handlers` key of the handler for event `index` of delta `delta`.
pub(crate) fn handler_key(ctx: &ContextId, delta: &[u8; 32], index: u32) -> Vec<u8> {
    key(&[&ctx.0, delta, &index.to_be_bytes()])
}
