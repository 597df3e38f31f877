//! `POST /jsonrpc`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use mero_api::ids::parse_b58;
use mero_api::jsonrpc::{
    ExecuteParams, Reply, Request, Response, SetEphemeralParams, SetEphemeralResult, SyncState,
    SyncStatusParams, SyncStatusResult,
};
use mero_node::CallError;
use mero_node::ContextId;
use mero_node::{Node, NodeError};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::borrow::Cow;

use crate::auth::{Grants, Permission};

/// Largest method name accepted.
const MAX_METHOD: usize = 256;

fn rpc_error(e: &NodeError) -> (&'static str, Value) {
    match e {
        NodeError::Call(CallError::InvalidArguments(m))
        | NodeError::Call(CallError::InvalidOutput(m)) => ("SerdeError", json!({ "message": m })),
        NodeError::Call(CallError::App(payload)) => ("FunctionCallError", payload.clone()),
        NodeError::Call(CallError::UnknownMethod(m)) => (
            "FunctionCallError",
            json!(format!("method {m:?} not found")),
        ),
        NodeError::Call(CallError::ContextNotFound) | NodeError::NotFound { .. } => {
            ("ContextNotFound", json!("Context not found"))
        }
        NodeError::Call(CallError::Host(_)) | NodeError::Internal(_) | NodeError::Unavailable => {
            ("InternalError", json!(e.to_string()))
        }
        NodeError::Forbidden { .. } => ("Unauthorized", json!(e.to_string())),
        other => ("FunctionCallError", json!(other.to_string())),
    }
}

/// JSON-RPC 2.0, upstream's methods: `execute` calls an app method
/// (read-only methods, as the app declares them, run on committed state;
/// mutating ones answer once durable); `sync_status {contextId}` says where
/// a context's sync stands; `set_ephemeral {contextId, state}` sets this
/// node's transient state in a context (at most 16 KiB, never in its DAG).
/// Errors inside a valid envelope answer 200 with an `error` object, as
/// upstream; a body that is not a JSON-RPC envelope answers 400.
#[utoipa::path(post, path = "/jsonrpc", tag = "jsonrpc",
    request_body = Request,
    responses((status = 200, description = "`execute`'s result is `{output}`; `sync_status`'s and `set_ephemeral`'s are their own objects", body = Response),
        (status = 400, description = "Not a JSON-RPC envelope", body = Response)))]
pub(crate) async fn handle(
    State(node): State<Node>,
    Extension(grants): Extension<Grants>,
    body: Bytes,
) -> axum::response::Response {
    // The common case in one pass, borrowing from the body; anything it does
    // not take goes the general way below, which words every error.
    if let Ok(req) = serde_json::from_slice::<Envelope<'_>>(&body)
        && req.jsonrpc == "2.0"
        && req.method == "execute"
    {
        let args = match req.params.args_json.get() {
            "null" => String::new(),
            text => text.to_string(),
        };
        let p = &req.params;
        return call(&node, &grants, req.id, &p.context_id, &p.method, args)
            .await
            .into_response();
    }
    let parse_error =
        |id: Value, m: String| Response::err(id, "ParseError", json!(m), Some("ParseError"));
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(parse_error(Value::Null, format!("invalid JSON: {e}"))),
            )
                .into_response();
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let req: Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(parse_error(id, e.to_string())),
            )
                .into_response();
        }
    };
    if req.jsonrpc != "2.0" {
        return (
            StatusCode::BAD_REQUEST,
            Json(parse_error(id, "`jsonrpc` must be \"2.0\"".into())),
        )
            .into_response();
    }
    match req.method.as_str() {
        "execute" => execute(&node, &grants, req.id, req.params)
            .await
            .into_response(),
        "sync_status" => sync_status(&node, &grants, req.id, req.params),
        "set_ephemeral" => set_ephemeral(&node, &grants, req.id, req.params).await,
        other => (
            StatusCode::OK,
            Json(parse_error(
                req.id,
                format!(
                    "unknown variant `{other}`, expected one of `execute`, `sync_status`, `set_ephemeral`"
                ),
            )),
        )
            .into_response(),
    }
}

/// An error answer: 200, as upstream, for errors inside a valid envelope.
fn failed(id: Value, kind: &str, data: Value, detail: &str) -> axum::response::Response {
    (
        StatusCode::OK,
        Json(Response::err(id, kind, data, Some(detail))),
    )
        .into_response()
}

/// A method's parameters, or why they are not.
fn params<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, String> {
    serde_json::from_value(params).map_err(|e| e.to_string())
}

/// 403 with an `Unauthorized` error naming the permission the token lacks.
fn forbidden(id: Value, required: &Permission) -> axum::response::Response {
    (
        StatusCode::FORBIDDEN,
        Json(Response::err(
            id,
            "Unauthorized",
            json!(format!("the token lacks the permission `{required}`")),
            Some("Forbidden"),
        )),
    )
        .into_response()
}

