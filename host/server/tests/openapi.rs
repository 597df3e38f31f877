//! The OpenAPI document is generated from the code, served, and checked in
//! at `host/server/openapi.json`. After changing the API, regenerate it with
//! `MERO_BLESS=1 cargo test -p mero-server --test openapi`.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use http_body_util::BodyExt;
use tower::ServiceExt;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_checked_in_document_is_current() {
    let generated = mero_server::openapi_json();
    if std::env::var_os("MERO_BLESS").is_some() {
        std::fs::write(CHECKED_IN, &generated).unwrap();
    }
    let stored = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        stored == generated,
        "host/server/openapi.json is stale: run `MERO_BLESS=1 cargo test -p mero-server --test openapi`"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    for path in [
        "/admin-api/health",
        "/admin-api/install-dev-application",
        "/admin-api/applications/{id}",
        "/admin-api/namespaces",
        "/admin-api/contexts/{id}",
        "/jsonrpc",
        "/auth/token",
        "/auth/refresh",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "the bearer scheme is documented"
    );
    assert!(
        doc["security"][0].get("bearer").is_some(),
        "and required by default"
    );
    assert!(
        doc["paths"]["/admin-api/openapi.json"]["get"]
            .get("security")
            .is_none(),
        "the document itself is not public"
    );
}

/// To any valid token (it maps the API for its users, not for whoever
/// reaches the port), and to no one without.
#[tokio::test]
async fn the_node_serves_it_to_any_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = mero_config::ConfigFile::generate(1, 2).unwrap();
    let options = mero_server::ServerOptions::from_config(dir.path(), &config).unwrap();
    let node = mero_node::Node::start(mero_node::NodeOptions {
        dir: dir.path().into(),
        config,
    })
    .unwrap();
    let app = mero_server::router(node.clone(), &options);
    let get = |token: Option<String>| {
        let mut req = axum::http::Request::get("/admin-api/openapi.json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        app.clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
    };
    let resp = get(None).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-auth-error"], "missing_token");
    // A token that may do nothing else.
    let scoped = options
        .auth
        .mint_token("reader", &["network:peers".into()], 60)
        .unwrap();
    let resp = get(Some(scoped)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&body), mero_server::openapi_json());
    node.shutdown().await.unwrap();
}
