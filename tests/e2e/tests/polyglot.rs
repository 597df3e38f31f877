//! One kv-store suite run against the Rust, Python and JavaScript kv-store
//! components on real nodes: the same methods, intents, JSON results,
//! errors and events, and a Python or JS context replicating across nodes
//! like any other.
//!
//! The Python and JS components are built by `scripts/build-polyglot-apps`
//! into `target/polyglot/`. If one is missing the tests fail saying so;
//! `MERO_SKIP_POLYGLOT=1` skips the Python and JS runs (local runs only:
//! CI builds them first).

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mero_testkit::node::{FAST_SYNC, TestNode, assert_converged};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The component of `lang` (`rust`, `py`, `js`), or `None` if skipped.
fn component(lang: &str) -> Option<String> {
    if lang == "rust" {
        return Some(mero_fixtures::KV_STORE.to_string());
    }
    if std::env::var_os("MERO_SKIP_POLYGLOT").is_some_and(|v| v == "1") {
        eprintln!("MERO_SKIP_POLYGLOT=1: skipping the {lang} kv-store");
        return None;
    }
    let dir = std::env::var_os("MERO_POLYGLOT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/polyglot"),
        PathBuf::from,
    );
    let path = dir.join(format!("kv-store-{lang}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `scripts/build-polyglot-apps` (or set MERO_SKIP_POLYGLOT=1 to skip \
         the Python and JS apps locally)",
        path.display()
    );
    Some(path.to_string_lossy().into_owned())
}

/// A JSON-RPC `execute` that is expected to fail: its error.
fn call_err(node: &TestNode, ctx: &str, method: &str, args: Value) -> Value {
    let v = node.rpc(ctx, method, args);
    assert!(v.get("result").is_none(), "{method} should fail: {v}");
    v["error"].clone()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON message within a minute, skipping pings.
async fn next(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => panic!("no message: {other:?}"),
        }
    }
}

