//! A commit that fails, with a batch already executing on top of it: the
//! calls of both fail, neither leaves a trace, and the executor goes on.
//! The failure is injected with the `fault-injection` hook, which holds each
//! commit until the test gives its verdict, so the batches form the same way
//! on every run.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::sync::atomic::Ordering;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use mero_executor::{CallOutcome, CommitFault, ExecError, Executor, NewContext};
use mero_testkit::engine::{Host, Limits};
use mero_testkit::gate::{Gate, GateControl};
use serde_json::json;

/// How long the test waits for anything before failing.
const WAIT: Duration = Duration::from_secs(30);

/// Asks `probe` every 10 ms until it holds; panics naming `what` after
/// [`WAIT`].
async fn wait_until(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !probe() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn spawn_call(
    exec: &Executor,
    ctx: ContextId,
    method: &'static str,
    args: serde_json::Value,
) -> tokio::task::JoinHandle<Result<CallOutcome, ExecError>> {
    let exec = exec.clone();
    tokio::spawn(async move { exec.call(&ctx, method, args.to_string()).await })
}

async fn view(exec: &Executor, ctx: &ContextId, method: &str, args: serde_json::Value) -> String {
    exec.call(ctx, method, args.to_string())
        .await
        .unwrap()
        .output
        .to_string()
}

// Four workers: the inline commit held by the gate blocks one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_built_on_one_whose_commit_fails_fails_too_and_leaves_nothing() {
    let host = Host::temp(Limits::Test);
    let app = host.install(mero_fixtures::KV_STORE).await;
    let (
        gate,
        GateControl {
            mut entered,
            verdict,
        },
    ) = Gate::new();
    let hook: CommitFault = gate.hook();
    let exec = Executor::spawn_with_commit_fault(
        host.runtime.clone(),
        host.store.clone(),
        SigningKey::from_bytes(&[3; 32]),
        hook,
    )
    .unwrap();
    let mut announced = exec.subscribe();
    let created = exec
        .create_context(NewContext {
            id: ContextId([1; 32]),
            application: app,
            blob: app,
            app_version: "1.0.0".into(),
            group: None,
            name: None,
            init_args: String::new(),
        })
        .await
        .unwrap();
    let ctx = created.id;
    let set = |key: &str| json!({"key": key, "value": format!("{key}-value")});
    gate.arm(true);

    // A lone call commits on the worker itself: held there, the worker
    // takes nothing meanwhile, so the next two calls queue up together.
    let first = spawn_call(&exec, ctx, "set", set("first"));
    let inline = tokio::time::timeout(WAIT, entered.recv()).await.unwrap();
    assert_eq!(inline, Some(false), "a lone call commits inline");
    let doomed1 = spawn_call(&exec, ctx, "set", set("doomed1"));
    let doomed2 = spawn_call(&exec, ctx, "set", set("doomed2"));
    wait_until("both calls queued", || exec.queued() == 2).await;
    verdict.send(Ok(())).unwrap();
    let first = first.await.unwrap().unwrap();

    // Both queued calls form one batch, which commits on the blocking pool
    // while the next batch executes on top of its writes.
    let batch = tokio::time::timeout(WAIT, entered.recv()).await.unwrap();
    assert_eq!(batch, Some(true), "a batch of two commits pipelined");
    let jobs = exec.stats().jobs.load(Ordering::SeqCst);
    // Reads `doomed1`, which only the batch still committing holds.
    let built_on = spawn_call(
        &exec,
        ctx,
        "get_or_insert",
        json!({"key": "doomed1", "value": "built-on"}),
    );
    wait_until("the next call taken into the next batch", || {
        exec.stats().jobs.load(Ordering::SeqCst) > jobs
    })
    .await;
    verdict
        .send(Err("injected: the disk is full".into()))
        .unwrap();
    gate.arm(false);

    for doomed in [doomed1, doomed2] {
        match doomed.await.unwrap() {
            Err(ExecError::Store(why)) => assert!(why.contains("injected"), "{why}"),
            other => panic!("a call of the failed batch: {other:?}"),
        }
    }
    match built_on.await.unwrap() {
        Err(ExecError::Store(why)) => {
            assert_eq!(why, "the batch it built on failed to commit")
        }
        other => panic!("the call built on the failed batch: {other:?}"),
    }

    // An independent call after them commits, on top of the last batch
    // that did.
    let after = exec
        .call(&ctx, "set", set("after").to_string())
        .await
        .unwrap();
    assert_eq!(
        view(&exec, &ctx, "get", json!({"key": "doomed1"})).await,
        "null"
    );
    assert_eq!(
        view(&exec, &ctx, "get", json!({"key": "doomed2"})).await,
        "null"
    );
    assert_eq!(
        view(&exec, &ctx, "get", json!({"key": "first"})).await,
        "\"first-value\""
    );
    assert_eq!(
        view(&exec, &ctx, "get", json!({"key": "after"})).await,
        "\"after-value\""
    );
    assert_eq!(view(&exec, &ctx, "len", json!({})).await, "2");
    let snapshot = host.store.snapshot().unwrap();
    assert_eq!(snapshot.heads(&ctx).unwrap(), vec![after.delta.unwrap()]);
    // Genesis, `first` and `after`.
    assert_eq!(snapshot.context_meta(&ctx).unwrap().unwrap().delta_count, 3);
    // Peers hear of the committed deltas only, in commit order: `after`
    // comes right after `first`, its parent.
    let mut ids = Vec::new();
    while ids.last() != after.delta.as_ref() {
        let c = tokio::time::timeout(WAIT, announced.recv())
            .await
            .unwrap()
            .unwrap();
        if c.id == after.delta.unwrap() {
            assert_eq!(c.delta.delta.parents, vec![first.delta.unwrap()]);
        }
        ids.push(c.id);
    }
    assert_eq!(
        ids,
        vec![created.delta, first.delta.unwrap(), after.delta.unwrap()]
    );
}

