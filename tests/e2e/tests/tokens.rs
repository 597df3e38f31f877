//! Scoped tokens from the command line against a real node: `meroctl token
//! create --scope … --expires …` mints one that works for its scope and is
//! refused elsewhere, for as long as it says; `meroctl token revoke` stops
//! it at once, a WebSocket opened with it included.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use mero_testkit::node::{TestNode, authed_client};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn execute(ctx: &str, method: &str, args: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": ctx, "method": method, "argsJson": args}})
    .to_string()
}

#[test]
fn meroctl_mints_a_scoped_token_that_works_for_its_scope_only() {
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    let (_, _, other) = node.setup(mero_fixtures::KV_STORE);
    let scope = format!("context:execute[{ctx}]");
    let made = node.meroctl_json(&[
        "token",
        "create",
        "--scope",
        &scope,
        "--expires",
        "10m",
        "--name",
        "script",
    ]);
    let token = made["access_token"].as_str().unwrap().to_string();
    assert_eq!(made["permissions"], json!([scope]));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = made["expires_at"].as_u64().unwrap();
    assert!(
        (now + 540..=now + 660).contains(&expires_at),
        "--expires 10m gave {expires_at} at {now}"
    );

    // Its context, over HTTP and through meroctl.
    let client = authed_client(&token);
    let set = execute(&ctx, "set", json!({"key": "k", "value": "v"}));
    let (status, v) = node.request_with(&client, "POST", "/jsonrpc", Some(&set));
    assert!(status == 200 && v["error"].is_null(), "{status} {v}");
    let got = node.meroctl_json(&[
        "--token",
        &token,
        "call",
        "get",
        "--context",
        &ctx,
        "--args",
        r#"{"key":"k"}"#,
    ]);
    assert_eq!(got["result"]["output"], "v", "{got}");

    // Anything else is refused: another context, the admin routes, more
    // than it has.
    let get_other = execute(&other, "get", json!({"key": "k"}));
    let (status, v) = node.request_with(&client, "POST", "/jsonrpc", Some(&get_other));
    assert_eq!(status, 403, "{v}");
    for path in [
        "/admin-api/contexts",
        "/admin-api/applications",
        "/admin-api/namespaces",
    ] {
        let (status, v) = node.request_with(&client, "GET", path, None);
        assert_eq!(status, 403, "{path}: {v}");
    }
    node.meroctl_fails(
        &["--token", &token, "context", "ls"],
        "lacks the permission",
    );
    node.meroctl_fails(
        &[
            "--token",
            &token,
            "token",
            "create",
            "--scope",
            "admin",
            "--expires",
            "1h",
        ],
        "lacks the permission",
    );
    node.meroctl_fails(
        &["token", "create", "--scope", "admin", "--expires", "1y"],
        "not a duration",
    );

    // The README's line for upstream's meroctl: JSON, the token in
    // `access_token`, admin for a week.
    let admin = node.meroctl_json(&["token", "create", "--scope", "admin", "--expires", "7d"]);
    let (status, _) = node.request_with(
        &authed_client(admin["access_token"].as_str().unwrap()),
        "GET",
        "/admin-api/contexts",
        None,
    );
    assert_eq!(status, 200);
    let week = admin["expires_at"].as_u64().unwrap() - now;
    assert!(
        (7 * 86_400 - 60..=7 * 86_400 + 60).contains(&week),
        "{week}"
    );
}

#[test]
fn meroctl_token_revoke_stops_a_token_and_closes_its_websocket() {
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    let scope = format!("context:execute[{ctx}]");
    let made = node.meroctl_json(&["token", "create", "--scope", &scope, "--expires", "1h"]);
    let token = made["access_token"].as_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("ws://127.0.0.1:{}/ws?token={token}", node.port);
    let mut ws = rt.block_on(async { tokio_tungstenite::connect_async(url).await.unwrap().0 });
    node.meroctl_ok(&["token", "revoke", &token]);
    let closed = rt.block_on(async {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .expect("the WebSocket was not closed in time")
            {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        }
    });
    let frame = closed.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert!(
        frame.reason.starts_with("token_revoked"),
        "{}",
        frame.reason
    );
    let (status, _) = node.request_with(
        &authed_client(&token),
        "POST",
        "/jsonrpc",
        Some(&execute(&ctx, "get", json!({"key": "k"}))),
    );
    assert_eq!(status, 401);
}
