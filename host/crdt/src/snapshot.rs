//! A replica's whole state, as one node sends it to another that joins or
//! fell far behind.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::delta::{DeltaId, Op};
use crate::id::Hash;

/// Every entry (joined into the receiver's, so nothing the receiver has is
/// lost), the ids of every delta folded into it, and the sender's DAG heads.
#[derive(Debug, Clone, Default, BorshSerialize, BorshDeserialize)]
pub struct StateSnapshot {
    /// Every entry, as ops.
    pub ops: Vec<Op>,
    /// Every delta the state includes.
    pub deltas: Vec<DeltaId>,
    /// The sender's DAG heads.
    pub heads: Vec<DeltaId>,
    /// The sender's root hash (the receiver's equals it if it had nothing
    /// the sender lacked).
    pub root_hash: Hash,
    /// The state version (layout) of the sender's app: a receiver joins
    /// only a snapshot of its own layout.
    pub layout: u32,
}
