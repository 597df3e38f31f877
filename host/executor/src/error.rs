//! Why executing failed.

use mero_runtime::{CallError, LoadError};
use thiserror::Error;

/// Why executing failed.
#[derive(Debug, Error)]
pub enum ExecError {
    /// The call itself failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// No such context on this node.
    #[error("context not found")]
    ContextNotFound,
    /// A context with that id exists.
    #[error("context already exists")]
    ContextExists,
    /// The context's app is not installed or cannot load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The store failed.
    #[error("storage: {0}")]
    Store(String),
    /// The executor is shutting down.
    #[error("the node is shutting down")]
    Stopped,
    /// A delta from another replica was refused.
    #[error("delta rejected: {0}")]
    Rejected(String),
    /// A migration failed or its check refused it: the context stays on
    /// its old version, untouched.
    #[error("the migration {stage} failed: {error}")]
    Migration {
        /// `migrate` or `check`.
        stage: &'static str,
        /// What the app did.
        error: CallError,
    },
    /// The caller's policy refused the call.
    #[error("{message}")]
    Denied {
        /// Stable kind.
        kind: &'static str,
        /// For humans.
        message: String,
    },
}

impl From<mero_store::StoreError> for ExecError {
    fn from(e: mero_store::StoreError) -> Self {
        ExecError::Store(e.to_string())
    }
}

/// The answer of a job whose batch could not be written.
pub(crate) fn store_err<T>(why: &str) -> Result<T, ExecError> {
    Err(ExecError::Store(why.to_string()))
}
