//! Joining ops into a backend.

use std::collections::BTreeSet;

use crate::backend::{MerkleStore, StateWrite};
use crate::delta::Op;
use crate::error::Result;
use crate::id::{Hash, NodeId};
use crate::merkle;

/// Joins `op` into the state; returns whether anything changed. Keeps the
/// visible count of the op's collection up to date.
pub fn apply_op<B: StateWrite + ?Sized>(state: &mut B, op: &Op) -> Result<bool> {
    let (entry, was_visible) = match state.entry(&op.node, &op.key)? {
        None => (op.entry.clone(), false),
        Some(mut cur) => {
            let was = cur.is_visible();
            if !cur.join(&op.entry) {
                return Ok(false);
            }
            (cur, was)
        }
    };
    state.put_entry(&op.node, &op.key, &entry)?;
    let is_visible = entry.is_visible();
    if was_visible != is_visible {
        let n = state.visible_count(&op.node)?;
        let n = if is_visible {
            n.saturating_add(1)
        } else {
            n.saturating_sub(1)
        };
        state.put_visible_count(&op.node, n)?;
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
