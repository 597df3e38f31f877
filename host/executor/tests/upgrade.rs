//! Upgrades through the executor: a migration's writes commit whole; a dry
//! run and a failing check leave nothing; a job on the context queued
//! right behind a migration runs after it has committed, on its result; a
//! migration run again in memory gives the root it committed.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use mero_crdt::collections::Mutator;
use mero_crdt::overlay::Overlay;
use mero_crdt::{Author, Clock, ContextId, Delta, Hlc, NodeId, SignedDelta};
use mero_executor::{ExecError, Upgrade};
use mero_runtime::{App, Runtime, RuntimeConfig};
use mero_testkit::engine::{Engine, engine};
use serde_json::json;

async fn upgrade_to(e: &Engine, path: &str) -> impl Fn(bool) -> Upgrade {
    let bytes = std::fs::read(path).unwrap();
    e.install_bytes(&bytes, path).await;
    let runtime =
        Runtime::new(RuntimeConfig::default().deterministic(mero_runtime::DEFAULT_MIGRATION_FUEL))
            .unwrap();
    let app: Arc<App> = runtime.load(&bytes).await.unwrap();
    move |dry_run| Upgrade {
        application: app.hash(),
        app: app.clone(),
        runtime: runtime.clone(),
        app_version: "2.0.0".into(),
        migrate_from: Some(1),
        author: Author([7; 32]),
        barrier: Hlc {
            millis: mero_crdt::hlc::wall_millis(),
            counter: 0,
        },
        dry_run,
        cut: None,
    }
}

/// A delta of another member putting `key` -> `value` in the map `field`,
/// over the context as it is now.
fn remote_put(e: &Engine, ctx: ContextId, field: &str, key: &str, value: &str) -> SignedDelta {
    let signer = SigningKey::from_bytes(&[9; 32]);
    let author = Author(signer.verifying_key().to_bytes());
    let snap = e.store.snapshot().unwrap();
    let mut overlay = Overlay::new(snap.context(ctx));
    let mut ops = Vec::new();
    let mut clock = Clock::default();
    let now = mero_crdt::hlc::wall_millis();
    Mutator::new(&mut overlay, author, &mut clock, now, &mut ops)
        .put_register(
            &NodeId::root(field),
            key.as_bytes(),
            value.as_bytes().to_vec(),
        )
        .unwrap();
    let delta = Delta {
        version: 1,
        context: ctx,
        author,
        parents: snap.heads(&ctx).unwrap(),
        governance: Vec::new(),
        layout: 2,
        hlc: clock.tick(now),
        ops,
        events: vec![],
    };
    SignedDelta::sign(delta, &signer)
}

#[tokio::test]
async fn a_migration_commits_whole_and_a_delta_queued_behind_it_lands_on_it() {
    let e = engine(1);
    let v1 = e
        .install(mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1)
        .await;
    let ctx = e.create(v1, 1, "").await.unwrap();
    for item in ["b", "a", "a", "c"] {
        e.ok(&ctx, "record", json!({"item": item})).await;
    }
    let upgrade = upgrade_to(&e, mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2).await;

    let before = e.root(&ctx);
    let dry = e.exec.upgrade(&ctx, upgrade(true)).await.unwrap();
    assert!(dry.writes > 0);
    assert_eq!(e.root(&ctx), before, "a dry run commits nothing");

    // Sent together behind calls on another context, so that they share a
    // batch, whichever comes first.
    let other = e.create(v1, 2, "").await.unwrap();
    let remote = remote_put(&e, ctx, "per_item", "z", "9");
    let busy = |item: &'static str| e.call(&other, "record", json!({"item": item}));
    let (a, b, done, applied) = tokio::join!(
        busy("x"),
        busy("y"),
        e.exec.upgrade(&ctx, upgrade(false)),
        e.exec.apply_delta(remote)
    );
    a.unwrap();
    b.unwrap();
    let done = done.unwrap();
    applied.unwrap();
    assert_eq!(done.writes, dry.writes);
    assert_eq!(e.ok(&ctx, "get_total", json!({})).await, json!(4));
    assert_eq!(
        e.ok(&ctx, "schema_info", json!({})).await["item_keys"],
        json!(["a", "b", "c", "z"])
    );
    assert_eq!(
        e.ok(&ctx, "get_item_count", json!({"item": "z"})).await,
        json!(9)
    );
    assert_eq!(
        e.ok(&ctx, "get_item_count", json!({"item": "a"})).await,
        json!(2)
    );
    // The migration reported the root it committed, unless the delta came
    // after it in the same commit.
    assert!(done.root_hash != before);
}

#[tokio::test]
async fn a_failing_check_leaves_the_context_as_it_was() {
    let e = engine(1);
    let v1 = e
        .install(mero_fixtures::SCENARIO_MIGRATION_CHECK_FAIL_V1)
        .await;
    let ctx = e.create(v1, 1, "").await.unwrap();
    for key in ["alpha", "bravo"] {
        e.ok(&ctx, "set_item", json!({"key": key, "value": "v"}))
            .await;
    }
    let upgrade = upgrade_to(&e, mero_fixtures::SCENARIO_MIGRATION_CHECK_FAIL_V2).await;
    let before = e.root(&ctx);
    for dry_run in [true, false] {
        match e.exec.upgrade(&ctx, upgrade(dry_run)).await {
            Err(ExecError::Migration { stage: "check", .. }) => {}
            other => panic!("expected the check to fail, got {other:?}"),
        }
        assert_eq!(e.root(&ctx), before);
    }
    assert_eq!(e.ok(&ctx, "item_count", json!({})).await, json!(2));
    // The context still takes calls of its version, on the same state.
    e.ok(&ctx, "set_item", json!({"key": "charlie", "value": "v"}))
        .await;
    assert_eq!(e.ok(&ctx, "item_count", json!({})).await, json!(3));
}

