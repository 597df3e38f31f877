//! Why a node operation failed, in the classes the HTTP API reports.

use mero_executor::ExecError;
use mero_runtime::{CallError, LoadError};

use crate::authz::Denied;
use crate::governance::invitation::InvitationError;

/// Result of node operations.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

/// Why a node operation failed, classed as the HTTP API reports it.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is wrong (400).
    #[error("{message}")]
    BadRequest {
        /// Stable kind.
        kind: &'static str,
        /// For humans.
        message: String,
    },
    /// Something named does not exist here (404).
    #[error("{message}")]
    NotFound {
        /// Stable kind.
        kind: &'static str,
        /// For humans.
        message: String,
    },
    /// The node may not do this (403).
    #[error("{message}")]
    Forbidden {
        /// Stable kind.
        kind: &'static str,
        /// For humans.
        message: String,
    },
    /// It clashes with what exists (409).
    #[error("{message}")]
    Conflict {
        /// Stable kind.
        kind: &'static str,
        /// For humans.
        message: String,
    },
    /// No peer that could complete it answered (504).
    #[error("{message}")]
    Unreachable {
        /// Stable kind.
        kind: &'static str,
        /// For humans.
        message: String,
    },
    /// The app call failed.
    #[error(transparent)]
    Call(CallError),
    /// The node is stopping (503).
    #[error("the node is shutting down")]
    Unavailable,
    /// A bug or an infrastructure failure (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl NodeError {
    pub(crate) fn bad(kind: &'static str, message: impl Into<String>) -> Self {
        NodeError::BadRequest {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        NodeError::NotFound {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn forbidden(kind: &'static str, message: impl Into<String>) -> Self {
        NodeError::Forbidden {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        NodeError::Conflict {
            kind,
            message: message.into(),
        }
    }

    /// A stable name of the error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeError::BadRequest { kind, .. }
            | NodeError::NotFound { kind, .. }
            | NodeError::Forbidden { kind, .. }
            | NodeError::Conflict { kind, .. }
            | NodeError::Unreachable { kind, .. } => kind,
            NodeError::Call(e) => e.kind(),
            NodeError::Unavailable => "ShuttingDown",
            NodeError::Internal(_) => "InternalError",
        }
    }
}

impl From<mero_store::StoreError> for NodeError {
    fn from(e: mero_store::StoreError) -> Self {
        NodeError::Internal(e.to_string())
    }
}

impl From<ExecError> for NodeError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Call(c) => NodeError::Call(c),
            ExecError::ContextNotFound => {
                NodeError::not_found("ContextNotFound", "Context not found")
            }
            ExecError::ContextExists => {
                NodeError::conflict("ContextExists", "a context with that id exists")
            }
            ExecError::Load(LoadError::Invalid(m)) => {
                NodeError::bad("InvalidComponent", format!("invalid component: {m}"))
            }
            ExecError::Load(LoadError::Host(m)) => NodeError::Internal(m),
            ExecError::Rejected(m) => NodeError::bad("DeltaRejected", m),
            ExecError::Store(m) => NodeError::Internal(m),
            ExecError::Stopped => NodeError::Unavailable,
            // A call that raced an upgrade: nothing wrong with it, retry.
            ExecError::Denied {
                kind: kind @ "UpgradeInProgress",
                message,
            } => NodeError::Conflict { kind, message },
            ExecError::Denied { kind, message } => NodeError::Forbidden { kind, message },
            ExecError::Migration { stage, error } => NodeError::conflict(
                if stage == "check" {
                    "MigrationCheckFailed"
                } else {
                    "MigrationFailed"
                },
                format!("the migration {stage} failed, nothing changed: {error}"),
            ),
        }
    }
}

impl From<Denied> for NodeError {
    fn from(d: Denied) -> Self {
        NodeError::Forbidden {
            kind: d.kind(),
            message: d.to_string(),
        }
    }
}

impl From<InvitationError> for NodeError {
    fn from(e: InvitationError) -> Self {
        let kind = e.kind();
        match e {
            InvitationError::Mismatch | InvitationError::Unparseable(_) => {
                NodeError::bad(kind, e.to_string())
            }
            InvitationError::Forged | InvitationError::Expired(_) => NodeError::Forbidden {
                kind,
                message: e.to_string(),
            },
            InvitationError::Encode(e) => NodeError::Internal(e.to_string()),
        }
    }
}
