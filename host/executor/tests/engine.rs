//! The real sample components, run by the executor over a real LMDB store:
//! calls, limits, rollback, group commit and pipelined batches.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use mero_crdt::ContextId;
use mero_executor::ExecError;
use mero_runtime::CallError;
use mero_testkit::engine::{CALL_TIMEOUT_MS, Engine, call_err, engine, engine_with_instances};
use serde_json::json;

#[tokio::test]
async fn kv_store_keeps_the_upstream_interface() {
    let e = engine(1);
    let app = e.install(mero_fixtures::KV_STORE).await;
    let ctx = e.create(app, 1, "").await.unwrap();

    let out = e
        .call(&ctx, "set", json!({"key": "a", "value": "1"}))
        .await
        .unwrap();
    assert_eq!(out.output, json!(null));
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].kind, "Inserted");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.events[0].data).unwrap(),
        json!({"key": "a", "value": "1"})
    );
    assert!(out.delta.is_some());
    assert_eq!(out.root_hash, e.root(&ctx));

    let out = e
        .call(&ctx, "set", json!({"key": "a", "value": "2"}))
        .await
        .unwrap();
    assert_eq!(out.events[0].kind, "Updated");
    e.ok(&ctx, "set", json!({"key": "b", "value": "x"})).await;

    assert_eq!(e.ok(&ctx, "get", json!({"key": "a"})).await, json!("2"));
    assert_eq!(e.ok(&ctx, "get", json!({"key": "zz"})).await, json!(null));
    assert_eq!(e.ok(&ctx, "len", json!({})).await, json!(2));
    assert_eq!(
        e.ok(&ctx, "entries", json!(null)).await,
        json!({"a": "2", "b": "x"})
    );
    assert_eq!(
        e.ok(&ctx, "get_unchecked", json!({"key": "b"})).await,
        json!("x")
    );
    assert_eq!(
        e.ok(&ctx, "get_result", json!({"key": "b"})).await,
        json!("x")
    );
    match call_err(e.call(&ctx, "get_result", json!({"key": "zz"})).await) {
        CallError::App(v) => assert_eq!(v, json!({"kind": "NotFound", "data": "zz"})),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        call_err(e.call(&ctx, "get_unchecked", json!({"key": "zz"})).await),
        CallError::App(_)
    ));

    assert_eq!(
        e.ok(
            &ctx,
            "update_if_exists",
            json!({"key": "nope", "value": "1"})
        )
        .await,
        json!(false)
    );
    assert_eq!(
        e.ok(&ctx, "update_if_exists", json!({"key": "b", "value": "y"}))
            .await,
        json!(true)
    );
    assert_eq!(
        e.ok(&ctx, "get_or_insert", json!({"key": "b", "value": "z"}))
            .await,
        json!("y")
    );
    assert_eq!(
        e.ok(&ctx, "get_or_insert", json!({"key": "c", "value": "z"}))
            .await,
        json!("z")
    );

    let out = e.call(&ctx, "remove", json!({"key": "a"})).await.unwrap();
    assert_eq!(out.output, json!("2"));
    assert_eq!(out.events[0].kind, "Removed");
    assert_eq!(e.ok(&ctx, "remove", json!({"key": "a"})).await, json!(null));
    assert_eq!(e.ok(&ctx, "get", json!({"key": "a"})).await, json!(null));
    assert_eq!(e.ok(&ctx, "len", json!({})).await, json!(2));

    let out = e.call(&ctx, "clear", json!({})).await.unwrap();
    assert_eq!(out.events[0].kind, "Cleared");
    assert_eq!(e.ok(&ctx, "entries", json!({})).await, json!({}));
    // Re-inserting after a clear works.
    e.ok(&ctx, "set", json!({"key": "a", "value": "again"}))
        .await;
    assert_eq!(e.ok(&ctx, "get", json!({"key": "a"})).await, json!("again"));
}

