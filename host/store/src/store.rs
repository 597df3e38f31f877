//! [`Store`]: opening the database (replaying its log), and the doors to it:
//! snapshots, the write transaction, flushing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use heed::EnvOpenOptions;

use crate::engine;
use crate::error::{Result, StoreError};
use crate::snapshot::Snapshot;
use crate::tables::Tables;
use crate::write::WriteTxn;

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
        let replayed = shared.replayed;
        if replayed > 0 {
            tracing::info!(
                records = replayed,
                "replayed the write-ahead log: the last run did not close cleanly"
            );
        }
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

    /// How many log records opening this store replayed into LMDB: more
    /// than none only when the process before did not close it (a crash).
    pub fn replayed(&self) -> u64 {
        self.handle.shared.replayed
    }

    /// Why commits are refused now (LMDB far behind the log because
    /// flushes fail), if they are.
    pub fn refusing_commits(&self) -> Option<String> {
        self.handle
            .shared
            .check_backlog()
            .err()
            .map(|e| e.to_string())
    }

    /// Whether the write-ahead log is broken: a failed append left its end
    /// unknown, and commits fail until a restart.
    pub fn log_broken(&self) -> bool {
        self.handle.shared.log_broken()
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
