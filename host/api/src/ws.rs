//! `GET /ws`: the messages of one WebSocket session. A client sends
//! [`Request`]s (`subscribe`, `unsubscribe`, `execute`); the node answers
//! each with a [`Message`] carrying the request's id, and pushes events as
//! messages whose id is null and whose result is an [`Event`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jsonrpc::RpcError;

/// A request on the socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request<P> {
    /// Echoed in the reply.
    pub id: u64,
    /// `subscribe`, `unsubscribe` or `execute`.
    pub method: String,
    /// The method's parameters: [`SubscribeParams`], or
    /// [`crate::jsonrpc::ExecuteParams`] for `execute`.
    pub params: P,
}

/// Parameters of `subscribe`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeParams {
    /// Base58 ids of the contexts whose events to receive.
    #[serde(default)]
    pub context_ids: Vec<String>,
    /// Hex ids of the namespaces or groups whose events to receive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_ids: Vec<String>,
    /// Only these event types (all if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
}

/// What the node sends: a reply (`id` set) or an event (`id` null).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    /// The request's id; null for an event.
    #[serde(default)]
    pub id: Option<u64>,
    /// A reply's result (for `execute`, [`crate::jsonrpc::ExecuteResult`]),
    /// or the [`Event`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Set when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Base58 id of the context it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// Hex id of the namespace or group it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// `StateMutation`, `ExecutionEvent`, `SyncStatus`, `AppVersionChanged`,
    /// `MemberJoined`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// What happened; its shape depends on `type`.
    #[serde(default)]
    pub data: Value,
}

/// The data of an `ExecutionEvent`: one event the app emitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionEventData {
    /// The kind the app gave it.
    pub kind: String,
    /// Its JSON data.
    #[serde(default)]
    pub data: Value,
}

/// The data of a `StateMutation`: a delta was applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMutationData {
    /// Base58 root hash after it.
    pub new_root: String,
    /// Base58 id of the delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_id: Option<String>,
    /// Whether this node authored it.
    #[serde(default)]
    pub local: bool,
    /// The app events it carries.
    #[serde(default)]
    pub events: Vec<MutationEvent>,
}

/// An app event inside a `StateMutation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MutationEvent {
    /// The kind the app gave it.
    pub kind: String,
    /// Its data bytes.
    #[serde(default)]
    pub data: Value,
    /// The handler it names, if any.
    #[serde(default)]
    pub handler: Option<String>,
}
