use std::error::Error as StdError;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage behind the state failed.
    #[error("state backend: {0}")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
    /// A key is longer than [`crate::MAX_KEY_LEN`].
    #[error("key of {len} bytes is over the limit of {max} bytes")]
    KeyTooLong {
        /// Length of the key.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is longer than [`crate::MAX_VALUE_LEN`].
    #[error("value of {len} bytes is over the limit of {max} bytes")]
    ValueTooLarge {
        /// Length of the value.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An index past the end of a vector.
    #[error("index {index} is out of range for a vector of length {len}")]
    OutOfRange {
        /// The index asked for.
        index: u64,
        /// The vector's length.
        len: u64,
    },
    /// A write to an authored element by a member that does not own it.
    #[error("the element belongs to another member ({owner}); only its owner may change it")]
    NotOwner {
        /// The owner's public key, hex.
        owner: String,
    },
    /// A snapshot that could not be a replica's state (see
    /// [`crate::StateSnapshot::check`]).
    #[error("malformed snapshot: {0}")]
    MalformedSnapshot(String),
    /// A delta that cannot be decoded or breaks a structural limit.
    #[error("malformed delta: {0}")]
    MalformedDelta(String),
    /// A delta with an op its author could not have written in it: another
    /// author's stamp or counter slot, or a clock after the delta's own.
    #[error("an op not bound to its delta: {0}")]
    UnboundOp(String),
    /// A delta whose signature does not verify against its author.
    #[error("delta {0} has an invalid signature")]
    BadSignature(String),
    /// A value could not be encoded (borsh refuses lengths over `u32::MAX`).
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps a backend's error.
    pub fn backend(e: impl StdError + Send + Sync + 'static) -> Self {
        Error::Backend(Box::new(e))
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