/// An executor whose task panics (here, inside an inline commit) says so:
/// the call in flight fails, and `ended` gives the panic's message, which
/// merod logs before it exits non-zero instead of refusing calls forever.
#[tokio::test]
async fn an_executor_that_panics_says_why_it_ended() {
    let host = Host::temp(Limits::Test);
    let app = host.install(mero_fixtures::KV_STORE).await;
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook: CommitFault = {
        let armed = armed.clone();
        std::sync::Arc::new(move |_| {
            if armed.load(Ordering::SeqCst) {
                panic!("the disk caught fire");
            }
            Ok(())
        })
    };
    let exec = Executor::spawn_with_commit_fault(
        host.runtime.clone(),
        host.store.clone(),
        SigningKey::from_bytes(&[3; 32]),
        hook,
    )
    .unwrap();
    let ctx = exec
        .create_context(NewContext {
            id: ContextId([1; 32]),
            application: app,
            blob: app,
            app_version: "1.0.0".into(),
            group: None,
            name: None,
            init_args: String::new(),
        })
        .await
        .unwrap()
        .id;
    assert!(exec.has_ended().is_none());
    armed.store(true, Ordering::SeqCst);
    let call = exec
        .call(&ctx, "set", json!({"key": "k", "value": "v"}).to_string())
        .await;
    assert!(call.is_err(), "{call:?}");
    let why = tokio::time::timeout(WAIT, exec.ended()).await.unwrap();
    assert!(
        why.contains("panicked") && why.contains("the disk caught fire"),
        "{why}"
    );
    // Writes go through the task that is gone.
    let again = exec
        .call(&ctx, "set", json!({"key": "k2", "value": "v"}).to_string())
        .await;
    assert!(matches!(again, Err(ExecError::Stopped)), "{again:?}");
}
