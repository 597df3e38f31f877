//! The wire contract of the routes, JSON-RPC methods and events #26 added,
//! against upstream's shapes (`calimero-server-primitives` and
//! `calimero-primitives` at 051f0848, restated here as plain serde types).
//! Each request is sent as upstream's clients send it; each answer must
//! decode into upstream's type: every upstream field present with
//! upstream's type (ids as base58 or hex of 32 bytes), extra fields of
//! ours allowed, as upstream's clients tolerate them. Error bodies carry
//! upstream's `error` string.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mero_testkit::node::{TestNode, assert_converged};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(60);

/// Upstream's base58 32-byte ids (`ContextId`, `PublicKey`, `ApplicationId`,
/// `BlobId`, `Hash`).
#[derive(Debug)]
struct B58;

impl<'de> Deserialize<'de> for B58 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = bs58::decode(&s)
            .into_vec()
            .map_err(serde::de::Error::custom)?;
        if bytes.len() != 32 {
            return Err(serde::de::Error::custom(format!("{s}: not 32 bytes")));
        }
        Ok(B58)
    }
}

/// Upstream's hex group and account ids.
#[derive(Debug)]
struct Hex32;

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match hex::decode(&s) {
            Ok(b) if b.len() == 32 => Ok(Hex32),
            _ => Err(serde::de::Error::custom(format!("{s}: not 64 hex"))),
        }
    }
}

