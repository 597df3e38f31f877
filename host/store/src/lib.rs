//! The node's storage: one LMDB environment (heed) with typed tables.
//!
//! | table      | key                              | value                         |
//! |------------|----------------------------------|-------------------------------|
//! | `blobs`    | content hash                     | component bytes               |
//! | `apps`     | application id                   | [`ApplicationRecord`]         |
//! | `contexts` | context id                       | [`ContextMeta`]               |
//! | `entries`  | context ‖ node ‖ key             | CRDT [`Entry`](mero_crdt::Entry) |
//! | `counts`   | context ‖ node                   | visible entries (u64)         |
//! | `leaves`   | context ‖ entry id               | leaf hash                     |
//! | `merkle`   | context ‖ level ‖ prefix         | Merkle inner node             |
//! | `deltas`   | context ‖ delta id               | [`SignedDelta`](mero_crdt::SignedDelta) |
//! | `heads`    | context ‖ delta id               | (empty): the DAG heads        |
//! | `private`  | context ‖ key                    | private value                 |
//! | `groups`   | group id                         | [`GroupRecord`]               |
//! | `aliases`  | kind ‖ 0 ‖ name                  | id                            |
//! | `local`    | kind ‖ 0 ‖ key                   | node-local record (never replicated) |
//!
//! Every per-context key starts with the context id, so contexts cannot see
//! each other's data and deleting one is a prefix sweep.
//!
//! A [`WriteTxn`] commits atomically and durably, or not at all, by appending
//! one record to a write-ahead log and syncing it (`wal`). Its writes then
//! live in an in-memory layer (`memtable`) that every later snapshot reads
//! over LMDB, until a background thread writes a batch of commits into LMDB
//! in one durable LMDB transaction and drops the log that held them
//! (`engine`). Opening replays whatever the log holds beyond LMDB. A
//! [`Snapshot`] is a consistent view that can be held across `.await` and
//! shared between threads.
//!
//! Layout of the crate:
//! - `store`: [`Store`] and [`StoreConfig`]: opening, snapshots, writing.
//! - `write`: [`WriteTxn`]; `state`: [`ContextWriter`], one context's CRDT
//!   state and Merkle trie inside it.
//! - `snapshot`: [`Snapshot`] and [`ContextReader`]; `read`: the reads both
//!   share.
//! - `records`: the stored record types and their encoding; `keys`: how
//!   table keys are built; `tables`: the tables themselves.
//! - `wal`, `memtable`, `engine`: the log, the in-memory layer and the flush
//!   thread; `run`: one large commit's writes, sorted in files under it;
//!   `memory`: handing freed heap memory back to the OS.
//! - `error`: [`StoreError`].
//!
//! This crate knows records and CRDT state; it knows nothing of the node,
//! the network or wasm.

mod engine;
mod error;
mod keys;
mod memory;
mod memtable;
mod read;
mod records;
mod run;
mod snapshot;
mod state;
mod store;
mod tables;
mod wal;
mod write;

pub use error::{Result, StoreError};
pub use memory::release_free_memory;
pub use records::{ApplicationRecord, ContextMeta, GroupRecord, PendingHandler};
pub use snapshot::{ContextReader, Snapshot};
pub use state::ContextWriter;
pub use store::{Store, StoreConfig};
pub use write::WriteTxn;
