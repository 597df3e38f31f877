//! The API is locked: every route of `openapi.json` answers 401 without a
//! token, 403 with one lacking its permission and (reads) 2xx with one that
//! has it; browser defences hold in every mode; upstream's login flows work
//! as its clients speak them; revocation and key rotation take effect; path
//! installs refuse FIFOs and leak no bytes. In process, over the router.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail fast"
)]

use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mero_config::{AuthMode, ConfigFile};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    node: mero_node::Node,
    app: axum::Router,
    root: String,
    auth: mero_server::Auth,
    ids: Ids,
}

struct Ids {
    app: String,
    ns: String,
    ctx: String,
    account: String,
}

async fn fixture(mode: AuthMode, edit: impl FnOnce(&mut ConfigFile)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConfigFile::generate(1, 2).unwrap();
    config.server.auth_mode = mode;
    edit(&mut config);
    let node = mero_node::Node::start(mero_node::NodeOptions {
        dir: dir.path().into(),
        config: config.clone(),
    })
    .unwrap();
    let root = if mode == AuthMode::Embedded {
        let path = mero_server::auth::provision(dir.path(), false).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    } else {
        String::new()
    };
    let options = mero_server::ServerOptions::from_config(dir.path(), &config).unwrap();
    let app_id = node
        .install_application(
            mero_node::InstallSource::Bytes(mero_fixtures::KV_STORE_BYTES.to_vec()),
            Vec::new(),
            None,
            None,
        )
        .await
        .unwrap();
    let (ns, ctx) = node
        .create_namespace(&app_id, None, None, Vec::new())
        .await
        .unwrap();
    let ids = Ids {
        app: bs58::encode(app_id).into_string(),
        ns: hex::encode(ns),
        ctx: bs58::encode(ctx.0).into_string(),
        account: hex::encode(node.public_key()),
    };
    Fixture {
        app: mero_server::router(node.clone(), &options),
        auth: options.auth.clone(),
        node,
        root,
        ids,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Answer {
    /// Whether header `name` is there and contains `needle`.
    fn header_has(&self, name: &str, needle: &str) -> bool {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains(needle))
    }
}

impl Fixture {
    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:2528");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    fn token(&self, perms: &[&str]) -> String {
        let perms: Vec<String> = perms.iter().map(|s| s.to_string()).collect();
        self.auth.mint_token("test", &perms, 600).unwrap()
    }

    /// `path` with its parameters filled by the fixture's ids.
    fn fill(&self, path: &str) -> String {
        let id = if path.starts_with("/admin-api/applications/") {
            &self.ids.app
        } else if path.starts_with("/admin-api/contexts/") {
            &self.ids.ctx
        } else {
            &self.ids.ns
        };
        path.replace("{id}", id)
            .replace("{account}", &self.ids.account)
            .replace("{name}", "alias1")
    }
}

/// Every (method, path) of the checked-in OpenAPI document.
fn documented_routes() -> Vec<(String, String, bool)> {
    let doc: Value = serde_json::from_str(&mero_server::openapi_json()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            // An empty requirement in `security` marks a public route.
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            out.push((method.to_uppercase(), path.clone(), public));
        }
    }
    assert!(out.len() > 30, "{out:?}");
    out
}

