//! `/admin-api/health` keeps upstream's `{"data": {"status": "alive"}}`
//! and adds whether the node is ready, check by check: 503 until
//! networking runs, 200 while everything does, 503 again (still alive)
//! once the executor and the network task have stopped. The store's
//! refusal of commits is checked where it can be provoked, in the store's
//! tests (`wal.rs`). In process, over the router.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mero_config::ConfigFile;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn health(app: &axum::Router) -> (StatusCode, Value) {
    let req = Request::get("/admin-api/health")
        .header("host", "127.0.0.1:2528")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn health_is_alive_throughout_and_ready_only_while_every_part_runs() {
    let dir = tempfile::tempdir().unwrap();
    // Swarm on a free loopback port.
    let config = ConfigFile::generate(1, 0).unwrap();
    let node = mero_node::Node::start(mero_node::NodeOptions {
        dir: dir.path().into(),
        config: config.clone(),
    })
    .unwrap();
    let options = mero_server::ServerOptions::from_config(dir.path(), &config).unwrap();
    let app = mero_server::router(node.clone(), &options);

    let (status, v) = health(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["data"]["status"], "alive");
    assert_eq!(v["data"]["ready"], false);
    assert_eq!(
        v["data"]["checks"],
        json!({
            "store": {"ok": true},
            "log": {"ok": true},
            "executor": {"ok": true},
            "network": {"ok": false, "reason": "networking has not started"},
        })
    );

    node.start_network().await.unwrap();
    let (status, v) = health(&app).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["data"],
        json!({
            "status": "alive",
            "ready": true,
            "checks": {
                "store": {"ok": true},
                "log": {"ok": true},
                "executor": {"ok": true},
                "network": {"ok": true},
            },
        })
    );

    // Stopped: the process still answers, but can neither run calls nor
    // reach peers. The tasks' ends are observed by polling.
    node.shutdown().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let (status, v) = health(&app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        let checks = &v["data"]["checks"];
        if checks["executor"]["ok"] == false && checks["network"]["ok"] == false {
            break v;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(v["data"]["status"], "alive");
    assert_eq!(v["data"]["ready"], false);
    assert_eq!(
        v["data"]["checks"]["network"]["reason"],
        "the network task has stopped"
    );
    let why = v["data"]["checks"]["executor"]["reason"].as_str().unwrap();
    assert!(why.starts_with("the executor has ended"), "{why}");
}
