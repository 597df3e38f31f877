//! Talking to a node over HTTP: raw requests, JSON-RPC `execute` (one
//! call, or many at once), and the context view's root hash.

use std::collections::BTreeMap;
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

/// Root credentials of the nodes this process started, by API port: what
/// [`rpc`] and tools that hold only a port authenticate with.
static TOKENS: std::sync::Mutex<BTreeMap<u16, String>> = std::sync::Mutex::new(BTreeMap::new());

/// Records `token` as the credential of the node on `port`.
pub(crate) fn remember_token(port: u16, token: &str) {
    let mut t = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    t.insert(port, token.to_string());
}

/// The root credential of the node this process started on `port`
/// (empty if none: a node in proxy mode, or one started elsewhere).
pub fn token_for(port: u16) -> String {
    let t = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    t.get(&port).cloned().unwrap_or_default()
}

/// A blocking client like [`blocking_client`] that sends `token` as its
/// bearer token (none if empty).
pub fn authed_client(token: &str) -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if !token.is_empty() {
        let mut v: reqwest::header::HeaderValue = format!("Bearer {token}").parse().unwrap();
        v.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, v);
    }
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The JSON-RPC request that calls `method` of `ctx` with `args`.
fn execute(ctx: &str, method: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": ctx, "method": method, "argsJson": args}})
}

/// Calls `method` of `ctx` on the node at `port` over JSON-RPC, with its
/// root credential if this process started it; panics on an error answer;
/// returns the output. For tools that hold only a port.
pub fn rpc(
    c: &reqwest::blocking::Client,
    port: u16,
    ctx: &str,
    method: &str,
    args: Value,
) -> Value {
    let mut req = c.post(format!("http://127.0.0.1:{port}/jsonrpc"));
    let token = token_for(port);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let v: Value = req
        .json(&execute(ctx, method, args))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(v.get("error").is_none(), "{v}");
    v["result"]["output"].clone()
}

impl TestNode {
    /// A client that sends the root credential.
    pub fn client(&self) -> reqwest::blocking::Client {
        self.http.clone()
    }

    /// `ws://…/ws?token=<root credential>`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws?token={}", self.port, self.token)
    }

    /// A raw request with the root credential; returns status and JSON body
    /// (a string if the body is not JSON).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.request_with(&self.http, method, path, body)
    }

    /// A raw request with no token.
    pub fn anonymous_request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.request_with(&blocking_client(), method, path, body)
    }

    /// A raw request through `client`.
    pub fn request_with(
        &self,
        client: &reqwest::blocking::Client,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut req = client.request(method.parse().unwrap(), self.url(path));
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

    /// Calls `method` of `ctx` with `args` from `clients` threads at once,
    /// each with a connection of its own; how many answered without error.
    pub fn calls_at_once(&self, ctx: &str, method: &str, args: &Value, clients: usize) -> usize {
        let body = execute(ctx, method, args.clone()).to_string();
        let url = self.url("/jsonrpc");
        let callers: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url, body) = (self.client(), url.clone(), body.clone());
                std::thread::spawn(move || {
                    let resp = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .ok()?;
                    let v: Value = resp.json().ok()?;
                    v.get("error").is_none().then_some(())
                })
            })
            .collect();
        callers
            .into_iter()
            .map(std::thread::JoinHandle::join)
            .filter(|answer| matches!(answer, Ok(Some(()))))
            .count()
    }

    /// A context's root hash on this node (`None` if it has no such context).
    pub fn root(&self, ctx: &str) -> Option<String> {
        let (status, v) = self.request("GET", &format!("/admin-api/contexts/{ctx}"), None);
        (status == 200).then(|| v["data"]["contextStateHash"].as_str().unwrap().to_string())
    }
}