#[tokio::test]
async fn a_context_deleted_right_behind_its_migration_keeps_nothing() {
    let e = engine(1);
    let v1 = e
        .install(mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1)
        .await;
    let ctx = e.create(v1, 1, "").await.unwrap();
    let other = e.create(v1, 2, "").await.unwrap();
    for item in ["b", "a"] {
        e.ok(&ctx, "record", json!({"item": item})).await;
    }
    let upgrade = upgrade_to(&e, mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2).await;
    // Behind calls on another context, so that both share a batch: the
    // deletion must not be committed before the migration's writes.
    let busy = |item: &'static str| e.call(&other, "record", json!({"item": item}));
    let (a, b, done, deleted) = tokio::join!(
        busy("x"),
        busy("y"),
        e.exec.upgrade(&ctx, upgrade(false)),
        e.exec.delete_context(ctx)
    );
    a.unwrap();
    b.unwrap();
    done.unwrap();
    assert!(deleted.unwrap());
    let snap = e.store.snapshot().unwrap();
    assert_eq!(snap.context_meta(&ctx).unwrap(), None);
    assert!(snap.entries_page(&ctx, None, 10).unwrap().is_empty());
}

#[tokio::test]
async fn a_migration_from_another_state_version_is_refused_and_changes_nothing() {
    let e = engine(1);
    let v1 = e
        .install(mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1)
        .await;
    let ctx = e.create(v1, 1, "").await.unwrap();
    e.ok(&ctx, "record", json!({"item": "a"})).await;
    let upgrade = upgrade_to(&e, mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2).await;
    let before = e.root(&ctx);
    // A rung further up the ladder: it reads state version 2, the context
    // is on 1.
    for dry_run in [true, false] {
        let skipped = Upgrade {
            migrate_from: Some(2),
            ..upgrade(dry_run)
        };
        match e.exec.upgrade(&ctx, skipped).await {
            Err(ExecError::Denied {
                kind: "OldStateMismatch",
                ..
            }) => {}
            other => panic!("expected OldStateMismatch, got {other:?}"),
        }
        assert_eq!(e.root(&ctx), before);
    }
    assert_eq!(
        e.ok(&ctx, "get_item_count", json!({"item": "a"})).await,
        json!(1)
    );
}

/// What the upgrade bench measures, small: a context filled through signed
/// deltas (`Engine::prefill`, written under the layout the context runs)
/// migrates every entry.
#[tokio::test]
async fn a_prefilled_context_migrates_every_entry() {
    let e = engine(1);
    let v1 = e
        .install(mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1)
        .await;
    let ctx = e.create(v1, 1, "").await.unwrap();
    e.prefill(ctx, "per_item_counts", 300, |i| (i % 7 + 1).to_string())
        .await;
    let upgrade = upgrade_to(&e, mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2).await;
    e.exec.upgrade(&ctx, upgrade(false)).await.unwrap();
    let total: usize = (0..300).map(|i| i % 7 + 1).sum();
    assert_eq!(e.ok(&ctx, "get_total", json!({})).await, json!(total));
    let probe = mero_testkit::engine::prefill_key(299);
    assert_eq!(
        e.ok(&ctx, "get_item_count", json!({"item": probe})).await,
        json!(299 % 7 + 1)
    );
}

/// A migration run again on a state held in memory (as a joiner proving a
/// snapshot that crossed it runs it) writes what the committed one wrote:
/// the state it gives has the root the upgrade committed; nothing is
/// stored meanwhile.
#[tokio::test]
async fn a_migration_run_again_in_memory_gives_the_root_it_committed() {
    let e = engine(1);
    let v1 = e
        .install(mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1)
        .await;
    let ctx = e.create(v1, 1, "").await.unwrap();
    for item in ["b", "a", "a", "c"] {
        e.ok(&ctx, "record", json!({"item": item})).await;
    }
    let upgrade = upgrade_to(&e, mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2).await;
    let committed = upgrade(false);
    let again = Upgrade {
        application: committed.application,
        app: committed.app.clone(),
        runtime: committed.runtime.clone(),
        app_version: committed.app_version.clone(),
        migrate_from: committed.migrate_from,
        author: committed.author,
        barrier: committed.barrier,
        dry_run: false,
        cut: None,
    };
    let before = e.root(&ctx);
    let entries = e.exec.snapshot_of(&ctx).unwrap().ops;
    let writes = e
        .exec
        .replay_migration(ctx, &entries, &again)
        .await
        .unwrap();
    assert!(!writes.is_empty());
    assert_eq!(e.root(&ctx), before, "nothing stored");
    let mut state = mero_crdt::MemoryBackend::default();
    mero_crdt::apply_ops(&mut state, &entries).unwrap();
    let replayed = mero_crdt::apply_ops(&mut state, &writes).unwrap();
    let done = e.exec.upgrade(&ctx, committed).await.unwrap();
    assert_eq!(replayed, done.root_hash);
    assert_eq!(e.root(&ctx), replayed);
}