/// Every method with its intent, as `app ls` shows them, sorted.
fn methods(node: &TestNode, app: &str) -> Vec<(String, String)> {
    let apps = node.meroctl_json(&["app", "ls"]);
    let entry = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == app)
        .unwrap();
    let mut out: Vec<(String, String)> = entry["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["intent"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The shared suite: every method of the upstream kv-store interface, its
/// JSON, errors and events, through one node.
fn kv_suite(lang: &str) {
    let Some(path) = component(lang) else { return };
    let node = TestNode::start(&format!("{lang}1"));
    let (app, _, ctx) = node.setup(&path);

    let rw = |n: &str, i: &str| (n.to_string(), i.to_string());
    assert_eq!(
        methods(&node, &app),
        vec![
            rw("clear", "mutating"),
            rw("entries", "readOnly"),
            rw("get", "readOnly"),
            rw("get_or_insert", "mutating"),
            rw("get_result", "readOnly"),
            rw("get_unchecked", "readOnly"),
            rw("len", "readOnly"),
            rw("remove", "mutating"),
            rw("set", "mutating"),
            rw("update_if_exists", "mutating"),
        ],
        "{lang}: methods and intents"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut ws: Ws = rt.block_on(async {
        let mut ws = tokio_tungstenite::connect_async(node.ws_url())
            .await
            .unwrap()
            .0;
        let sub = json!({"id": 1, "method": "subscribe", "params": {"contextIds": [ctx]}});
        ws.send(Message::Text(sub.to_string().into()))
            .await
            .unwrap();
        while next(&mut ws).await["id"] != 1 {}
        ws
    });

    let c = |m: &str, a: Value| node.call(&ctx, m, a);
    assert_eq!(c("len", json!({})), 0, "{lang}");
    assert_eq!(c("set", json!({"key": "a", "value": "1"})), Value::Null);
    assert_eq!(c("set", json!({"key": "a", "value": "2"})), Value::Null);
    assert_eq!(c("set", json!({"key": "é", "value": "ü ✓"})), Value::Null);
    assert_eq!(c("get", json!({"key": "a"})), "2", "{lang}");
    assert_eq!(c("get", json!({"key": "é"})), "ü ✓", "{lang}");
    assert_eq!(c("get", json!({"key": "missing"})), Value::Null);
    assert_eq!(
        c("update_if_exists", json!({"key": "nope", "value": "x"})),
        false
    );
    assert_eq!(
        c("update_if_exists", json!({"key": "a", "value": "3"})),
        true
    );
    assert_eq!(c("get_or_insert", json!({"key": "a", "value": "x"})), "3");
    assert_eq!(c("get_or_insert", json!({"key": "b", "value": "4"})), "4");
    assert_eq!(
        c("entries", json!({})),
        json!({"a": "3", "b": "4", "é": "ü ✓"}),
        "{lang}"
    );
    assert_eq!(c("len", json!({})), 3, "{lang}");
    assert_eq!(c("get_unchecked", json!({"key": "b"})), "4");
    assert_eq!(c("get_result", json!({"key": "b"})), "4");
    assert_eq!(c("remove", json!({"key": "b"})), "4");
    assert_eq!(c("remove", json!({"key": "b"})), Value::Null);

    // Errors: the same kinds and app payloads in every language.
    let e = call_err(&node, &ctx, "get_unchecked", json!({"key": "zz"}));
    assert_eq!(
        (&e["kind"], &e["data"]),
        (&json!("AppError"), &json!("key not found: zz")),
        "{lang}: {e}"
    );
    let e = call_err(&node, &ctx, "get_result", json!({"key": "zz"}));
    assert_eq!(
        e["data"],
        json!({"kind": "NotFound", "data": "zz"}),
        "{lang}"
    );
    for bad in [
        json!({"key": 1, "value": "x"}),
        json!({"key": "k"}),
        json!({"key": "k", "value": "v", "extra": 1}),
    ] {
        let e = call_err(&node, &ctx, "set", bad.clone());
        assert_eq!(e["kind"], "InvalidArguments", "{lang}: set({bad}): {e}");
    }
    let e = call_err(&node, &ctx, "no_such_method", json!({}));
    assert_eq!(e["kind"], "UnknownMethod", "{lang}: {e}");
    assert_eq!(
        c("len", json!({})),
        2,
        "{lang}: failed calls change nothing"
    );

    assert_eq!(c("clear", json!({})), Value::Null);
    assert_eq!(c("len", json!({})), 0);
    assert_eq!(c("entries", json!({})), json!({}));

    // The events of the calls above, in order, as subscribers see them.
    let expected = vec![
        json!({"kind": "Inserted", "data": {"key": "a", "value": "1"}}),
        json!({"kind": "Updated", "data": {"key": "a", "value": "2"}}),
        json!({"kind": "Inserted", "data": {"key": "é", "value": "ü ✓"}}),
        json!({"kind": "Updated", "data": {"key": "a", "value": "3"}}),
        json!({"kind": "Inserted", "data": {"key": "b", "value": "4"}}),
        json!({"kind": "Removed", "data": {"key": "b"}}),
        json!({"kind": "Cleared", "data": null}),
    ];
    let seen = rt.block_on(async {
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            let v = next(&mut ws).await;
            if v["result"]["type"] == "ExecutionEvent" {
                let d = &v["result"]["data"];
                seen.push(json!({"kind": d["kind"], "data": d["data"]}));
            }
        }
        seen
    });
    assert_eq!(seen, expected, "{lang}: events");
}

#[test]
fn the_rust_kv_store_passes_the_shared_suite() {
    kv_suite("rust");
}

#[test]
fn the_python_kv_store_passes_the_shared_suite() {
    kv_suite("py");
}

#[test]
fn the_js_kv_store_passes_the_shared_suite() {
    kv_suite("js");
}

/// A context of a Python or JS app replicates across nodes like any other:
/// writes on either node reach the other, waited for by polling roots.
fn replicates(lang: &str) {
    let Some(path) = component(lang) else { return };
    let n1 = TestNode::start_with(&format!("{lang}-a"), FAST_SYNC);
    let n2 = TestNode::start_with(&format!("{lang}-b"), FAST_SYNC);
    let (_, ns, ctx) = n1.setup(&path);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    for i in 0..5 {
        n1.call(
            &ctx,
            "set",
            json!({"key": format!("k{i}"), "value": format!("v{i}")}),
        );
    }
    n2.call(&ctx, "set", json!({"key": "from-b", "value": "b"}));
    assert_converged(&[&n1, &n2], &ctx);
    let both = json!({"from-b": "b", "k0": "v0", "k1": "v1", "k2": "v2", "k3": "v3", "k4": "v4"});
    assert_eq!(n1.call(&ctx, "entries", json!({})), both, "{lang}");
    assert_eq!(n2.call(&ctx, "entries", json!({})), both, "{lang}");
}

#[test]
fn a_python_context_replicates_across_nodes() {
    replicates("py");
}

#[test]
fn a_js_context_replicates_across_nodes() {
    replicates("js");
}

/// A restarted node loads each big component from its compile cache rather
/// than compiling it again: the artifact is on disk, and calls answer.
#[test]
fn a_restarted_node_loads_big_components_from_its_cache() {
    let (Some(py), Some(js)) = (component("py"), component("js")) else {
        return;
    };
    let mut node = TestNode::start("cache1");
    let mut ctxs = Vec::new();
    for path in [&py, &js] {
        let (_, _, ctx) = node.setup(path);
        node.call(&ctx, "set", json!({"key": "k", "value": "v"}));
        ctxs.push(ctx);
    }
    let dir = node.dir();
    let cached = || -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut v: Vec<_> = walk(&dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .map(|p| {
                let m = std::fs::metadata(&p).unwrap().modified().unwrap();
                (p, m)
            })
            .collect();
        v.sort();
        v
    };
    let before = cached();
    assert!(
        before.len() >= 2,
        "each component is compiled once into the cache: {before:?}"
    );
    assert!(node.stop(), "clean exit:\n{}", node.log());
    node.run();
    for ctx in &ctxs {
        assert_eq!(node.call(ctx, "get", json!({"key": "k"})), "v");
    }
    assert_eq!(
        cached(),
        before,
        "a restart reuses the cached artifacts instead of writing new ones"
    );
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
