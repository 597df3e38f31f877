//! The records stored in the tables, and their encoding.

use borsh::{BorshDeserialize, BorshSerialize};
use mero_crdt::{ContextId, Hash, Hlc};

use crate::error::{Result, StoreError};

/// An installed application.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ApplicationRecord {
    /// The application id.
    pub id: [u8; 32],
    /// Content hash of the component bytes (key into `blobs`).
    pub blob: Hash,
    /// Size of the component in bytes.
    pub size: u64,
    /// Where it was installed from (a path or URL).
    pub source: String,
    /// Free-form metadata given at install.
    pub metadata: Vec<u8>,
    /// Package name.
    pub package: String,
    /// Version string.
    pub version: String,
    /// The app's state version, from its `describe`.
    pub state_version: u32,
    /// Install time, Unix milliseconds.
    pub installed_at_millis: u64,
}

/// A context on this node.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ContextMeta {
    /// The context id.
    pub id: ContextId,
    /// The application it runs.
    pub application: [u8; 32],
    /// The component it runs (content hash).
    pub blob: Hash,
    /// The app version it runs.
    pub app_version: String,
    /// The version of the layout of its state.
    pub state_version: u32,
    /// The group (namespace) it belongs to, if any.
    pub group: Option<[u8; 32]>,
    /// A human name.
    pub name: Option<String>,
    /// Latest clock value seen in this context.
    pub last_hlc: Hlc,
    /// Deltas applied to this context.
    pub delta_count: u64,
    /// Creation time, Unix milliseconds.
    pub created_at_millis: u64,
}

/// Encodes a record for `table`. An error rather than an empty value: an
/// empty record would read back as corrupt, or as a stub.
pub(crate) fn encode<T: BorshSerialize>(table: &'static str, value: &T) -> Result<Vec<u8>> {
    borsh::to_vec(value).map_err(|e| StoreError::Encode {
        table,
        detail: e.to_string(),
    })
}

pub(crate) fn decode<T: BorshDeserialize>(table: &'static str, bytes: &[u8]) -> Result<T> {
    borsh::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        detail: e.to_string(),
    })
}

/// A group: a namespace (root group) or a subgroup of one.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct GroupRecord {
    /// The group id.
    pub id: [u8; 32],
    /// A human name.
    pub name: Option<String>,
    /// The application its contexts run.
    pub application: [u8; 32],
    /// The component its contexts run (content hash): the "app key".
    pub blob: Hash,
    /// The parent group; `None` for a namespace.
    pub parent: Option<[u8; 32]>,
    /// Who created it.
    pub creator: [u8; 32],
    /// Capabilities members get unless overridden.
    pub default_capabilities: u32,
    /// Creation time, Unix milliseconds.
    pub created_at_millis: u64,
}

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
