//! What a client reports after a request whose answer does not say what
//! was done: the server answers `{}`, `{"data": null}` or a bare flag, and
//! the client builds one of these from what it sent, so that a script reading
//! its output sees the target and the result. The server never sends them.
//!
//! Same conventions as the wire types: camelCase, base58 context and
//! application ids, hex namespace, group and member ids.

use serde::{Deserialize, Serialize};

/// An application was uninstalled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Uninstalled {
    /// Base58 application id.
    pub application_id: String,
}

/// A context was created (and given an alias, if one was asked for).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextCreated {
    /// Base58 context id.
    pub context_id: String,
    /// Base58 public key this node acts as in it.
    pub member_public_key: String,
    /// Hex id of its group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The alias it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// A context was deleted from this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextDeleted {
    /// Base58 context id.
    pub context_id: String,
    /// Whether it was there to delete.
    pub is_deleted: bool,
}

/// A sync round with peers was started for a context.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStarted {
    /// Base58 context id.
    pub context_id: String,
}

/// A namespace was deleted from this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceDeleted {
    /// The namespace id as given.
    pub namespace_id: String,
    /// Whether it was there to delete.
    pub is_deleted: bool,
}

/// A member's capabilities: the mask just set, or read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberCapabilities {
    /// The group id as given.
    pub group_id: String,
    /// The member's key as given.
    pub member: String,
    /// The whole mask (see [`crate::Capabilities`]).
    pub capabilities: u32,
}

/// A member's role was set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRoleSet {
    /// The group id as given.
    pub group_id: String,
    /// The member's key as given.
    pub member: String,
    /// `Admin`, `Member` or `ReadOnly`.
    pub role: String,
}

/// Members were admitted to a subgroup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersAdded {
    /// The group id as given.
    pub group_id: String,
    /// The members' keys as given.
    pub members: Vec<String>,
}

/// Members were removed from a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersRemoved {
    /// The group id as given.
    pub group_id: String,
    /// The members' keys as given.
    pub members: Vec<String>,
}

/// A subgroup was opened or restricted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisibilitySet {
    /// The group id as given.
    pub group_id: String,
    /// `open` or `restricted`.
    pub subgroup_visibility: String,
}
