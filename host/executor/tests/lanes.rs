//! A context whose calls run long gets a lane of its own (the executor's
//! `lane` module). In a test binary of its own: the spinning call keeps a
//! core busy, and other tests beside it would slow the calls it measures.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::sync::atomic::Ordering;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mero_crdt::ContextId;
use mero_executor::{ExecError, Executor, NewContext};
use mero_runtime::{CallError, RuntimeConfig};
use mero_testkit::engine::{Host, Limits, call_err, engine_with_runtime};
use mero_testkit::gate::{Gate, GateControl};
use mero_testkit::wait_until;
use serde_json::json;

/// How long the test waits for anything before failing.
const WAIT: Duration = Duration::from_secs(30);

/// A context whose call ran long gets a lane of its own: while its next
/// call spins to the deadline, another context's calls commit, and its
/// own calls made meanwhile wait for it and then run in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_context_whose_calls_run_long_does_not_hold_up_the_others() {
    // A deadline long enough that the other context's calls end well
    // within one spin even on a loaded machine (the spin keeps a core).
    let e = engine_with_runtime(9, |r| RuntimeConfig {
        call_timeout: Duration::from_secs(6),
        ..r
    });
    let app = e.install(mero_fixtures::MISBEHAVE).await;
    let spinner = e.create(app, 1, "").await.unwrap();
    let other = e.create(app, 2, "").await.unwrap();
    // The first long call holds the worker once, and moves its context.
    let err = call_err(e.call(&spinner, "spin", json!({})).await);
    assert!(matches!(err, CallError::DeadlineExceeded(_)), "{err:?}");

    let spin = e.call(&spinner, "spin", json!({}));
    tokio::pin!(spin);
    let others = async {
        for i in 0..5 {
            e.ok(&other, "set", json!({"key": format!("k{i}"), "value": "v"}))
                .await;
        }
    };
    tokio::select! {
        biased;
        () = others => {}
        r = &mut spin => panic!("the spin ended before the other context's calls: {r:?}"),
    }
    // The spinner's own write, sent while it spins, waits for it.
    let own = e.call(&spinner, "set", json!({"key": "after", "value": "spin"}));
    tokio::pin!(own);
    tokio::select! {
        biased;
        r = &mut spin => {
            let err = call_err(r);
            assert!(matches!(err, CallError::DeadlineExceeded(_)), "{err:?}");
        }
        r = &mut own => panic!("a call ran on the spinning context beside its call: {r:?}"),
    }
    own.await.unwrap();
    assert_eq!(
        e.ok(&spinner, "get", json!({"key": "after"})).await,
        json!("spin")
    );
    // Nothing of the spins stayed; the other context has its keys.
    assert_eq!(e.ok(&other, "get", json!({"key": "k4"})).await, json!("v"));
    // Fast calls do not bring the spinner back to the worker at once: a
    // spin right after one still runs on its lane, beside the others.
    e.ok(&spinner, "set", json!({"key": "k", "value": "v"}))
        .await;
    let spin = e.call(&spinner, "spin", json!({}));
    tokio::pin!(spin);
    let others = async {
        for i in 5..10 {
            e.ok(&other, "set", json!({"key": format!("k{i}"), "value": "v"}))
                .await;
        }
    };
    tokio::select! {
        biased;
        () = others => {}
        r = &mut spin => panic!("a spin after a fast call held up the other context: {r:?}"),
    }
    let err = call_err(spin.await);
    assert!(matches!(err, CallError::DeadlineExceeded(_)), "{err:?}");
}

/// The race a CI run hit: a long call of a context whose earlier (failed,
/// long) call is still committing must not run on the worker. It waits
/// for that commit, then takes a lane, and the other context's calls
/// commit while it spins. A gate on the commits makes the batches form
/// the same way every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_call_made_while_its_context_commits_waits_for_the_commit_then_takes_a_lane() {
    let tmp = tempfile::tempdir().unwrap();
    let runtime = RuntimeConfig {
        call_timeout: Duration::from_secs(4),
        ..Limits::Test.runtime(tmp.path())
    };
    let host = Host::open(tmp.path(), runtime, &Limits::Test.store());
    let app = host.install(mero_fixtures::MISBEHAVE).await;
    let (
        gate,
        GateControl {
            mut entered,
            verdict,
        },
    ) = Gate::new();
    let exec = Executor::spawn_with_commit_fault(
        host.runtime.clone(),
        host.store.clone(),
        SigningKey::from_bytes(&[4; 32]),
        gate.hook(),
    )
    .unwrap();
    let create = |n: u8| {
        exec.create_context(NewContext {
            id: ContextId([n; 32]),
            application: app,
            blob: app,
            app_version: "1.0.0".into(),
            group: None,
            name: None,
            init_args: String::new(),
        })
    };
    let spinner = create(1).await.unwrap().id;
    let other = create(2).await.unwrap().id;
    let call = |ctx: ContextId, method: &'static str, args: serde_json::Value| {
        let exec = exec.clone();
        tokio::spawn(async move { exec.call(&ctx, method, args.to_string()).await })
    };
    let taken = |n: u64| {
        let exec = exec.clone();
        move || exec.stats().jobs.load(Ordering::SeqCst) >= n
    };
    let set = |i: usize| json!({"key": format!("k{i}"), "value": "v"});

    // The first spin runs on the worker; a call of the other context
    // queues behind it, so the spin's batch commits pipelined, and is held.
    gate.arm(true);
    let jobs = exec.stats().jobs.load(Ordering::SeqCst);
    let first = call(spinner, "spin", json!({}));
    wait_until("the first spin taken", WAIT, taken(jobs + 1));
    let k0 = call(other, "set", set(0));
    wait_until("the other context's call queued", WAIT, || {
        exec.queued() == 1
    });
    let err = first.await.unwrap().unwrap_err();
    assert!(
        matches!(err, ExecError::Call(CallError::DeadlineExceeded(_))),
        "{err:?}"
    );
    let pipelined = tokio::time::timeout(WAIT, entered.recv()).await.unwrap();
    assert_eq!(pipelined, Some(true), "the spin's batch commits pipelined");

    // The next batch (the other context's call) builds on it; the second
    // spin arrives while the spinner's batch is still committing.
    wait_until("the other context's call taken", WAIT, taken(jobs + 2));
    let spin = call(spinner, "spin", json!({}));
    wait_until("the second spin taken", WAIT, taken(jobs + 3));
    gate.arm(false);
    verdict.send(Ok(())).unwrap();

    // The second spin runs on a lane: the other context's calls commit
    // while it spins.
    k0.await.unwrap().unwrap();
    for i in 1..5 {
        assert!(
            !spin.is_finished(),
            "the spin ended before call {i} of the other context"
        );
        exec.call(&other, "set", set(i).to_string()).await.unwrap();
    }
    assert!(
        !spin.is_finished(),
        "the spin ended before the other context's calls"
    );
    let err = spin.await.unwrap().unwrap_err();
    assert!(
        matches!(err, ExecError::Call(CallError::DeadlineExceeded(_))),
        "{err:?}"
    );
}
