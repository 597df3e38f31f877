//! Metadata records of groups, members and contexts: upstream's shapes
//! (`SetMetadataApiRequest`, `GetMetadataApiResponse`, `MetadataRecord`).
//! A set answers `{}`, a get `{"data": record}` or `{"data": null}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT …/metadata`: the record's new name and properties.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetMetadataRequest {
    /// The display name (at most 64 bytes); absent unsets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Properties replacing the previous ones (at most 64, keys up to 64
    /// bytes, values up to 4,096).
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// A record as every member of the group reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataRecord {
    /// The display name, if set.
    pub name: Option<String>,
    /// The properties, stored verbatim.
    pub data: BTreeMap<String, String>,
    /// When the op that set it was made, Unix milliseconds.
    pub updated_at: u64,
    /// Base58 key of the member that set it.
    pub updated_by: String,
}

/// `GET …/metadata`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetMetadataResponse {
    /// The record, or `null` if none was ever set.
    pub data: Option<MetadataRecord>,
}
