//! Upstream's other JSON-RPC methods on two real nodes: `sync_status` says
//! where a context's sync stands; `set_ephemeral` sets a member's
//! transient state, which the other member's subscribers receive as
//! `Ephemeral` events, a new subscriber gets replayed (with its age, over
//! WebSocket and SSE), and
//! which expires there once its author stops republishing it. Waits poll
//! with a timeout.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mero_testkit::node::TestNode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(60);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn rpc(node: &TestNode, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let (status, v) =
        tokio::task::block_in_place(|| node.request("POST", "/jsonrpc", Some(&body.to_string())));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], 7, "{v}");
    v
}

async fn subscribe(node: &TestNode, ctx: &str) -> Ws {
    let mut ws = tokio_tungstenite::connect_async(node.ws_url())
        .await
        .unwrap()
        .0;
    let req = json!({"id": 1, "method": "subscribe", "params": {"contextIds": [ctx]}});
    ws.send(Message::Text(req.to_string().into()))
        .await
        .unwrap();
    ws
}

/// Opens `GET /sse?contextIds=ctx` and returns the first `Ephemeral`
/// event's SSE id (if any) and data.
async fn sse_ephemeral(node: &TestNode, ctx: &str) -> (Option<String>, Value) {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut response = client
        .get(node.url(&format!("/sse?contextIds={ctx}")))
        .bearer_auth(&node.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut buf = String::new();
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let v: Value = serde_json::from_str(&data).unwrap();
            if v["type"] == "Ephemeral" {
                return (id, v["data"].clone());
            }
        }
        let chunk = tokio::time::timeout(WAIT, response.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else {
            panic!("no Ephemeral event on SSE: {chunk:?}");
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The next `Ephemeral` event's data.
async fn next_ephemeral(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next()).await;
        let Ok(Some(Ok(Message::Text(t)))) = msg else {
            if let Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) = msg {
                continue;
            }
            panic!("no Ephemeral event: {msg:?}");
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["id"].is_null() && v["result"]["type"] == "Ephemeral" {
            return v["result"]["data"].clone();
        }
    }
}

#[test]
fn sync_status_answers_and_ephemeral_state_reaches_members_then_expires() {
    let config = ["sync.frequency_ms=300", "presence.ttl_ms=1500"];
    let mut n1 = TestNode::start_with("node1", &config);
    let n2 = TestNode::start_with("node2", &config);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    // node1 created the namespace: its admin, whose key signs its state.
    let (_, members) = n1.request("GET", &format!("/admin-api/groups/{ns}/members"), None);
    let admin = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "Admin")
        .map(|m| hex::decode(m["identity"].as_str().unwrap()).unwrap())
        .unwrap();
    let author = bs58::encode(admin).into_string();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // sync_status: upstream's fields, and a typed error for an unknown id.
        let v = rpc(&n1, "sync_status", json!({"contextId": ctx}));
        let r = &v["result"];
        assert_eq!(r["contextId"], ctx.as_str(), "{v}");
        assert_eq!(r["isInitialized"], true, "{v}");
        assert!(r["syncState"]["state"].is_string(), "{v}");
        assert!(r["failureCount"].is_u64(), "{v}");
        let unknown = bs58::encode([9u8; 32]).into_string();
        let v = rpc(&n1, "sync_status", json!({"contextId": unknown}));
        assert_eq!(v["error"]["type"], "ContextNotFound", "{v}");
        let v = rpc(&n1, "sync_status", json!({"contextId": "nope"}));
        assert_eq!(v["error"]["type"], "ParseError", "{v}");

        // set_ephemeral: bounded, and a typed error past the bound.
        let v = rpc(
            &n1,
            "set_ephemeral",
            json!({"contextId": ctx, "state": vec![0u8; 16_385]}),
        );
        assert_eq!(v["error"]["type"], "SliceTooLarge", "{v}");
        assert_eq!(v["error"]["data"], json!({"size": 16_385, "max": 16_384}));

        // A member's state reaches the other member's subscriber, live
        // (without an age)...
        let mut live = subscribe(&n2, &ctx).await;
        let v = rpc(
            &n1,
            "set_ephemeral",
            json!({"contextId": ctx, "state": [1, 2, 3]}),
        );
        assert_eq!(v["result"], json!({}), "{v}");
        let e = next_ephemeral(&mut live).await;
        assert_eq!(e["author"], author.as_str(), "{e}");
        assert_eq!(e["state"], json!([1, 2, 3]), "{e}");
        assert!(e.get("ageMs").is_none(), "{e}");
        // ...and is replayed, aged, to one that subscribes later, on
        // either node (the author's own state too).
        for node in [&n2, &n1] {
            let mut late = subscribe(node, &ctx).await;
            let e = next_ephemeral(&mut late).await;
            assert_eq!(e["state"], json!([1, 2, 3]), "{e}");
            assert!(e["ageMs"].is_u64(), "{e}");
            // The same over SSE, outside the event sequence (no id).
            let (id, e) = sse_ephemeral(node, &ctx).await;
            assert_eq!(e["state"], json!([1, 2, 3]), "{e}");
            assert!(e["ageMs"].is_u64(), "{e}");
            assert_eq!(id, None, "{e}");
        }

        // Its author stops: the state expires on the other member.
        tokio::task::block_in_place(|| assert!(n1.stop()));
        let e = next_ephemeral(&mut live).await;
        assert_eq!(e["author"], author.as_str(), "{e}");
        assert_eq!(e["removed"], true, "{e}");
        assert!(e.get("state").is_none(), "{e}");
    });
}
