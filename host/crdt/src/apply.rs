//! Joining ops into a backend.

use std::collections::BTreeSet;

use crate::backend::{MerkleStore, StateWrite};
use crate::delta::Op;
use crate::entry::Entry;
use crate::error::Result;
use crate::id::{Hash, NodeId};
use crate::merkle;

/// Joins `op` into the state; returns whether anything changed. Keeps the
/// visible count of the op's collection up to date.
pub fn apply_op<B: StateWrite + ?Sized>(state: &mut B, op: &Op) -> Result<bool> {
    let current = state.entry(&op.node, &op.key)?;
    join_into(state, &op.node, &op.key, &op.entry, current)
}

/// Joins `entry` into the entry at (`node`, `key`), which the caller has
/// just read as `current` (a write usually follows a read of the same
/// address: this spares reading it twice); returns whether anything
/// changed. Keeps the visible count of the collection up to date.
pub fn join_into<B: StateWrite + ?Sized>(
    state: &mut B,
    node: &NodeId,
    key: &[u8],
    entry: &Entry,
    current: Option<Entry>,
) -> Result<bool> {
    let (was_visible, is_visible) = match current {
        None => {
            state.put_entry(node, key, entry)?;
            (false, entry.is_visible())
        }
        Some(mut cur) => {
            let was = cur.is_visible();
            if !cur.join(entry) {
                return Ok(false);
            }
            state.put_entry(node, key, &cur)?;
            (was, cur.is_visible())
        }
    };
    if was_visible != is_visible {
        state.step_visible_count(node, is_visible)?;
    }
    Ok(true)
}

/// Joins all `ops`, then brings the Merkle trie up to date; returns the new
/// root hash. Costs O(ops × trie depth), whatever the size of the state.
pub fn apply_ops<'a, B>(state: &mut B, ops: impl IntoIterator<Item = &'a Op>) -> Result<Hash>
where
    B: StateWrite + MerkleStore + ?Sized,
{
    let mut changed = BTreeSet::new();
    join_ops(state, ops, &mut changed)?;
    merkle::update(state, changed)
}

/// Joins all `ops` and adds the addresses that changed to `changed`, leaving
/// the Merkle trie behind: for joining many deltas and re-hashing once, with
/// [`merkle::update`] over `changed`.
pub fn join_ops<'a, B>(
    state: &mut B,
    ops: impl IntoIterator<Item = &'a Op>,
    changed: &mut BTreeSet<(NodeId, Vec<u8>)>,
) -> Result<()>
where
    B: StateWrite + ?Sized,
{
    for op in ops {
        if apply_op(state, op)? {
            changed.insert((op.node, op.key.clone()));
        }
    }
    Ok(())
}
