//! The store's error type and `Result`.

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
    /// A record could not be encoded (borsh refuses lengths over
    /// `u32::MAX`): nothing is written in its place.
    #[error("cannot encode a record for {table}: {detail}")]
    Encode {
        /// The table it was meant for.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A CRDT operation failed.
    #[error(transparent)]
    Crdt(#[from] mero_crdt::Error),
}

/// Result of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
