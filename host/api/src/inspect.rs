//! Our own read-only routes for the node's operator (the dashboard), which
//! upstream does not have: `GET /admin-api/node-info` (the node at a
//! glance) and `GET /admin-api/contexts/:id/state` (a context's state as
//! stored on a node, page by page; private storage as sizes only).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /admin-api/node-info` (in `data`): the node at a glance, for its
/// operator (the dashboard's node page). Our own route; upstream has none.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// merod's version.
    pub version: String,
    /// Base58 of the key the node signs with and is a member as.
    pub public_key: String,
    /// Hex of the same key (its account).
    pub account_id: String,
    /// Base58 libp2p peer id.
    pub peer_id: String,
    /// When the node started, Unix milliseconds.
    pub started_at: u64,
    /// Seconds since.
    pub uptime_secs: u64,
    /// Multiaddrs the swarm listens on.
    pub listen_addrs: Vec<String>,
    /// Peer ids connected now.
    pub peers: Vec<String>,
    /// Bytes the database takes on disk.
    pub store_bytes: u64,
    /// Bytes the blob directory takes (blobs, compiled components).
    pub blob_bytes: u64,
    /// `embedded` or `proxy`.
    pub auth_mode: String,
    /// Commits whose events subscribers missed because the node's event
    /// forwarding fell behind (each announced as a `Gap` event), since start.
    pub missed_event_commits: u64,
    /// Gossip messages refused before they were passed on (malformed, or
    /// deltas from a key no namespace here admitted), since start.
    pub refused_gossip: u64,
}

/// `GET /admin-api/contexts/:id/state`'s query.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct StateQuery {
    /// Hex id of the collection to page through (a field's, or a nested
    /// one's `child.collection`); none: the fields only.
    pub collection: Option<String>,
    /// Hex raw key after which the page starts (the previous page's `next`).
    pub after: Option<String>,
    /// At most this many entries (default 50, at most 500).
    pub limit: Option<usize>,
}

/// `GET /admin-api/contexts/:id/state` (in `data`): a context's state as
/// stored on this node. Our own route, read-only.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextState {
    /// The state layout version of the app it runs.
    pub state_version: u32,
    /// The app's root fields.
    pub fields: Vec<StateFieldInfo>,
    /// Private storage: sizes only, never its values.
    pub private: PrivateStorageSize,
    /// The collection paged, if one was asked for.
    pub collection: Option<String>,
    /// Its visible entries, in key order.
    pub entries: Vec<StateEntryInfo>,
    /// Hex raw key to pass as `after` for the next page; none at the end.
    pub next: Option<String>,
}

/// A root field of a context's state.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateFieldInfo {
    /// Its name.
    pub name: String,
    /// Its collection type, as declared in the app's source.
    pub kind: String,
    /// Hex collection id, to page through it.
    pub collection: String,
    /// Visible entries.
    pub entries: u64,
}

/// Private storage of a context on this node, as sizes.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateStorageSize {
    /// Values stored.
    pub entries: u64,
    /// Their bytes, keys included.
    pub size_in_bytes: u64,
}

/// Bytes of a key or value: hex, and the text when they are UTF-8 (the
/// SDKs write JSON). Cut at [`StateBytes::SHOWN`] bytes.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateBytes {
    /// Hex of the bytes (of the first `SHOWN` only, if longer).
    pub hex: String,
    /// The same as text, if UTF-8.
    pub text: Option<String>,
    /// The whole length.
    pub len: usize,
    /// Whether `hex` and `text` were cut.
    pub truncated: bool,
}

impl StateBytes {
    /// Bytes shown of one key or value at most.
    pub const SHOWN: usize = 4096;

    /// `bytes`, cut if long.
    pub fn of(bytes: &[u8]) -> StateBytes {
        let shown = &bytes[..bytes.len().min(Self::SHOWN)];
        StateBytes {
            hex: hex::encode(shown),
            text: std::str::from_utf8(shown).ok().map(str::to_string),
            len: bytes.len(),
            truncated: shown.len() < bytes.len(),
        }
    }
}

/// One visible entry of a collection.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateEntryInfo {
    /// `register` (a value, a vector element), `key` (a map key or set
    /// element), `counter` (one author's slot) or `authored` (an element
    /// of an authored map or vector).
    pub kind: String,
    /// Its key in the collection.
    pub key: StateBytes,
    /// A register's bytes; a map key's value when that is one register.
    pub value: Option<StateBytes>,
    /// The collection stored at a map key, when it holds entries.
    pub child: Option<StateChild>,
    /// A counter slot's sums.
    pub counter: Option<CounterSums>,
    /// An authored element's owner (base58 public key) and the state
    /// version its value was written under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authored: Option<AuthoredInfo>,
}

/// Who owns an authored element, and under which state version it was
/// last written.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthoredInfo {
    /// The owner's public key, base58.
    pub owner: String,
    /// The app state version of its value.
    pub version: u32,
}

/// A nested collection.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateChild {
    /// Hex collection id.
    pub collection: String,
    /// Visible entries.
    pub entries: u64,
}

/// One author's counter slot.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CounterSums {
    /// Sum of increments.
    pub increments: u64,
    /// Sum of decrements.
    pub decrements: u64,
}
