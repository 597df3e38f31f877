//! Replicated state for contexts, with no I/O and no wasm.
//!
//! A context's state is a set of *entries*, each addressed by the collection
//! (node) it belongs to and a key inside it. Every entry is a small
//! join-semilattice ([`Entry`]): a last-writer-wins register, an add-wins
//! presence marker (map keys, set elements), a per-author counter slot or an
//! element only its creator writes (authored maps and vectors). An
//! [`Op`] says "join this entry state into that address", so applying ops
//! commutes, is idempotent and needs nothing but the ops themselves: any
//! replica that applied the same set of ops, in any order and with any
//! duplicates, holds the same state and the same [`merkle`] root hash.
//!
//! Layout of the crate:
//! - [`id`]: ids of contexts, collections (nodes), entries and deltas; the
//!   writer that hashes encodings.
//! - `limits`: the sizes every replica enforces ([`MAX_KEY_LEN`], ...).
//! - [`hlc`]: the hybrid logical clock that orders writes.
//! - [`entry`]: the per-entry lattices and their join.
//! - [`delta`]: ops, deltas (ops + author + parents + clock + events), signing.
//! - [`backend`]: the storage traits the state lives behind, and an in-memory
//!   backend for tests.
//! - [`apply`]: joining ops into a backend, keeping visible counts.
//! - [`merkle`]: the incremental Merkle root over all entries.
//! - [`overlay`]: a write buffer over a read-only backend, with checkpoints,
//!   used while a call runs.
//! - [`snapshot`]: a replica's whole state, as a joiner receives it.
//! - [`collections`]: the operations apps see (map insert, set remove, vector
//!   push, ...) turned into ops.
//!
//! Property tests of convergence are in `tests/convergence.rs`.

pub mod apply;
pub mod backend;
pub mod collections;
pub mod delta;
pub mod entry;
pub mod hlc;
pub mod id;
pub mod merkle;
pub mod overlay;
pub mod snapshot;

mod error;
mod limits;

pub use apply::{apply_op, apply_ops, join_into, join_ops};
pub use backend::{CountChange, MemoryBackend, MerkleStore, StateRead, StateWrite};
pub use delta::{
    BatchProof, BatchSignature, Delta, DeltaId, Event, Op, SignedDelta, VerifiedBatches,
};
pub use entry::{Authored, Clocks, CounterSlot, Entry, Presence, Register, Stamp};
pub use error::{Error, Result};
pub use hlc::{Clock, Hlc};
pub use id::{Author, ContextId, EntryId, Hash, NodeId};
pub use limits::{MAX_KEY_LEN, MAX_OPS_PER_DELTA, MAX_VALUE_LEN};
pub use snapshot::{Provenance, StateSnapshot};