#[tokio::test]
async fn every_documented_route_needs_a_token_and_its_permission() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let routes = documented_routes();
    let public: Vec<&str> = routes
        .iter()
        .filter(|r| r.2)
        .map(|r| r.1.as_str())
        .collect();
    assert_eq!(
        public,
        [
            "/admin-api/health",
            "/admin-api/is-authed",
            "/auth/refresh",
            "/auth/token"
        ],
        "only these are public"
    );
    let unrelated = f.token(&["network:peers"]);
    let other = f.token(&["application:list"]);
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for (method, path, public) in &routes {
        if *public {
            continue;
        }
        let url = f.fill(path);
        let body = if path == "/jsonrpc" {
            Some(json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
                "params": {"contextId": f.ids.ctx, "method": "get", "argsJson": {"key": "k"}}}))
        } else {
            (method != "GET").then(|| json!({}))
        };
        let a = f.call(method, &url, None, body.clone()).await;
        assert_eq!(a.status, 401, "{method} {path} without a token: {}", a.body);
        assert_eq!(a.headers["x-auth-error"], "missing_token");
        let a = f
            .call(method, &url, Some("not.a.token"), body.clone())
            .await;
        assert_eq!(a.status, 401, "{method} {path} with garbage: {}", a.body);
        let lacking = if path == "/admin-api/peers" {
            &other
        } else {
            &unrelated
        };
        let a = f.call(method, &url, Some(lacking), body.clone()).await;
        assert_eq!(
            a.status, 403,
            "{method} {path} lacking its permission: {}",
            a.body
        );
        if method == "GET" {
            reads.push((method.clone(), path.clone(), url));
        } else {
            writes.push((method.clone(), path.clone(), url, body));
        }
    }
    // With the permission the route names (scoped to the fixture's ids).
    for (method, path, url) in &reads {
        let need = mero_server::auth::required_permission(method, path, url);
        let t = f.token(&[&need]);
        let a = f.call(method, url, Some(&t), None).await;
        assert!(
            a.status.is_success(),
            "{method} {path} with `{need}`: {} {}",
            a.status,
            a.body
        );
    }
    // Writes with `{}` bodies mostly answer 400; what matters is that auth
    // let them through (no 401, and no 403 of the auth layer's kind).
    writes.sort_by_key(|w| w.0 == "DELETE" || w.1.ends_with("/leave"));
    for (method, path, url, body) in &writes {
        let need = match path.as_str() {
            // The handler decides by the call: this one is a `get` of the context.
            "/jsonrpc" => format!("context:execute[{}]", f.ids.ctx),
            _ => mero_server::auth::required_permission(method, path, url),
        };
        let t = f.token(&[&need]);
        let a = f.call(method, url, Some(&t), body.clone()).await;
        assert!(
            a.status != 401 && !(a.status == 403 && a.body["type"] == "Forbidden"),
            "{method} {path} with `{need}`: {} {}",
            a.status,
            a.body
        );
    }
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn calls_and_events_are_checked_per_context_and_method() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let ctx = f.ids.ctx.clone();
    let rpc = |method: &str| {
        let args = if method == "set" {
            json!({"key": "k", "value": "v"})
        } else {
            json!({"key": "k"})
        };
        json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
            "params": {"contextId": ctx, "method": method, "argsJson": args}})
    };
    let only_get = f.token(&[&format!("context:execute[{ctx},,get]")]);
    let a = f
        .call("POST", "/jsonrpc", Some(&only_get), Some(rpc("set")))
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = f
        .call("POST", "/jsonrpc", Some(&only_get), Some(rpc("get")))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.get("error").is_none(), "{}", a.body);
    let other_ctx = f.token(&["context:execute[11111111111111111111111111111111]"]);
    let a = f
        .call("POST", "/jsonrpc", Some(&other_ctx), Some(rpc("get")))
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = f
        .call("POST", "/jsonrpc", Some(&f.root), Some(rpc("set")))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    // SSE subscriptions need the context's permission too.
    let a = f
        .call(
            "GET",
            &format!("/sse?contextIds={ctx}"),
            Some(&other_ctx),
            None,
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    f.node.shutdown().await.unwrap();
}

