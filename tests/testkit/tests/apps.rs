//! One test per fixture app, named after it: each installs its app through
//! the engine kit, creates a context and calls one of its methods. An app in
//! the fixtures' `APPS` without a test here is a compile error
//! (`foreach_app!` below), so no fixture goes untested.

#![allow(clippy::unwrap_used, reason = "tests fail fast")]

use mero_crdt::ContextId;
use mero_testkit::engine::{Engine, engine};
use serde_json::json;

macro_rules! assert_test_exists {
    ($name:ident) => {
        #[expect(unused_imports, reason = "only checks that the test exists")]
        use self::$name as _;
    };
}
mero_fixtures::foreach_app!(assert_test_exists);

/// An engine running the component at `path` in a context made with
/// `init_args`.
async fn running(path: &str, init_args: &str) -> (Engine, ContextId) {
    let e = engine(1);
    let app = e.install(path).await;
    let ctx = e.create(app, 1, init_args).await.unwrap();
    (e, ctx)
}

#[tokio::test]
async fn kv_store() {
    let (e, ctx) = running(mero_fixtures::KV_STORE, "").await;
    e.ok(&ctx, "set", json!({"key": "k", "value": "v"})).await;
    assert_eq!(e.ok(&ctx, "get", json!({"key": "k"})).await, json!("v"));
}

#[tokio::test]
async fn task_board() {
    let (e, ctx) = running(mero_fixtures::TASK_BOARD, r#"{"title": "board"}"#).await;
    let task = json!({"id": "t1", "title": "test it", "column": "todo"});
    e.ok(&ctx, "add_task", task).await;
    let board = e.ok(&ctx, "board", json!({})).await;
    assert_eq!(board["title"], json!("board"), "{board}");
    assert_eq!(board["columns"]["todo"][0]["id"], json!("t1"), "{board}");
}

#[tokio::test]
async fn misbehave() {
    let (e, ctx) = running(mero_fixtures::MISBEHAVE, "").await;
    e.ok(&ctx, "set", json!({"key": "k", "value": "v"})).await;
    assert_eq!(e.ok(&ctx, "get", json!({"key": "k"})).await, json!("v"));
}