/// `{"data": T}`, as upstream wraps most admin answers.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct Data<T> {
    data: T,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct GroupInfoApiResponseData {
    group_id: Hex32,
    app_key: Hex32,
    target_application_id: B58,
    member_count: u64,
    context_count: u64,
    #[serde(default)]
    active_upgrade: Option<Value>,
    default_capabilities: u32,
    subgroup_visibility: String,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(rename = "groupStateHash")]
    group_state_hash: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct ListSubgroupsApiResponse {
    subgroups: Vec<SubgroupEntryApiResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct SubgroupEntryApiResponse {
    group_id: Hex32,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct ContextIdentitiesResponseData {
    identities: Vec<B58>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct GetContextStorageResponseData {
    size_in_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct LeaveContextApiResponseData {
    context_id: B58,
    member_public_key: B58,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct NodeIdentityApiResponseData {
    account_id: String,
    device_id: Option<String>,
    public_key: String,
    account_root_public_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct GenerateContextIdentityResponseData {
    public_key: B58,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct NetworkStatusResponse {
    local_peer_id: String,
    listen_addrs: Vec<String>,
    external_addrs: Vec<String>,
    relays: Vec<RelayStatusEntry>,
    rendezvous: Vec<RendezvousStatusEntry>,
    direct_upgrades: Vec<DirectUpgradeStatusEntry>,
    autonat: AutonatStatusEntry,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct RelayStatusEntry {
    peer_id: String,
    reservation_status: String,
    last_state_change: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct RendezvousStatusEntry {
    peer_id: String,
    registration_status: String,
    last_state_change: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct DirectUpgradeStatusEntry {
    peer_id: String,
    status: String,
    reason: Option<String>,
    connection_id: Option<String>,
    last_attempt: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct AutonatStatusEntry {
    reachability: String,
    last_test_addr: Option<String>,
    last_test_result: Option<String>,
    last_test_reason: Option<String>,
    last_test_observed_addr: Option<String>,
    last_test_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct NamespaceApiResponse {
    namespace_id: Hex32,
    app_key: Hex32,
    target_application_id: String,
    created_at: u64,
    #[serde(default)]
    name: Option<String>,
    member_count: usize,
    context_count: usize,
    subgroup_count: usize,
    #[serde(default)]
    app_version: Option<String>,
}

/// `SetMemberAutoFollowApiResponse {}`.
#[derive(Debug, Deserialize)]
struct Empty {}

/// Upstream's `BlobInfo` (snake_case, not wrapped beyond `data`).
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct BlobInfo {
    blob_id: B58,
    size: u64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct BlobListResponseData {
    blobs: Vec<BlobInfo>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct BlobDeleteResponse {
    blob_id: B58,
    deleted: bool,
}

/// Upstream's `SyncState`, tagged by `state`.
#[derive(Debug, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
enum SyncState {
    Idle,
    WaitingForPeers,
    Syncing,
    #[serde(rename_all = "camelCase")]
    ReceivingSnapshot {
        records_received: u64,
        percent: Option<u8>,
        eta_secs: Option<u64>,
    },
    #[serde(rename_all = "camelCase")]
    BackingOff {
        retry_in_secs: u64,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct SyncStatusResponse {
    context_id: B58,
    is_initialized: bool,
    sync_state: SyncState,
    failure_count: u32,
    #[serde(default)]
    last_error: Option<String>,
}

/// A JSON-RPC success: `result` is the method's object.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct RpcResult<T> {
    jsonrpc: String,
    id: Value,
    result: T,
}

/// Upstream's handler errors: `{"type", "data"?}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", content = "data")]
#[allow(dead_code, reason = "decoding is the check")]
enum SyncStatusError {
    ContextNotFound,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", content = "data")]
#[allow(dead_code, reason = "decoding is the check")]
enum SetEphemeralError {
    Unauthorized,
    NoOwnedIdentity,
    SliceTooLarge { size: usize, max: usize },
    InternalError(String),
}

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct RpcError<E> {
    jsonrpc: String,
    id: Value,
    error: E,
}

/// Upstream's `ContextEvent` as pushed over `/ws`: `{contextId, type, data}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct ContextEvent<T> {
    context_id: B58,
    #[serde(rename = "type")]
    kind: String,
    data: T,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct EphemeralPayload {
    author: B58,
    #[serde(default)]
    state: Option<Vec<u8>>,
    #[serde(default)]
    removed: bool,
    #[serde(default)]
    age_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "decoding is the check")]
struct SyncStatusPayload {
    sync_state: SyncState,
    failure_count: u32,
    #[serde(default)]
    last_error: Option<String>,
}

/// What upstream's clients read of an error: `{"error": "<message>"}`.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "decoding is the check")]
struct ApiError {
    error: String,
}

/// Decodes `v` as upstream's `T`, or fails naming the route.
fn decode<T: DeserializeOwned>(what: &str, v: &Value) -> T {
    serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{what}: not upstream's shape: {e}\n{v:#}"))
}

fn ok<T: DeserializeOwned>(node: &TestNode, method: &str, path: &str, body: Option<Value>) -> T {
    let body = body.map(|b| b.to_string());
    let (status, v) = tokio::task::block_in_place(|| node.request(method, path, body.as_deref()));
    assert_eq!(status, 200, "{method} {path}: {v}");
    decode(&format!("{method} {path}"), &v)
}

fn failed(node: &TestNode, method: &str, path: &str) -> u16 {
    let (status, v) = tokio::task::block_in_place(|| node.request(method, path, None));
    let _: ApiError = decode(&format!("{method} {path}"), &v);
    status
}

fn rpc(node: &TestNode, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, v) =
        tokio::task::block_in_place(|| node.request("POST", "/jsonrpc", Some(&body.to_string())));
    assert_eq!(status, 200, "{v}");
    v
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next event of type `kind` (any, if empty) pushed to `ws`.
async fn next_event(ws: &mut Ws, kind: &str) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                let pushed = v["id"].is_null() && v["result"].is_object();
                if pushed && (kind.is_empty() || v["result"]["type"] == kind) {
                    return v["result"].clone();
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("no {kind} event: {other:?}"),
        }
    }
}

#[test]
fn new_routes_methods_and_events_answer_in_upstreams_shapes() {
    let config = ["sync.frequency_ms=300", "presence.ttl_ms=1500"];
    let mut n1 = TestNode::start_with("node1", &config);
    let n2 = TestNode::start_with("node2", &config);
    let (app, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    let joined = n2.meroctl_json(&["namespace", "join", &ns, &n1.invite(&ns, &[])]);
    let account2 = joined["memberAccount"].as_str().unwrap().to_string();
    assert_converged(&[&n1, &n2], &ctx);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Admin routes, as upstream's clients call them.
        let _: Data<GroupInfoApiResponseData> =
            ok(&n1, "GET", &format!("/admin-api/groups/{ns}"), None);
        let _: ListSubgroupsApiResponse = ok(
            &n1,
            "GET",
            &format!("/admin-api/groups/{ns}/subgroups"),
            None,
        );
        for route in ["identities", "identities-owned"] {
            let _: Data<ContextIdentitiesResponseData> = ok(
                &n1,
                "GET",
                &format!("/admin-api/contexts/{ctx}/{route}"),
                None,
            );
        }
        let _: Data<GetContextStorageResponseData> = ok(
            &n1,
            "GET",
            &format!("/admin-api/contexts/{ctx}/storage"),
            None,
        );
        let _: Data<NodeIdentityApiResponseData> = ok(&n1, "GET", "/admin-api/identity", None);
        let _: Data<GenerateContextIdentityResponseData> =
            ok(&n1, "POST", "/admin-api/identity/context", None);
        let _: NetworkStatusResponse = ok(&n1, "GET", "/admin-api/network/status", None);
        let _: Data<Vec<NamespaceApiResponse>> = ok(
            &n1,
            "GET",
            &format!("/admin-api/namespaces/for-application/{app}?offset=0&limit=10"),
            None,
        );
        // upstream's SetMemberAutoFollowApiRequest, answered {}.
        let _: Empty = ok(
            &n2,
            "PUT",
            &format!("/admin-api/groups/{ns}/members/{account2}/auto-follow"),
            Some(json!({"autoFollowContexts": true, "autoFollowSubgroups": false})),
        );

        // Blobs: snake_case, as upstream.
        let upload = tokio::task::block_in_place(|| {
            n1.client()
                .put(n1.url(&format!("/admin-api/blobs?context_id={ctx}")))
                .body(b"wire contract".to_vec())
                .send()
                .unwrap()
                .json::<Value>()
                .unwrap()
        });
        let _: Data<BlobInfo> = decode("PUT /admin-api/blobs", &upload);
        let blob = upload["data"]["blob_id"].as_str().unwrap().to_string();
        let _: Data<BlobListResponseData> = ok(&n1, "GET", "/admin-api/blobs", None);
        // What upstream's client reads of HEAD: length, type, 64-hex hash.
        let head = tokio::task::block_in_place(|| {
            n1.client()
                .head(n1.url(&format!("/admin-api/blobs/{blob}")))
                .send()
                .unwrap()
        });
        assert_eq!(head.status(), 200);
        let h = head.headers();
        assert_eq!(h["content-length"], "13");
        assert!(h.contains_key("content-type"));
        let hash = hex::decode(h["x-blob-hash"].to_str().unwrap()).unwrap();
        assert_eq!(hash.len(), 32);
        let _: BlobDeleteResponse = ok(&n1, "DELETE", &format!("/admin-api/blobs/{blob}"), None);

        // JSON-RPC methods: results and typed errors.
        let v = rpc(&n1, "sync_status", json!({"contextId": ctx}));
        let _: RpcResult<SyncStatusResponse> = decode("sync_status", &v);
        let unknown = bs58::encode([9u8; 32]).into_string();
        let v = rpc(&n1, "sync_status", json!({"contextId": unknown}));
        let _: RpcError<SyncStatusError> = decode("sync_status error", &v);
        let v = rpc(
            &n1,
            "set_ephemeral",
            json!({"contextId": ctx, "state": vec![1u8; 16_385]}),
        );
        let e: RpcError<SetEphemeralError> = decode("set_ephemeral error", &v);
        assert!(matches!(
            e.error,
            SetEphemeralError::SliceTooLarge {
                size: 16_385,
                max: 16_384
            }
        ));

        // Events: Ephemeral (live, then replayed with its age), SyncStatus.
        let mut ws = tokio_tungstenite::connect_async(n2.ws_url())
            .await
            .unwrap()
            .0;
        let sub = json!({"id": 1, "method": "subscribe", "params": {"contextIds": [ctx]}});
        ws.send(Message::Text(sub.to_string().into()))
            .await
            .unwrap();
        let v = rpc(
            &n1,
            "set_ephemeral",
            json!({"contextId": ctx, "state": [7, 8]}),
        );
        let _: RpcResult<Empty> = decode("set_ephemeral", &v);
        let e: ContextEvent<EphemeralPayload> =
            decode("Ephemeral", &next_event(&mut ws, "Ephemeral").await);
        assert_eq!(e.data.state.as_deref(), Some(&[7u8, 8][..]));
        let mut late = tokio_tungstenite::connect_async(n2.ws_url())
            .await
            .unwrap()
            .0;
        late.send(Message::Text(sub.to_string().into()))
            .await
            .unwrap();
        let e: ContextEvent<EphemeralPayload> = decode(
            "replayed Ephemeral",
            &next_event(&mut late, "Ephemeral").await,
        );
        assert!(e.data.age_ms.is_some());
        // node1 goes: node2's sync with it stops, and node1's state expires
        // there (in either order).
        tokio::task::block_in_place(|| assert!(n1.stop()));
        let (mut status, mut expired) = (None, None);
        while status.is_none() || expired.is_none() {
            let v = next_event(&mut ws, "").await;
            match v["type"].as_str() {
                Some("SyncStatus") if status.is_none() => {
                    status = Some(decode::<ContextEvent<SyncStatusPayload>>("SyncStatus", &v));
                }
                Some("Ephemeral") => {
                    expired = Some(decode::<ContextEvent<EphemeralPayload>>(
                        "expired Ephemeral",
                        &v,
                    ));
                }
                _ => {}
            }
        }
        let status = status.unwrap();
        assert!(
            matches!(
                status.data.sync_state,
                SyncState::WaitingForPeers | SyncState::BackingOff { .. }
            ),
            "{status:?}"
        );
        let expired = expired.unwrap();
        assert!(expired.data.removed && expired.data.state.is_none());

        // Leaving a context on node2, as upstream answers it.
        let _: Data<LeaveContextApiResponseData> = ok(
            &n2,
            "POST",
            &format!("/admin-api/contexts/{ctx}/leave"),
            None,
        );

        // Errors carry upstream's `error` string.
        assert_eq!(failed(&n2, "GET", "/admin-api/groups/zz"), 400);
        assert_eq!(
            failed(&n2, "GET", &format!("/admin-api/blobs/{unknown}")),
            404
        );
        assert_eq!(
            failed(&n2, "POST", &format!("/admin-api/contexts/{unknown}/leave")),
            404
        );
    });
}