#[tokio::test]
async fn bad_calls_get_clear_errors_and_change_nothing() {
    let e = engine(2);
    let app = e.install(mero_fixtures::KV_STORE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    e.ok(&ctx, "set", json!({"key": "a", "value": "1"})).await;
    let root = e.root(&ctx);

    assert!(
        matches!(call_err(e.call(&ctx, "nope", json!({})).await), CallError::UnknownMethod(m) if m == "nope")
    );
    let r = e.exec.call(&ctx, "set", "{not json".into()).await;
    assert!(matches!(call_err(r), CallError::InvalidArguments(_)));
    let r = e.call(&ctx, "set", json!({"key": "a"})).await;
    assert!(matches!(call_err(r), CallError::InvalidArguments(m) if m.contains("value")));
    let r = e
        .call(&ctx, "set", json!({"key": "a", "value": "1", "extra": 1}))
        .await;
    assert!(matches!(call_err(r), CallError::InvalidArguments(m) if m.contains("extra")));
    let r = e.call(&ctx, "set", json!({"key": 5, "value": "1"})).await;
    assert!(matches!(call_err(r), CallError::InvalidArguments(_)));
    assert!(matches!(
        e.call(&ContextId([9; 32]), "get", json!({"key": "a"}))
            .await,
        Err(ExecError::ContextNotFound)
    ));
    assert_eq!(e.root(&ctx), root);
}

#[tokio::test]
async fn hostile_guests_fail_one_call_and_the_node_goes_on() {
    let e = engine(3);
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    e.ok(&ctx, "set", json!({"key": "k", "value": "v"})).await;
    let root = e.root(&ctx);

    let err = call_err(e.call(&ctx, "spin", json!({})).await);
    assert!(
        matches!(err, CallError::DeadlineExceeded(CALL_TIMEOUT_MS)),
        "{err:?}"
    );
    let err = call_err(e.call(&ctx, "alloc", json!({"mib": 200})).await);
    assert!(
        matches!(&err, CallError::OutOfMemory(m) if m.contains("memory")),
        "{err:?}"
    );
    let err = call_err(e.call(&ctx, "panic", json!({"message": "boom"})).await);
    assert!(
        matches!(&err, CallError::Trapped(m) if m.contains("boom")),
        "{err:?}"
    );
    let err = call_err(
        e.call(&ctx, "recurse", json!({"depth": 10_000_000u64}))
            .await,
    );
    assert!(matches!(err, CallError::Trapped(_)), "{err:?}");
    let err = call_err(e.call(&ctx, "fail", json!({})).await);
    assert!(
        matches!(&err, CallError::App(v) if v == &json!("failing on purpose")),
        "{err:?}"
    );
    let err = call_err(e.call(&ctx, "write_many", json!({"n": 6_000})).await);
    assert!(matches!(err, CallError::LimitExceeded(_)), "{err:?}");
    let err = call_err(
        e.call(&ctx, "big_value", json!({"bytes": (10 << 20) + 100}))
            .await,
    );
    assert!(matches!(err, CallError::TooLarge(_)), "{err:?}");

    // Views cannot write, even by swallowing the error they get.
    let err = call_err(e.call(&ctx, "sneaky_write", json!({})).await);
    assert!(
        matches!(&err, CallError::ReadOnly(m) if m == "sneaky_write"),
        "{err:?}"
    );
    let err = call_err(e.call(&ctx, "sneaky_emit", json!({})).await);
    assert!(matches!(err, CallError::ReadOnly(_)), "{err:?}");

    // None of the failed calls left a trace, and the node still works.
    assert_eq!(e.root(&ctx), root);
    for key in ["spin", "alloc", "panic", "recurse", "fail", "k0", "big"] {
        assert_eq!(
            e.ok(&ctx, "get", json!({"key": key})).await,
            json!(null),
            "{key}"
        );
    }
    e.ok(&ctx, "set", json!({"key": "after", "value": "ok"}))
        .await;
    assert_eq!(
        e.ok(&ctx, "get", json!({"key": "after"})).await,
        json!("ok")
    );
}

#[tokio::test]
async fn task_board_nests_counts_and_keeps_private_data_local() {
    let e = engine(5);
    let app = e.install(mero_fixtures::TASK_BOARD).await;
    let err = e.create(app, 1, r#"{"title": "  "}"#).await.unwrap_err();
    assert!(matches!(err, ExecError::Call(CallError::App(_))), "{err:?}");
    assert!(
        e.store
            .snapshot()
            .unwrap()
            .context_meta(&ContextId([1; 32]))
            .unwrap()
            .is_none()
    );

    let ctx = e.create(app, 1, r#"{"title": "Launch"}"#).await.unwrap();
    e.ok(
        &ctx,
        "add_task",
        json!({"id": "t1", "title": "Write docs", "column": "todo"}),
    )
    .await;
    e.ok(
        &ctx,
        "add_task",
        json!({"id": "t2", "title": "Ship", "column": "todo"}),
    )
    .await;
    e.ok(
        &ctx,
        "add_task",
        json!({"id": "t3", "title": "Test", "column": "doing"}),
    )
    .await;
    let err = call_err(
        e.call(
            &ctx,
            "add_task",
            json!({"id": "t1", "title": "dup", "column": "todo"}),
        )
        .await,
    );
    assert!(matches!(err, CallError::App(_)));
    e.ok(&ctx, "move_task", json!({"id": "t2", "to": "doing"}))
        .await;
    e.ok(&ctx, "assign", json!({"id": "t3", "assignee": "ana"}))
        .await;
    assert_eq!(e.ok(&ctx, "complete", json!({"id": "t1"})).await, json!(1));
    e.ok(&ctx, "add_label", json!({"label": "urgent"})).await;
    e.ok(&ctx, "remove_label", json!({"label": "bug"})).await;
    e.ok(&ctx, "rename", json!({"title": "Launch v2"})).await;

    let board = e.ok(&ctx, "board", json!({})).await;
    assert_eq!(board["title"], json!("Launch v2"));
    assert_eq!(board["labels"], json!(["urgent"]));
    let ids = |col: &str| -> Vec<String> {
        board["columns"][col]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("todo"), Vec::<String>::new());
    assert_eq!(ids("doing"), vec!["t3", "t2"]);
    assert_eq!(ids("done"), vec!["t1"]);
    assert_eq!(
        board["columns"]["doing"][0]["fields"]["assignee"],
        json!("ana")
    );
    let author = hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&[5; 32])
            .verifying_key()
            .to_bytes(),
    );
    assert_eq!(
        board["columns"]["done"][0]["fields"]["author"],
        json!(author)
    );
    assert_eq!(
        e.ok(&ctx, "stats", json!({})).await,
        json!({"created": 3, "completed": 1, "open": 2, "tasks": 3})
    );

    assert_eq!(
        e.ok(&ctx, "delete_task", json!({"id": "t2"})).await,
        json!(true)
    );
    assert_eq!(
        e.ok(&ctx, "stats", json!({})).await,
        json!({"created": 2, "completed": 1, "open": 1, "tasks": 2})
    );

    // Private storage: readable, written with the call, but no delta and no
    // change of the replicated root.
    let root = e.root(&ctx);
    let out = e
        .call(&ctx, "save_draft", json!({"text": "secret plan"}))
        .await
        .unwrap();
    assert!(out.delta.is_none());
    assert_eq!(e.root(&ctx), root);
    assert_eq!(e.ok(&ctx, "draft", json!({})).await, json!("secret plan"));
}

#[tokio::test]
async fn contexts_are_isolated() {
    let e = engine(6);
    let app = e.install(mero_fixtures::KV_STORE).await;
    let a = e.create(app, 1, "").await.unwrap();
    let b = e.create(app, 2, "").await.unwrap();
    e.ok(&a, "set", json!({"key": "k", "value": "in a"})).await;
    assert_eq!(e.ok(&b, "get", json!({"key": "k"})).await, json!(null));
    assert_eq!(e.ok(&b, "len", json!({})).await, json!(0));
    assert!(matches!(
        e.create(app, 1, "").await,
        Err(ExecError::ContextExists)
    ));
    assert!(e.exec.delete_context(a).await.unwrap());
    assert!(matches!(
        e.call(&a, "get", json!({"key": "k"})).await,
        Err(ExecError::ContextNotFound)
    ));
    assert!(!e.exec.delete_context(a).await.unwrap());
    e.ok(&b, "set", json!({"key": "k", "value": "in b"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_commits_and_lose_nothing() {
    let e = std::sync::Arc::new(engine(7));
    let app = e.install(mero_fixtures::KV_STORE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let commits_before = e.commits();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            e.call(
                &ctx,
                "set",
                json!({"key": format!("k{i}"), "value": format!("v{i}")}),
            )
            .await
            .unwrap()
        }));
    }
    let mut roots = std::collections::HashSet::new();
    for t in tasks {
        roots.insert(t.await.unwrap().root_hash);
    }
    // Group commit: the 200 calls shared far fewer write transactions.
    let commits = e.commits() - commits_before;
    assert!(commits < 100, "{commits} commits for 200 concurrent calls");
    assert_eq!(e.ok(&ctx, "len", json!({})).await, json!(200));
    for i in [0, 57, 199] {
        assert_eq!(
            e.ok(&ctx, "get", json!({"key": format!("k{i}")})).await,
            json!(format!("v{i}"))
        );
    }
    let meta = e
        .store
        .snapshot()
        .unwrap()
        .context_meta(&ctx)
        .unwrap()
        .unwrap();
    assert_eq!(meta.delta_count, 201);
    // Each call reports the root right after its own delta.
    assert_eq!(roots.len(), 200);
    // Calls were linearised: one head.
    assert_eq!(e.store.snapshot().unwrap().heads(&ctx).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sees_the_writes_of_the_batch_still_committing() {
    // Batches overlap (one executes while the one before it syncs), so a
    // read-modify-write must see the previous batch's uncommitted writes:
    // every `get_or_insert` of one key returns the value of the first.
    // More calls than one batch takes (512) so that, however the calls
    // arrive, they span several batches.
    let e = std::sync::Arc::new(engine(8));
    let app = e.install(mero_fixtures::KV_STORE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..1100 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            e.ok(
                &ctx,
                "get_or_insert",
                json!({"key": "k", "value": format!("v{i}")}),
            )
            .await
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    let commits = e.commits();
    assert!(
        commits > 2,
        "the calls should span several batches ({commits})"
    );
    assert_eq!(e.ok(&ctx, "len", json!({})).await, json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_concurrent_calls_than_pooled_instances_all_run() {
    // A finished call's instance goes back to the pool after its caller is
    // answered; the next call must still never find the pool empty.
    let e = std::sync::Arc::new(engine_with_instances(8, 2));
    let app = e.install(mero_fixtures::KV_STORE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    e.ok(&ctx, "set", json!({"key": "k", "value": "v"})).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            if i % 8 == 0 {
                e.call(&ctx, "set", json!({"key": format!("k{i}"), "value": "w"}))
                    .await
                    .map(|_| ())
            } else {
                let out = e.call(&ctx, "get", json!({"key": "k"})).await?;
                assert_eq!(out.output, json!("v"));
                Ok(())
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(e.ok(&ctx, "len", json!({})).await, json!(9));
}

#[tokio::test]
async fn the_executor_says_when_and_why_it_ended() {
    let e = engine(1);
    // Running: nothing to say yet.
    let early = tokio::time::timeout(std::time::Duration::from_millis(50), e.exec.ended()).await;
    assert!(early.is_err(), "ended while running: {early:?}");
    e.exec.shutdown().await.unwrap();
    assert_eq!(e.exec.ended().await, "it was stopped");
    // Every later call fails, and `ended` keeps answering.
    assert!(matches!(e.exec.shutdown().await, Err(ExecError::Stopped)));
    assert_eq!(e.exec.ended().await, "it was stopped");
}

/// The most bytes one batch of `e`'s executor took in so far.
fn largest_batch_bytes(e: &Engine) -> usize {
    e.exec
        .stats()
        .largest_batch_bytes
        .load(std::sync::atomic::Ordering::Relaxed) as usize
}

/// Large writes sent at once are committed in several batches, each
/// taking in at most one call's worth past the byte cap, rather than all
/// in one that holds every value several times over until it commits.
#[tokio::test]
async fn a_batch_takes_in_a_bounded_number_of_bytes() {
    const VALUE: usize = 6 << 20;
    let e = engine(11);
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let value = "x".repeat(VALUE);
    let calls =
        (0..8).map(|i| e.call(&ctx, "set", json!({"key": format!("k{i}"), "value": value})));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let largest = largest_batch_bytes(&e);
    assert!(largest > VALUE, "{largest}");
    // A call's arguments and what it wrote both count: the last call in
    // may take the batch past the cap by both.
    assert!(
        largest <= (32 << 20) + 2 * VALUE + 4096,
        "a batch took in {largest} bytes"
    );
    assert_eq!(e.ok(&ctx, "get", json!({"key": "k7"})).await, json!(value));
}

/// What calls write counts against the byte cap too: calls with tiny
/// arguments that each store a large value (the review's `big_value`) are
/// committed in several batches as well.
#[tokio::test]
async fn what_calls_write_counts_against_the_batch_byte_cap() {
    const VALUE: usize = 6 << 20;
    let e = engine(12);
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let calls = (0..8).map(|_| e.call(&ctx, "big_value", json!({"bytes": VALUE})));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let largest = largest_batch_bytes(&e);
    assert!(largest > VALUE, "{largest}");
    assert!(
        largest <= (32 << 20) + VALUE + 4096,
        "a batch took in {largest} bytes"
    );
}
