//! One real node: the seed's single-node flow, restart, every error class,
//! and concurrent clients losing nothing.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_testkit::node::{TestNode, bin};
use serde_json::{Value, json};

#[test]
fn the_seed_flow_works_through_meroctl() {
    let node = TestNode::start("node1");
    let text = node.meroctl_ok(&["app", "install", "--path", mero_fixtures::KV_STORE]);
    assert!(
        text.contains("Successfully installed application") && text.contains('╭'),
        "{text}"
    );
    let apps = node.meroctl_json(&["app", "ls"]);
    let app = apps[0]["id"].as_str().unwrap().to_string();
    // What the component declares: its crate's name and version.
    assert_eq!(apps[0]["package"], "kv-store");
    assert_eq!(apps[0]["version"], env!("CARGO_PKG_VERSION"));

    let text = node.meroctl_ok(&["namespace", "create", "--application-id", &app]);
    assert!(text.contains("Namespace ID"), "{text}");
    let ctx = node.meroctl_json(&["context", "ls"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let set = r#"{"key":"a","value":"b"}"#;
    node.meroctl_ok(&["call", "set", "--context", &ctx, "--args", set]);
    let get = r#"{"key":"a"}"#;
    assert!(
        node.meroctl_ok(&["call", "get", "--context", &ctx, "--args", get])
            .contains("┆ b "),
        "the human output shows the value"
    );
    let json = node.meroctl_json(&["call", "get", "--context", &ctx, "--args", r#"{"key":"a"}"#]);
    assert_eq!(json["result"]["output"], "b");

    let text = node.meroctl_ok(&["context", "ls"]);
    assert!(text.contains(&ctx) && text.contains("Root Hash"), "{text}");
    let ns = node.meroctl_json(&["namespace", "ls"]);
    assert_eq!(ns[0]["contexts"][0]["contextId"], ctx.as_str());
    assert_eq!(
        ns[0]["contexts"][0]["applicationVersion"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(ns[0]["memberCount"], 1);

    // A second context, named, reached by its alias.
    let ns_id = ns[0]["namespaceId"].as_str().unwrap().to_string();
    let made = node.meroctl_json(&[
        "context",
        "create",
        "-a",
        &app,
        "--group-id",
        &ns_id,
        "--name",
        "kv",
    ]);
    let ctx2 = made["contextId"].as_str().unwrap().to_string();
    node.meroctl_ok(&[
        "call",
        "set",
        "--context",
        "kv",
        "--args",
        r#"{"key":"x","value":"y"}"#,
    ]);
    assert_eq!(node.call(&ctx2, "get", json!({"key": "x"})), "y");
    assert_eq!(
        node.call(&ctx, "get", json!({"key": "x"})),
        Value::Null,
        "contexts are isolated"
    );
    let info = node.meroctl_json(&["context", "get", "kv", "info"]);
    assert_eq!(info["id"], ctx2.as_str());
    assert_eq!(info["dagHeads"].as_array().unwrap().len(), 1);
    node.meroctl_ok(&["context", "delete", "kv"]);
    node.meroctl()
        .args(["context", "get", &ctx2])
        .assert()
        .failure();
}

#[test]
fn a_restarted_node_keeps_its_state() {
    let mut node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    for i in 0..20 {
        node.call(
            &ctx,
            "set",
            json!({"key": format!("k{i}"), "value": format!("v{i}")}),
        );
    }
    let before = context_info(&node, &ctx);
    assert!(node.stop(), "clean exit on SIGTERM:\n{}", node.log());
    assert!(node.log().contains("stopped"));
    node.run();
    let after = context_info(&node, &ctx);
    assert_eq!(
        before["data"]["contextStateHash"],
        after["data"]["contextStateHash"]
    );
    assert_eq!(node.call(&ctx, "len", json!({})), 20);
    assert_eq!(node.call(&ctx, "get", json!({"key": "k7"})), "v7");
    node.call(&ctx, "set", json!({"key": "after", "value": "restart"}));
    assert_eq!(node.call(&ctx, "len", json!({})), 21);
}

/// A second `merod` on a running node's home is refused with a clear error
/// before it touches the store, and the first node carries on.
#[test]
fn a_second_process_on_the_same_home_is_refused() {
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    node.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    let home = node.dir().parent().unwrap().to_path_buf();
    let out = std::process::Command::new(bin("merod"))
        .arg("--home")
        .arg(&home)
        .args(["--node", &node.name, "run"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another process"), "{stderr}");
    node.call(&ctx, "set", json!({"key": "k2", "value": "v2"}));
    assert_eq!(node.call(&ctx, "len", json!({})), 2);
}

/// `GET /admin-api/contexts/<ctx>`: root hash, DAG heads and the rest.
fn context_info(node: &TestNode, ctx: &str) -> Value {
    node.request("GET", &format!("/admin-api/contexts/{ctx}"), None)
        .1
}

/// Every acknowledged call survives SIGKILL: commits are durable in the
/// write-ahead log before they are answered, and a restart replays it (and
/// rebuilds the Merkle trie, which the log leaves out).
#[test]
fn a_killed_node_keeps_every_acknowledged_write() {
    let mut node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    std::thread::scope(|s| {
        for c in 0..4 {
            let (node, ctx) = (&node, &ctx);
            s.spawn(move || {
                for i in 0..25 {
                    node.call(
                        ctx,
                        "set",
                        json!({"key": format!("c{c}-{i}"), "value": format!("{c}:{i}")}),
                    );
                }
            });
        }
    });
    node.call(&ctx, "remove", json!({"key": "c0-0"}));
    let before = context_info(&node, &ctx);
    node.kill();
    node.run();
    let after = context_info(&node, &ctx);
    assert_eq!(
        before["data"]["contextStateHash"],
        after["data"]["contextStateHash"]
    );
    assert_eq!(before["data"]["dagHeads"], after["data"]["dagHeads"]);
    let entries = node.call(&ctx, "entries", json!({}));
    let map = entries.as_object().unwrap();
    assert_eq!(map.len(), 99);
    assert_eq!(map["c3-24"], "3:24");
    assert!(!map.contains_key("c0-0"));
    node.call(&ctx, "set", json!({"key": "after", "value": "kill"}));
    assert_eq!(node.call(&ctx, "len", json!({})), 100);
}

fn expect(
    node: &TestNode,
    method: &str,
    path: &str,
    body: Option<&str>,
    status: u16,
    kind: &str,
) -> Value {
    let (got, v) = node.request(method, path, body);
    assert_eq!(got, status, "{method} {path}: {v}");
    assert_eq!(v["type"], kind, "{method} {path}: {v}");
    assert!(v["error"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    v
}

fn rpc_error(node: &TestNode, ctx: &str, method: &str, args: Value) -> (String, Value, String) {
    let v = node.rpc(ctx, method, args);
    let e = &v["error"];
    assert!(!e.is_null(), "{method} should fail: {v}");
    (
        e["type"].as_str().unwrap().into(),
        e["data"].clone(),
        e["kind"].as_str().unwrap_or_default().into(),
    )
}

#[test]
fn every_error_is_clear_and_changes_nothing() {
    let node = TestNode::start("node1");
    let (app, ns, ctx) = node.setup(mero_fixtures::KV_STORE);
    node.call(&ctx, "set", json!({"key": "a", "value": "1"}));
    let root = || {
        node.request("GET", &format!("/admin-api/contexts/{ctx}"), None)
            .1["data"]["contextStateHash"]
            .clone()
    };
    let before = root();

    // 400: bad input.
    expect(
        &node,
        "POST",
        "/admin-api/namespaces",
        Some("{not json"),
        400,
        "InvalidJson",
    );
    expect(
        &node,
        "POST",
        "/admin-api/namespaces",
        Some(r#"{"applicationId":"@@"}"#),
        400,
        "InvalidApplicationId",
    );
    expect(
        &node,
        "POST",
        "/admin-api/contexts",
        Some(&format!(r#"{{"applicationId":"{app}"}}"#)),
        400,
        "InvalidJson",
    );
    expect(
        &node,
        "GET",
        "/admin-api/contexts/not-base58!",
        None,
        400,
        "InvalidContextId",
    );
    expect(
        &node,
        "GET",
        "/admin-api/namespaces/xyz",
        None,
        400,
        "InvalidGroupId",
    );
    let not_wasm = node.home.path().join("not.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let body = json!({"path": not_wasm, "metadata": []}).to_string();
    expect(
        &node,
        "POST",
        "/admin-api/install-dev-application",
        Some(&body),
        400,
        "InvalidComponent",
    );
    let core = node.home.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let body = json!({"path": core, "metadata": []}).to_string();
    let v = expect(
        &node,
        "POST",
        "/admin-api/install-dev-application",
        Some(&body),
        400,
        "InvalidComponent",
    );
    assert!(v["error"].as_str().unwrap().contains("component"), "{v}");
    let body = json!({"path": "/no/such/file.wasm", "metadata": []}).to_string();
    expect(
        &node,
        "POST",
        "/admin-api/install-dev-application",
        Some(&body),
        400,
        "UnreadablePath",
    );
    let body =
        json!({"applicationId": app, "groupId": ns, "initializationParams": b"{oops".to_vec()})
            .to_string();
    expect(
        &node,
        "POST",
        "/admin-api/contexts",
        Some(&body),
        400,
        "InvalidInitParams",
    );

    // 404: unknown ids.
    let unknown = "11111111111111111111111111111111";
    expect(
        &node,
        "GET",
        &format!("/admin-api/contexts/{unknown}"),
        None,
        404,
        "ContextNotFound",
    );
    expect(
        &node,
        "GET",
        &format!("/admin-api/applications/{unknown}"),
        None,
        404,
        "ApplicationNotFound",
    );
    expect(
        &node,
        "GET",
        &format!("/admin-api/namespaces/{}", "00".repeat(32)),
        None,
        404,
        "NamespaceNotFound",
    );
    let body = json!({"applicationId": app, "groupId": "00".repeat(32)}).to_string();
    expect(
        &node,
        "POST",
        "/admin-api/contexts",
        Some(&body),
        404,
        "GroupNotFound",
    );
    expect(&node, "GET", "/admin-api/nope", None, 404, "RouteNotFound");
    let (_, v) = node.request("DELETE", &format!("/admin-api/contexts/{unknown}"), None);
    assert_eq!(v["data"]["isDeleted"], false);

    // 403: installs only from loopback.
    let body = json!({"url": "http://192.0.2.1/app.wasm", "metadata": []}).to_string();
    expect(
        &node,
        "POST",
        "/admin-api/install-application",
        Some(&body),
        403,
        "NonLoopbackUrl",
    );

    // 409: conflicts.
    expect(
        &node,
        "DELETE",
        &format!("/admin-api/applications/{app}"),
        None,
        409,
        "ApplicationInUse",
    );
    let alias = json!({"alias": "main", "contextId": ctx}).to_string();
    assert_eq!(
        node.request("POST", "/admin-api/alias/create/context", Some(&alias))
            .0,
        200
    );
    let other =
        node.meroctl_json(&["context", "create", "-a", &app, "--group-id", &ns])["contextId"]
            .as_str()
            .unwrap()
            .to_string();
    let clash = json!({"alias": "main", "contextId": other}).to_string();
    expect(
        &node,
        "POST",
        "/admin-api/alias/create/context",
        Some(&clash),
        409,
        "AliasExists",
    );
    let bad_alias = json!({"alias": "no spaces", "contextId": ctx}).to_string();
    expect(
        &node,
        "POST",
        "/admin-api/alias/create/context",
        Some(&bad_alias),
        400,
        "InvalidAlias",
    );

    // JSON-RPC: a bad envelope is a 400; failures inside one are typed.
    let (status, v) = node.request("POST", "/jsonrpc", Some("{oops"));
    assert_eq!(status, 400);
    assert_eq!(v["error"]["type"], "ParseError");
    let (status, v) = node.request(
        "POST",
        "/jsonrpc",
        Some(r#"{"jsonrpc":"2.0","id":3,"method":"nope","params":{}}"#),
    );
    assert_eq!(
        (status, v["error"]["type"].as_str(), v["id"].as_i64()),
        (200, Some("ParseError"), Some(3))
    );
    let (status, v) = node.request(
        "POST",
        "/jsonrpc",
        Some(&format!(
            r#"{{"jsonrpc":"1.0","id":4,"method":"execute","params":{{"contextId":"{ctx}","method":"get","argsJson":{{"key":"a"}}}}}}"#
        )),
    );
    assert_eq!(
        (status, v["error"]["type"].as_str()),
        (400, Some("ParseError"))
    );
    // A hand-written envelope: spacing, a string id with an escape, and an
    // escaped key reach the app as JSON, not as the bytes were laid out.
    let (status, v) = node.request(
        "POST",
        "/jsonrpc",
        Some(&format!(
            r#"{{ "jsonrpc" : "2.0", "id" : "q\"1", "method" : "execute",
                 "params" : {{ "contextId" : "{ctx}", "method" : "get",
                               "argsJson" : {{ "key" : "\u0061" }} }} }}"#
        )),
    );
    assert_eq!(
        (status, v["id"].as_str(), v["result"]["output"].as_str()),
        (200, Some("q\"1"), Some("1")),
        "{v}"
    );
    assert_eq!(node.call(&ctx, "entries", Value::Null), json!({"a": "1"}));
    assert_eq!(
        rpc_error(&node, &ctx, "no_such_method", json!({})).2,
        "UnknownMethod"
    );
    let (kind, _, detail) = rpc_error(&node, &ctx, "set", json!({"key": 1}));
    assert_eq!(
        (kind.as_str(), detail.as_str()),
        ("SerdeError", "InvalidArguments")
    );
    let (kind, data, _) = rpc_error(&node, &ctx, "get_result", json!({"key": "zz"}));
    assert_eq!(
        (kind.as_str(), data),
        (
            "FunctionCallError",
            json!({"kind": "NotFound", "data": "zz"})
        )
    );
    assert_eq!(
        rpc_error(&node, unknown, "get", json!({"key": "a"})).0,
        "ContextNotFound"
    );
    assert_eq!(
        rpc_error(&node, "@@", "get", json!({"key": "a"})).2,
        "InvalidContextId"
    );

    // meroctl exits non-zero with the message on stderr.
    let missing = r#"{"key":"zz"}"#;
    node.meroctl_fails(
        &["call", "get_result", "--context", &ctx, "--args", missing],
        "NotFound",
    );
    node.meroctl_fails(
        &["call", "get", "--context", &ctx, "--args", "{oops"],
        "JSON",
    );

    assert_eq!(root(), before, "no error changed the state");
    assert_eq!(node.call(&ctx, "entries", json!({})), json!({"a": "1"}));
}

#[test]
fn hostile_apps_fail_their_call_and_views_cannot_write() {
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::MISBEHAVE);
    node.call(&ctx, "set", json!({"key": "k", "value": "v"}));
    assert_eq!(
        rpc_error(&node, &ctx, "sneaky_write", json!({})).2,
        "ReadOnlyViolation"
    );
    assert_eq!(
        rpc_error(&node, &ctx, "spin", json!({})).2,
        "DeadlineExceeded"
    );
    assert_eq!(
        rpc_error(&node, &ctx, "alloc", json!({"mib": 500})).2,
        "OutOfMemory"
    );
    let (_, data, detail) = rpc_error(&node, &ctx, "panic", json!({"message": "boom"}));
    assert_eq!(detail, "Trapped");
    assert!(data.as_str().unwrap().contains("boom"), "{data}");
    assert_eq!(node.call(&ctx, "get", json!({"key": "spin"})), Value::Null);
    assert_eq!(node.call(&ctx, "get", json!({"key": "k"})), "v");
}

#[test]
fn uploads_and_loopback_urls_install_too() {
    let node = TestNode::start("node1");
    let bytes = std::fs::read(mero_fixtures::KV_STORE).unwrap();
    let resp = node
        .client()
        .post(node.url("/admin-api/install-application"))
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.json::<Value>().unwrap()["data"]["applicationId"]
        .as_str()
        .unwrap()
        .to_string();
    let app = node
        .request("GET", &format!("/admin-api/applications/{id}"), None)
        .1;
    let methods: Vec<&str> = app["data"]["application"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(methods.contains(&"set") && methods.contains(&"get"));
    // The node's own API serves as a loopback URL that is not a component.
    let body = json!({"url": node.url("/admin-api/health"), "metadata": []}).to_string();
    let (status, v) = node.request("POST", "/admin-api/install-application", Some(&body));
    assert_eq!(
        (status, v["type"].as_str()),
        (400, Some("InvalidComponent")),
        "{v}"
    );
    // Uninstall once nothing runs it.
    assert_eq!(
        node.request("DELETE", &format!("/admin-api/applications/{id}"), None)
            .0,
        200
    );
    assert_eq!(
        node.request("GET", &format!("/admin-api/applications/{id}"), None)
            .0,
        404
    );
}

#[test]
fn concurrent_clients_lose_nothing() {
    const CLIENTS: usize = 16;
    const SETS: usize = 40;
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (node, ctx) = (&node, &ctx);
            s.spawn(move || {
                for i in 0..SETS {
                    node.call(
                        ctx,
                        "set",
                        json!({"key": format!("c{c}-{i}"), "value": format!("{c}:{i}")}),
                    );
                }
            });
        }
    });
    let entries = node.call(&ctx, "entries", json!({}));
    let map = entries.as_object().unwrap();
    assert_eq!(map.len(), CLIENTS * SETS);
    for c in 0..CLIENTS {
        for i in 0..SETS {
            assert_eq!(map[&format!("c{c}-{i}")], format!("{c}:{i}"));
        }
    }
}
