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
//! each other's data and deleting one is a prefix sweep. A [`WriteTxn`] is one
//! LMDB write transaction: everything written through it lands atomically on
//! [`commit`](WriteTxn::commit), durably (LMDB's default fsync), or not at
//! all. A [`Snapshot`] is a read transaction that can be held across `.await`
//! and shared between threads.

mod read;
mod records;
mod snapshot;
mod state;
mod tables;
mod write;

pub use records::{ApplicationRecord, ContextMeta, GroupRecord, MemberRecord, Role};
pub use snapshot::{ContextReader, Snapshot};
pub use state::ContextWriter;
pub use write::WriteTxn;

use std::path::Path;

use heed::{Env, EnvOpenOptions, WithoutTls};

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
    /// Creating the data directory failed.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
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
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { map_size: 32 << 30 }
    }
}

/// The node's database.
#[derive(Clone)]
pub struct Store {
    env: Env<WithoutTls>,
    tables: Tables,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.env.path())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database in directory `dir`.
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
            .max_dbs(16)
            .max_readers(1024);
        // SAFETY: heed requires that an environment is not opened twice in
        // one process and that the file is not modified by other means. The
        // node owns its data directory and opens it once, at start-up.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir)? };
        let tables = Tables::create(&env)?;
        Ok(Store { env, tables })
    }

    /// A consistent read-only view of the whole database.
    pub fn snapshot(&self) -> Result<Snapshot> {
        Snapshot::new(self.env.clone(), self.tables)
    }

    /// Starts the write transaction. LMDB allows one at a time: this blocks
    /// while another is open.
    pub fn write(&self) -> Result<WriteTxn<'_>> {
        Ok(WriteTxn::new(self.env.write_txn()?, self.tables))
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        self.env.path()
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
