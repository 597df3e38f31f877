//! Each per-call budget and check on what a guest emits, over the real
//! hostile fixture: the call that breaks one fails with its own error and
//! leaves nothing, even when the app ignores the error it got; calls that
//! fail inside a batch of many are rolled back while their neighbours
//! commit.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::sync::Arc;

use mero_runtime::{CallError, RuntimeConfig};
use mero_testkit::engine::{call_err, engine, engine_with_runtime};
use serde_json::json;

#[tokio::test]
async fn a_refused_event_fails_its_call_though_the_app_ignores_the_error() {
    let e = engine(21);
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let root = e.root(&ctx);
    let big = format!("\"{}\"", "x".repeat(16 << 10)); // JSON, 16 KiB + 2
    for (kind, data, why) in [
        ("", "{}", "event kind must be"),
        (&*"K".repeat(101), "{}", "event kind must be"),
        ("Bad", "not json", "is not JSON"),
        ("Big", &*big, "bytes (max 16384)"),
    ] {
        let err = call_err(
            e.call(
                &ctx,
                "emit_raw",
                json!({"kind": kind, "data": data, "times": 1}),
            )
            .await,
        );
        assert!(
            matches!(&err, CallError::InvalidEvent(m) if m.contains(why)),
            "{kind:?}: {err:?}"
        );
        assert_eq!(err.kind(), "InvalidEvent");
    }
    // The write before the refused event did not land.
    assert_eq!(e.root(&ctx), root);
    assert_eq!(e.ok(&ctx, "get", json!({"key": "emit"})).await, json!(null));
    // The same call with a deliverable event succeeds and carries it.
    let out = e
        .call(
            &ctx,
            "emit_raw",
            json!({"kind": "Fine", "data": "{\"a\":1}", "times": 1}),
        )
        .await
        .unwrap();
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].kind, "Fine");
}

#[tokio::test]
async fn the_events_budget_fails_the_call_past_it() {
    let e = engine(22);
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let max = RuntimeConfig::default().max_events_per_call as u64;
    let out = e
        .call(
            &ctx,
            "emit_raw",
            json!({"kind": "E", "data": "{}", "times": max}),
        )
        .await
        .unwrap();
    assert_eq!(out.events.len() as u64, max);
    let root = e.root(&ctx);
    let err = call_err(
        e.call(
            &ctx,
            "emit_raw",
            json!({"kind": "E", "data": "{}", "times": max + 1}),
        )
        .await,
    );
    assert!(
        matches!(&err, CallError::LimitExceeded(m) if m.contains("events")),
        "{err:?}"
    );
    assert_eq!(e.root(&ctx), root);
}

#[tokio::test]
async fn the_bytes_budget_fails_the_call_past_it() {
    const BUDGET: usize = 64 << 10;
    let e = engine_with_runtime(23, |r| RuntimeConfig {
        max_bytes_written_per_call: BUDGET,
        ..r
    });
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    // Under the budget: written.
    e.ok(&ctx, "big_value", json!({"bytes": BUDGET / 2})).await;
    let root = e.root(&ctx);
    // Over it (and far under the per-value limit): refused, nothing lands.
    let err = call_err(
        e.call(&ctx, "big_value", json!({"bytes": BUDGET + 1}))
            .await,
    );
    assert!(
        matches!(&err, CallError::LimitExceeded(m) if m.contains("bytes written")),
        "{err:?}"
    );
    assert_eq!(e.root(&ctx), root);
    // The budget is per call: many calls together write far more.
    for i in 0..4 {
        e.ok(
            &ctx,
            "set",
            json!({"key": format!("k{i}"), "value": "x".repeat(BUDGET / 2)}),
        )
        .await;
    }
}

#[tokio::test]
async fn log_lines_are_capped_per_call_and_cut_to_their_size() {
    let e = engine(24);
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let max = RuntimeConfig::default().max_log_lines_per_call;
    let out = e
        .call(&ctx, "log_many", json!({"n": max + 50, "len": 10}))
        .await
        .unwrap();
    assert_eq!(out.logs.len(), max, "lines past the cap are dropped");
    let out = e
        .call(&ctx, "log_many", json!({"n": 1, "len": 40_000}))
        .await
        .unwrap();
    assert_eq!(out.logs.len(), 1);
    assert!(
        out.logs[0].len() <= (16 << 10) + 100,
        "a long line is cut: {} bytes",
        out.logs[0].len()
    );
    // The next call has its own allowance.
    let out = e
        .call(&ctx, "log_many", json!({"n": 3, "len": 10}))
        .await
        .unwrap();
    assert_eq!(out.logs.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_calls_inside_a_batch_roll_back_while_their_neighbours_commit() {
    // Calls arriving together share batches (one executes while the one
    // before it commits). A failing call writes `fail` (or `panic`) and
    // errs; a `copy` after it in the same batch reads that key, so it must
    // read nothing, and every copy must still commit.
    let e = Arc::new(engine(25));
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let ctx = e.create(app, 1, "").await.unwrap();
    let commits_before = e.commits();
    let mut tasks = Vec::new();
    const N: usize = 300;
    for i in 0..N {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => e
                    .call(&ctx, "fail", json!({}))
                    .await
                    .map(|_| panic!("fail succeeded")),
                1 => e
                    .call(&ctx, "panic", json!({"message": "mid-batch"}))
                    .await
                    .map(|_| panic!("panic succeeded")),
                _ => {
                    let from = if i % 2 == 0 { "fail" } else { "panic" };
                    let out = e
                        .call(&ctx, "copy", json!({"from": from, "to": format!("c{i}")}))
                        .await
                        .unwrap();
                    assert_eq!(
                        out.output,
                        json!(null),
                        "copy {i} saw a failed call's write"
                    );
                    Ok(())
                }
            }
        }));
    }
    let mut failed = 0;
    for t in tasks {
        if t.await.unwrap().is_err() {
            failed += 1;
        }
    }
    assert_eq!(failed, 2 * N / 3);
    let commits = e.commits() - commits_before;
    assert!(
        commits < (N / 3) as u64,
        "the copies should share batches: {commits} commits for {} copies",
        N / 3
    );
    for key in ["fail", "panic"] {
        assert_eq!(e.ok(&ctx, "get", json!({"key": key})).await, json!(null));
    }
    for i in (2..N).step_by(3) {
        assert_eq!(
            e.ok(&ctx, "get", json!({"key": format!("c{i}")})).await,
            json!(""),
            "c{i}"
        );
    }
}
