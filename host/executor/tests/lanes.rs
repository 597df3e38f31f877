//! A context whose calls run long gets a lane of its own (the executor's
//! `lane` module). In a test binary of its own: the spinning call keeps a
//! core busy, and other tests beside it would slow the calls it measures.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::time::Duration;

use mero_runtime::{CallError, RuntimeConfig};
use mero_testkit::engine::{call_err, engine_with_runtime};
use serde_json::json;

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
    // A fast call brought the spinner back to the worker: it batches with
    // the others again.
    e.ok(&spinner, "set", json!({"key": "k", "value": "v"}))
        .await;
}
