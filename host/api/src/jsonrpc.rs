//! `POST /jsonrpc`: JSON-RPC 2.0 with the upstream node's methods and error
//! layout. `{"jsonrpc":"2.0","id":…,"method":"execute","params":{"contextId",
//! "method","argsJson"}}` answers `{"jsonrpc":"2.0","id":…,"result":{"output":…}}`
//! or `{"jsonrpc":"2.0","id":…,"error":{"type":…,"data":…}}`. The HTTP status
//! is 200 once the body is a JSON-RPC envelope. `sync_status {contextId}` and
//! `set_ephemeral {contextId, state}` answer their result object itself as
//! `result` ([`Reply`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A request.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Request {
    /// `2.0`.
    pub jsonrpc: String,
    /// Echoed in the response; a number, a string or null.
    #[schema(value_type = Object)]
    pub id: Value,
    /// `execute`.
    pub method: String,
    /// The method's parameters.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub params: Value,
}

/// Parameters of `execute`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteParams {
    /// Base58 context id.
    pub context_id: String,
    /// The app method.
    pub method: String,
    /// Its arguments: one JSON object keyed by parameter name.
    #[schema(value_type = Object)]
    pub args_json: Value,
}

/// Parameters of `sync_status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatusParams {
    /// Base58 context id.
    pub context_id: String,
}

/// Where a context's sync stands (upstream's `SyncState`), tagged by
/// `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum SyncState {
    /// Nothing in flight, nothing pending.
    Idle,
    /// No state yet and nothing syncing: waiting for a member to serve it.
    WaitingForPeers,
    /// A sync is in flight.
    Syncing,
    /// Receiving a snapshot.
    #[serde(rename_all = "camelCase")]
    ReceivingSnapshot {
        /// Entries applied so far.
        records_received: u64,
        /// Completion, if the total is known.
        percent: Option<u8>,
        /// Seconds left, if measurable.
        eta_secs: Option<u64>,
    },
    /// The last attempt failed; the next one is this far off.
    #[serde(rename_all = "camelCase")]
    BackingOff {
        /// Seconds until the next attempt.
        retry_in_secs: u64,
    },
}

/// The result of `sync_status` (upstream's `SyncStatusResponse`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatusResult {
    /// Base58 context id.
    pub context_id: String,
    /// Whether it has state yet (calls no longer find it uninitialized).
    pub is_initialized: bool,
    /// Where its sync stands.
    pub sync_state: SyncState,
    /// Sync attempts failed in a row.
    pub failure_count: u32,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Parameters of `set_ephemeral`: this node's transient state in a context,
/// at most 16 KiB (empty withdraws it).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetEphemeralParams {
    /// Base58 context id.
    pub context_id: String,
    /// The state's bytes.
    pub state: Vec<u8>,
}

/// The result of `set_ephemeral`: `{}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct SetEphemeralResult {}

/// A successful answer of a method other than `execute`: `result` is the
/// method's result object itself, as upstream.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Reply<T> {
    /// `2.0`.
    pub jsonrpc: String,
    /// The request's id.
    #[schema(value_type = Object)]
    pub id: Value,
    /// The result.
    pub result: T,
}

impl<T> Reply<T> {
    /// A success.
    pub fn new(id: Value, result: T) -> Self {
        Reply {
            jsonrpc: "2.0".into(),
            id,
            result,
        }
    }
}

/// The result of `execute`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ExecuteResult {
    /// The method's JSON result; null for none.
    #[schema(value_type = Object)]
    pub output: Value,
}

/// An error: `type` is one of `ParseError`, `SerdeError`, `FunctionCallError`,
/// `ContextNotFound`, `Unauthorized`, `InternalError`; `data` says more.
/// `kind` names the exact failure (e.g. `DeadlineExceeded`, `AppError`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RpcError {
    /// Upstream's error class.
    #[serde(rename = "type")]
    pub kind: String,
    /// Details: a message, or for `AppError` the app's JSON error.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schema(value_type = Object)]
    pub data: Value,
    /// The exact failure.
    #[serde(rename = "kind", default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl RpcError {
    /// What to tell a person: `data` when it is a string or a lone
    /// `{"message": ..}`, else `data` as JSON (an app's error object).
    pub fn message(&self) -> String {
        /// `{"message": ".."}` and nothing else.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct MessageOnly {
            message: String,
        }
        match &self.data {
            Value::String(s) => s.clone(),
            other => serde_json::from_value::<MessageOnly>(other.clone())
                .map(|m| m.message)
                .unwrap_or_else(|_| other.to_string()),
        }
    }
}

/// A response.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Response {
    /// `2.0`.
    pub jsonrpc: String,
    /// The request's id.
    #[schema(value_type = Object)]
    pub id: Value,
    /// Set on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ExecuteResult>,
    /// Set on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    /// A success.
    pub fn ok(id: Value, output: Value) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: Some(ExecuteResult { output }),
            error: None,
        }
    }

    /// A failure.
    pub fn err(id: Value, kind: &str, data: Value, detail: Option<&str>) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(RpcError {
                kind: kind.into(),
                data,
                detail: detail.map(str::to_string),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn error_messages_unwrap_strings_and_lone_messages() {
        let message = |data| {
            RpcError {
                kind: "FunctionCallError".into(),
                data,
                detail: None,
            }
            .message()
        };
        assert_eq!(message(json!("no such method")), "no such method");
        assert_eq!(message(json!({"message": "too slow"})), "too slow");
        assert_eq!(
            message(json!({"kind": "NotFound", "data": "zz"})),
            r#"{"data":"zz","kind":"NotFound"}"#
        );
    }
}