fn raw(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

async fn browser_defences_hold(mode: AuthMode) {
    let f = fixture(mode, |c| {
        c.server.allowed_origins = vec!["http://localhost:5173".into()];
        c.server.allowed_hosts = vec!["node.example".into()];
    })
    .await;
    let bearer = format!("Bearer {}", f.root);
    let auth: &[(&str, &str)] = if f.root.is_empty() {
        &[]
    } else {
        &[("authorization", &bearer)]
    };
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h: Vec<(&str, &str)> = auth.to_vec();
        h.extend_from_slice(extra);
        h
    };
    let invite = format!("/admin-api/namespaces/{}/invite", f.ids.ns);
    // The review's cross-site text/plain POST, to JSON-RPC and to an admin route.
    let rpc = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
        "params": {"contextId": f.ids.ctx, "method": "set", "argsJson": {"key": "csrf", "value": "x"}}})
    .to_string();
    for path in ["/jsonrpc", invite.as_str()] {
        let a = f
            .send(raw(
                "POST",
                path,
                &with(&[("host", "127.0.0.1:2528"), ("content-type", "text/plain")]),
                &rpc,
            ))
            .await;
        assert_eq!(a.status, 415, "{path}: {}", a.body);
        let a = f
            .send(raw(
                "POST",
                path,
                &with(&[
                    ("host", "127.0.0.1:2528"),
                    ("origin", "http://evil.example"),
                    ("content-type", "application/json"),
                ]),
                &rpc,
            ))
            .await;
        assert_eq!(a.status, 403, "{path}: {}", a.body);
        assert_eq!(a.body["type"], "ForeignOrigin");
    }
    // DNS rebinding: a foreign Host is refused; configured and loopback ones served.
    let a = f
        .send(raw(
            "GET",
            "/admin-api/contexts",
            &with(&[("host", "attacker.example:2528")]),
            "",
        ))
        .await;
    assert_eq!(a.status, 421, "{}", a.body);
    for host in ["node.example:2528", "localhost:2528", "[::1]:2528"] {
        let a = f
            .send(raw(
                "GET",
                "/admin-api/contexts",
                &with(&[("host", host)]),
                "",
            ))
            .await;
        assert_eq!(a.status, 200, "{host}: {}", a.body);
    }
    // The node's own page, and the allowed origin with CORS answers.
    let from = |origin: &'static str| {
        raw(
            "GET",
            "/admin-api/contexts",
            &with(&[("host", "127.0.0.1:2528"), ("origin", origin)]),
            "",
        )
    };
    let a = f.send(from("http://127.0.0.1:2528")).await;
    assert_eq!(a.status, 200);
    let a = f
        .send(raw(
            "OPTIONS",
            "/jsonrpc",
            &[
                ("host", "127.0.0.1:2528"),
                ("origin", "http://localhost:5173"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            "",
        ))
        .await;
    assert_eq!(a.status, 204);
    assert!(a.header_has("access-control-allow-origin", "http://localhost:5173"));
    assert!(a.header_has("access-control-allow-headers", "authorization"));
    let preflight = [
        ("host", "127.0.0.1:2528"),
        ("origin", "http://localhost:3000"),
        ("access-control-request-method", "POST"),
    ];
    let a = f.send(raw("OPTIONS", "/jsonrpc", &preflight, "")).await;
    assert_eq!(a.status, 403, "an origin not listed gets no preflight");
    let a = f.send(from("http://localhost:5173")).await;
    assert_eq!(a.status, 200);
    assert!(a.header_has("access-control-allow-origin", "http://localhost:5173"));
    assert!(a.header_has("access-control-expose-headers", "x-auth-error"));
    // A WebSocket upgrade from a foreign page.
    let a = f
        .send(raw(
            "GET",
            "/ws",
            &with(&[
                ("host", "127.0.0.1:2528"),
                ("origin", "http://evil.example"),
                ("connection", "upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ]),
            "",
        ))
        .await;
    assert_eq!(a.status, 403);
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn browser_defences_hold_with_embedded_auth() {
    browser_defences_hold(AuthMode::Embedded).await;
}

#[tokio::test]
async fn browser_defences_hold_in_proxy_mode_too() {
    browser_defences_hold(AuthMode::Proxy).await;
}

/// A client speaking upstream's flows exactly: calimero-client-py's
/// `POST /auth/token` with the user_password provider, its refresh, and
/// upstream meroctl's browser login with a callback URL carrying `state`.
#[tokio::test]
async fn upstream_clients_log_in_refresh_and_are_revoked() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let dir = f._dir.path();
    mero_server::auth::set_password(dir, "alice", "correct horse", vec!["admin".into()]).unwrap();
    // The probe upstream clients use to detect auth.
    assert_eq!(
        f.call("GET", "/admin-api/contexts", None, None)
            .await
            .status,
        401
    );
    let login = |password: &str| {
        json!({"auth_method": "user_password", "public_key": "ed25519:abc", "client_name": "http://127.0.0.1:2528",
            "permissions": ["admin"], "timestamp": 1_700_000_000u64,
            "provider_data": {"username": "alice", "password": password}})
    };
    let a = f
        .call("POST", "/auth/token", None, Some(login("wrong password")))
        .await;
    assert_eq!(a.status, 401);
    assert!(
        a.body["data"].is_null() && a.body["error"].is_string(),
        "{}",
        a.body
    );
    let a = f
        .call("POST", "/auth/token", None, Some(login("correct horse")))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body["error"].is_null());
    let access = a.body["data"]["access_token"].as_str().unwrap().to_string();
    let refresh = a.body["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&access), None)
            .await
            .status,
        200
    );
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&refresh), None)
            .await
            .status,
        401,
        "a refresh token is no bearer token"
    );
    let is = f
        .call("GET", "/admin-api/is-authed", Some(&access), None)
        .await;
    assert_eq!(is.body["data"]["status"], "authed");
    // Refresh: a new pair; the refresh token is single-use.
    let body = json!({"access_token": access, "refresh_token": refresh});
    let a = f
        .call("POST", "/auth/refresh", None, Some(body.clone()))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let access2 = a.body["data"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&access2), None)
            .await
            .status,
        200
    );
    let a = f.call("POST", "/auth/refresh", None, Some(body)).await;
    assert_eq!(a.status, 401, "spent: {}", a.body);
    // Revoking the session stops its access token at once.
    let a = f
        .call(
            "POST",
            "/admin-api/auth/revoke",
            Some(&f.root),
            Some(json!({"token": access2})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = f
        .call("GET", "/admin-api/contexts", Some(&access2), None)
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.headers["x-auth-error"], "token_revoked");

    // The browser flow: the page, then its form, then the redirect.
    let callback = "http://127.0.0.1:9080/callback?state=s7a7e";
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("callback-url", callback)
        .append_pair("app-url", "http://127.0.0.1:2528")
        .append_pair("permissions", "admin")
        .finish();
    let page = f.call("GET", &format!("/auth/login?{q}"), None, None).await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    assert!(
        html.contains("name=\"password\"") && html.contains("state=s7a7e"),
        "{html}"
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("callback-url", callback)
        .append_pair("permissions", "admin")
        .append_pair("username", "alice")
        .append_pair("password", "correct horse")
        .finish();
    let a = f
        .send(raw(
            "POST",
            "/auth/login",
            &[
                ("host", "127.0.0.1:2528"),
                ("origin", "http://127.0.0.1:2528"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &form,
        ))
        .await;
    assert_eq!(a.status, 303, "{}", a.body);
    let location = url::Url::parse(a.headers["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        location.query(),
        Some("state=s7a7e"),
        "the callback's state comes back"
    );
    let tokens: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        f.call(
            "GET",
            "/admin-api/contexts",
            Some(&tokens["access_token"]),
            None
        )
        .await
        .status,
        200
    );
    // Guessing is slowed: after five failures the user's logins wait.
    for _ in 0..5 {
        let a = f
            .call("POST", "/auth/token", None, Some(login("guess")))
            .await;
        assert_eq!(a.status, 401);
    }
    let a = f
        .call("POST", "/auth/token", None, Some(login("correct horse")))
        .await;
    assert_eq!(a.status, 429, "{}", a.body);
    // Tokens never go to a callback elsewhere.
    let evil = form.replace("127.0.0.1%3A9080", "evil.example");
    let a = f
        .send(raw(
            "POST",
            "/auth/login",
            &[
                ("host", "127.0.0.1:2528"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            &evil,
        ))
        .await;
    assert_eq!(a.status, 400);
    f.node.shutdown().await.unwrap();
}

#[tokio::test]
async fn scoped_tokens_are_minted_and_key_rotation_retires_old_tokens() {
    let f = fixture(AuthMode::Embedded, |_| {}).await;
    let scoped = format!("context:execute[{}]", f.ids.ctx);
    let a = f
        .call(
            "POST",
            "/admin-api/auth/tokens",
            Some(&f.root),
            Some(json!({"permissions": [scoped], "expires_in_secs": 60})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let t = a.body["data"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&t), None)
            .await
            .status,
        403
    );
    // A token cannot mint more than it has.
    let a = f
        .call(
            "POST",
            "/admin-api/auth/tokens",
            Some(&t),
            Some(json!({"permissions": ["admin"], "expires_in_secs": 60})),
        )
        .await;
    assert_eq!(a.status, 403);
    let list = f.token(&["context:list"]);
    let a = f
        .call(
            "POST",
            "/admin-api/auth/rotate-keys",
            Some(&f.root),
            Some(json!({"retire_previous": false})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&list), None)
            .await
            .status,
        200
    );
    let a = f
        .call(
            "POST",
            "/admin-api/auth/rotate-keys",
            Some(&f.root),
            Some(json!({"retire_previous": true})),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&list), None)
            .await
            .status,
        401
    );
    assert_eq!(
        f.call("GET", "/admin-api/contexts", Some(&f.root), None)
            .await
            .status,
        200
    );
    f.node.shutdown().await.unwrap();
}

async fn install_path(f: &Fixture, path: &Path) -> Answer {
    f.call(
        "POST",
        "/admin-api/install-dev-application",
        Some(&f.root),
        Some(json!({"path": path, "metadata": []})),
    )
    .await
}

#[tokio::test]
async fn path_installs_refuse_fifos_and_never_echo_file_bytes() {
    let root = tempfile::tempdir().unwrap();
    let confined = root.path().to_path_buf();
    let f = fixture(AuthMode::Embedded, move |c| {
        c.server.install_root = Some(confined)
    })
    .await;
    let fifo = root.path().join("app.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let a = install_path(&f, &fifo).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.body["type"], "NotARegularFile", "{}", a.body);
    let secret = root.path().join("secret.wasm");
    std::fs::write(&secret, b"IS_SECRET=hunter2").unwrap();
    let a = install_path(&f, &secret).await;
    assert_eq!(a.body["type"], "InvalidComponent", "{}", a.body);
    let text = a.body.to_string();
    assert!(
        !text.contains("0x49") && !text.contains("IS_S") && !text.contains("hunter2"),
        "{text}"
    );
    let outside = f._dir.path().join("outside.wasm");
    std::fs::write(&outside, b"\0asm").unwrap();
    let a = install_path(&f, &outside).await;
    assert_eq!(a.status, 403, "{}", a.body);
    // Only a token with the install permission may.
    let t = f.token(&["application:list"]);
    let a = f
        .call(
            "POST",
            "/admin-api/install-dev-application",
            Some(&t),
            Some(json!({"path": secret, "metadata": []})),
        )
        .await;
    assert_eq!(a.status, 403);
    f.node.shutdown().await.unwrap();
}
