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
//! | `members`  | group id ‖ member key            | [`MemberRecord`]              |
//! | `aliases`  | kind ‖ 0 ‖ name                  | id                            |
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

mod engine;
mod memtable;
mod read;
mod records;
mod snapshot;
mod state;
mod tables;
mod wal;
mod write;

pub use records::{ApplicationRecord, ContextMeta, GroupRecord, MemberRecord, Role};
pub use snapshot::{ContextReader, Snapshot};
pub use state::ContextWriter;
pub use write::WriteTxn;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use heed::EnvOpenOptions;

use crate::tables::Tables;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// LMDB failed.
    #[error("LMDB: {0}")]
    Lmdb(#[from] heed::Error),
    /// A stored record could not be decoded: the database is corrupt or from
    /// an incompatible version.
    #[error("corrupt record in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A file or directory of the store could not be created, read or
    /// written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Commits are refused: LMDB has fallen too far behind the log.
    #[error("storage is not keeping up, commits are refused until it does: {0}")]
    Backlog(String),
    /// A CRDT operation failed.
    #[error(transparent)]
    Crdt(#[from] mero_crdt::Error),
}

/// Result of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Options for [`Store::open`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Largest size the database may grow to, in bytes. Reserved address
    /// space, not disk: the file grows as data is written.
    pub map_size: usize,
    /// Committed bytes held in memory (and in the log) before they are
    /// written to LMDB.
    pub flush_bytes: usize,
    /// Longest time a commit waits in the log before it is written to LMDB.
    pub flush_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            map_size: 32 << 30,
            flush_bytes: 8 << 20,
            flush_interval: Duration::from_secs(5),
        }
    }
}

/// The node's database. Cheap to clone; the last clone dropped writes what
/// is still only in the log to LMDB.
#[derive(Clone)]
pub struct Store {
    handle: Arc<engine::Handle>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path()).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database in directory `dir`, replaying
    /// the write-ahead log in `dir/wal` into it.
    ///
    /// A process must open a given directory at most once at a time.
    pub fn open(dir: &Path, config: &StoreConfig) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options
            .map_size(config.map_size)
            .max_dbs(24)
            .max_readers(1024);
        // SAFETY: heed requires that an environment is not opened twice in
        // one process and that the file is not modified by other means. The
        // node owns its data directory and opens it once, at start-up.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir)? };
        let tables = Tables::create(&env)?;
        let (shared, dirty) = engine::Shared::open(
            env,
            tables,
            dir.join("wal"),
            config.flush_bytes,
            config.flush_interval,
        )?;
        let store = Store {
            handle: Arc::new(engine::Handle::start(shared)?),
        };
        if !dirty.is_empty() {
            // The replayed leaves are in LMDB; bring the trie above them in
            // line and flush it, which also retires the replayed segments.
            let mut w = store.write()?;
            for (ctx, buckets) in dirty {
                // A deleted context keeps no leaves and gets no trie back.
                if w.context_meta(&ctx)?.is_some() || w.has_leaves(&ctx)? {
                    mero_crdt::merkle::rehash(&mut w.context_state(ctx), buckets)?;
                }
            }
            w.commit()?;
            store.flush()?;
        }
        Ok(store)
    }

    /// A consistent read-only view of the whole database.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::new(&self.handle.shared)
    }

    /// Starts the write transaction. There is one at a time: this blocks
    /// while another is open.
    pub fn write(&self) -> Result<WriteTxn<'_>> {
        WriteTxn::new(&self.handle.shared)
    }

    /// Writes every commit so far into LMDB now, rather than in the
    /// background. Blocks while a write transaction is open: never call it
    /// from a thread that holds one.
    pub fn flush(&self) -> Result<()> {
        self.handle.shared.flush(true)
    }

    /// Closes without writing the log to LMDB, as a crash would leave it:
    /// for tests of recovery. Other clones keep the store open.
    #[doc(hidden)]
    pub fn abandon(self) {
        self.handle.abandon();
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        self.handle.shared.env.path()
    }
}

/// Concatenates key parts.
/// An event handler a merged delta left to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHandler {
    /// The context.
    pub context: mero_crdt::ContextId,
    /// The delta whose event it handles.
    pub delta: [u8; 32],
    /// The event's index in the delta.
    pub index: u32,
    /// The handler method.
    pub method: String,
    /// The event's data (the handler's JSON arguments).
    pub data: Vec<u8>,
}

pub(crate) fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