/// `sync_status {contextId}`: whether the context has state yet, where its
/// sync stands, the failures in a row and the last error. Needs
/// `context:list[<ctx>]` or `context:execute[<ctx>]`.
fn sync_status(node: &Node, grants: &Grants, id: Value, p: Value) -> axum::response::Response {
    let p: SyncStatusParams = match params(p) {
        Ok(p) => p,
        Err(m) => return failed(id, "ParseError", json!(m), "ParseError"),
    };
    let list = Permission::new(&["context", "list"], &[&p.context_id]);
    let exec = Permission::new(&["context", "execute"], &[&p.context_id]);
    if !grants.allows(&list) && !grants.allows(&exec) {
        return forbidden(id, &list);
    }
    let ctx = match parse_b58(&p.context_id, "context id") {
        Ok(c) => ContextId(c),
        Err(m) => return failed(id, "ParseError", json!(m), "InvalidContextId"),
    };
    let Ok(info) = node.context(&ctx) else {
        return failed(id, "ContextNotFound", Value::Null, "ContextNotFound");
    };
    let status = node.sync_status(&ctx);
    let initialized = !info.heads.is_empty();
    let retry = node.sync_every().as_secs().max(1);
    let result = SyncStatusResult {
        context_id: p.context_id,
        is_initialized: initialized,
        sync_state: serde_json::from_value(status.sync_state(initialized, retry))
            .unwrap_or(SyncState::Idle),
        failure_count: status.failures,
        last_error: status.last_error,
    };
    Json(Reply::new(id, result)).into_response()
}

/// `set_ephemeral {contextId, state}`: this node's transient state in the
/// context (at most 16 KiB; empty withdraws it), sent to the members
/// holding it as `Ephemeral` events. Needs `context:execute[<ctx>]`.
async fn set_ephemeral(
    node: &Node,
    grants: &Grants,
    id: Value,
    p: Value,
) -> axum::response::Response {
    let p: SetEphemeralParams = match params(p) {
        Ok(p) => p,
        Err(m) => return failed(id, "ParseError", json!(m), "ParseError"),
    };
    let required = Permission::new(&["context", "execute"], &[&p.context_id]);
    if !grants.allows(&required) {
        return forbidden(id, &required);
    }
    let max = mero_node::MAX_EPHEMERAL_BYTES;
    if p.state.len() > max {
        let data = json!({ "size": p.state.len(), "max": max });
        return failed(id, "SliceTooLarge", data, "SliceTooLarge");
    }
    let ctx = match parse_b58(&p.context_id, "context id") {
        Ok(c) => ContextId(c),
        Err(m) => return failed(id, "ParseError", json!(m), "InvalidContextId"),
    };
    match node.set_ephemeral(&ctx, p.state).await {
        Ok(()) => Json(Reply::new(id, SetEphemeralResult {})).into_response(),
        // Upstream's word for "this node is not a member of the context".
        Err(e @ (NodeError::NotFound { .. } | NodeError::Forbidden { .. })) => {
            failed(id, "NoOwnedIdentity", json!(e.to_string()), e.kind())
        }
        Err(e) => failed(id, "InternalError", json!(e.to_string()), e.kind()),
    }
}

/// A JSON-RPC `execute` request as it usually comes.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    id: Value,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    params: RawParams<'a>,
}

/// `execute`'s parameters, the arguments kept as the client wrote them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawParams<'a> {
    #[serde(borrow)]
    context_id: Cow<'a, str>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    args_json: &'a RawValue,
}

pub(crate) async fn execute(
    node: &Node,
    grants: &Grants,
    id: Value,
    params: Value,
) -> (StatusCode, Json<Response>) {
    let params: ExecuteParams = match serde_json::from_value(params) {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::OK,
                Json(Response::err(
                    id,
                    "ParseError",
                    json!(e.to_string()),
                    Some("ParseError"),
                )),
            );
        }
    };
    let args = mero_node::args_text(&params.args_json);
    call(node, grants, id, &params.context_id, &params.method, args).await
}

/// The permission a call of `method` on `context` needs, as upstream
/// names it: `context:execute[<ctx>,<user>,<method>]` (no user here).
fn execute_permission(context: &str, method: &str) -> Permission {
    Permission::new(&["context", "execute"], &[context, "", method])
}

/// Runs `execute` with its arguments as JSON text (empty for none), if the
/// token may (else 403 with an `Unauthorized` error).
async fn call(
    node: &Node,
    grants: &Grants,
    id: Value,
    context_id: &str,
    method: &str,
    args: String,
) -> (StatusCode, Json<Response>) {
    let ok = |r| (StatusCode::OK, Json(r));
    if method.len() > MAX_METHOD {
        return ok(Response::err(
            id,
            "ParseError",
            json!(format!("method name over {MAX_METHOD} bytes")),
            Some("ParseError"),
        ));
    }
    let required = execute_permission(context_id, method);
    if !grants.allows(&required) {
        return (
            StatusCode::FORBIDDEN,
            Json(Response::err(
                id,
                "Unauthorized",
                json!(format!("the token lacks the permission `{required}`")),
                Some("Forbidden"),
            )),
        );
    }
    let ctx = match parse_b58(context_id, "context id") {
        Ok(c) => ContextId(c),
        Err(m) => {
            return ok(Response::err(
                id,
                "ParseError",
                json!(m),
                Some("InvalidContextId"),
            ));
        }
    };
    match node.execute_text(&ctx, method, args).await {
        Ok(outcome) => ok(Response::ok(id, outcome.output)),
        Err(e) => {
            let (kind, data) = rpc_error(&e);
            ok(Response::err(id, kind, data, Some(e.kind())))
        }
    }
}
