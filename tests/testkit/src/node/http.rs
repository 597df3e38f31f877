//! Talking to a node over HTTP: raw requests, JSON-RPC `execute`, and the
//! context view's root hash.

use std::time::Duration;

use serde_json::{Value, json};

use super::TestNode;

/// A blocking HTTP client for tests and tools: no proxy, a generous timeout.
pub fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The JSON-RPC request that calls `method` of `ctx` with `args`.
fn execute(ctx: &str, method: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": ctx, "method": method, "argsJson": args}})
}

/// Calls `method` of `ctx` on the node at `port` over JSON-RPC; panics on an
/// error answer; returns the output. For tools that hold only a port.
pub fn rpc(
    c: &reqwest::blocking::Client,
    port: u16,
    ctx: &str,
    method: &str,
    args: Value,
) -> Value {
    let v: Value = c
        .post(format!("http://127.0.0.1:{port}/jsonrpc"))
        .json(&execute(ctx, method, args))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(v.get("error").is_none(), "{v}");
    v["result"]["output"].clone()
}

impl TestNode {
    /// A raw request; returns status and JSON body (a string if the body is
    /// not JSON).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let mut req = self.http.request(method.parse().unwrap(), self.url(path));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// JSON-RPC `execute`; returns the whole response.
    pub fn rpc(&self, ctx: &str, method: &str, args: Value) -> Value {
        let body = execute(ctx, method, args);
        let (status, v) = self.request("POST", "/jsonrpc", Some(&body.to_string()));
        assert_eq!(status, 200, "{v}");
        v
    }

    /// JSON-RPC `execute` expected to succeed; returns its output.
    pub fn call(&self, ctx: &str, method: &str, args: Value) -> Value {
        let v = self.rpc(ctx, method, args);
        assert!(v.get("error").is_none(), "{method} failed: {v}");
        v["result"]["output"].clone()
    }

    /// A context's root hash on this node (`None` if it has no such context).
    pub fn root(&self, ctx: &str) -> Option<String> {
        let (status, v) = self.request("GET", &format!("/admin-api/contexts/{ctx}"), None);
        (status == 200).then(|| v["data"]["contextStateHash"].as_str().unwrap().to_string())
    }
}
