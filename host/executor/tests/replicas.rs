//! Several in-process replicas of kv-store exchange deltas in shuffled order
//! and converge; a node restarts with its state and compiled components; a
//! different component runs against existing state in a buffer that can be
//! dropped or committed.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::collections::HashSet;

use mero_crdt::{Clock, ContextId, DeltaId, SignedDelta};
use mero_executor::{Applied, ExecError, Executor, MAX_HANDLERS_PER_DELTA};
use mero_runtime::{CallEnv, PrivateOverlay};
use mero_testkit::engine::{Engine, engine, engine_at};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Makes `ctx` (with its genesis delta) known on `to`, as joining would.
async fn join(from: &Engine, to: &Engine, ctx: &ContextId) {
    let snap = from.store.snapshot().unwrap();
    let meta = snap.context_meta(ctx).unwrap().unwrap();
    let blob = snap.blob(&meta.blob).unwrap().unwrap();
    let mut w = to.store.write().unwrap();
    w.put_blob(&meta.blob, &blob).unwrap();
    w.put_context_meta(&mero_store::ContextMeta {
        delta_count: 0,
        ..meta
    })
    .unwrap();
    w.commit().unwrap();
    let genesis = snap.heads(ctx).unwrap();
    assert_eq!(genesis.len(), 1);
    let d = snap.delta(ctx, &genesis[0]).unwrap().unwrap();
    assert!(matches!(
        to.exec.apply_delta(d).await.unwrap(),
        Applied::Merged { .. }
    ));
}

/// Delivers `deltas` in the given order, holding back any whose parents
/// have not arrived, as a receiving node does.
async fn deliver(to: &Engine, deltas: Vec<SignedDelta>) {
    let mut waiting = deltas;
    while !waiting.is_empty() {
        let mut still = Vec::new();
        let before = waiting.len();
        for d in waiting {
            match to.exec.apply_delta(d.clone()).await.unwrap() {
                Applied::Merged { .. } | Applied::Duplicate => {}
                Applied::MissingParents(_) => still.push(d),
            }
        }
        assert!(still.len() < before, "no progress: parents never arrive");
        waiting = still;
    }
}

/// `e`'s DAG heads of `ctx`.
fn heads_of(e: &Engine, ctx: &ContextId) -> HashSet<DeltaId> {
    e.store
        .snapshot()
        .unwrap()
        .heads(ctx)
        .unwrap()
        .into_iter()
        .collect()
}

fn all_deltas(e: &Engine, ctx: &ContextId, ids: &[DeltaId]) -> Vec<SignedDelta> {
    let snap = e.store.snapshot().unwrap();
    ids.iter()
        .map(|id| snap.delta(ctx, id).unwrap().unwrap())
        .collect()
}

#[tokio::test]
async fn three_replicas_converge_whatever_the_delivery_order() {
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let replicas = [engine(21), engine(22), engine(23)];
        let app = replicas[0].install(mero_fixtures::KV_STORE).await;
        let ctx = replicas[0].create(app, 1, "").await.unwrap();
        for r in &replicas[1..] {
            join(&replicas[0], r, &ctx).await;
        }
        // Concurrent writes on overlapping keys, including removes.
        let mut produced: Vec<Vec<DeltaId>> = vec![Vec::new(); 3];
        // What each replica holds, its own and received.
        let mut has: Vec<Vec<DeltaId>> = vec![Vec::new(); 3];
        for round in 0..40 {
            let who = rng.random_range(0..3);
            let key = format!("k{}", rng.random_range(0..8));
            let out = if rng.random_bool(0.2) {
                replicas[who]
                    .call(&ctx, "remove", json!({"key": key}))
                    .await
                    .unwrap()
            } else {
                replicas[who]
                    .call(
                        &ctx,
                        "set",
                        json!({"key": key, "value": format!("{who}-{round}")}),
                    )
                    .await
                    .unwrap()
            };
            produced[who].extend(out.delta);
            has[who].extend(out.delta);
            // Sometimes one replica hears from another mid-way.
            if rng.random_bool(0.15) {
                let (a, b) = (rng.random_range(0..3), rng.random_range(0..3));
                if a != b {
                    let ds = all_deltas(&replicas[a], &ctx, &has[a]);
                    deliver(&replicas[b], ds).await;
                    let got = has[a].clone();
                    has[b].extend(got);
                }
            }
        }
        // Everyone hears everything, shuffled, with duplicates.
        for (i, r) in replicas.iter().enumerate() {
            let mut ds = Vec::new();
            for (j, other) in replicas.iter().enumerate() {
                if i != j {
                    ds.extend(all_deltas(other, &ctx, &produced[j]));
                }
            }
            let dup: Vec<SignedDelta> = ds
                .iter()
                .filter(|_| rng.random_bool(0.3))
                .cloned()
                .collect();
            ds.extend(dup);
            ds.shuffle(&mut rng);
            deliver(r, ds).await;
        }
        let root = replicas[0].root(&ctx);
        let entries = replicas[0].ok(&ctx, "entries", json!({})).await;
        let heads = heads_of(&replicas[0], &ctx);
        for r in &replicas[1..] {
            assert_eq!(r.root(&ctx), root, "seed {seed}");
            assert_eq!(
                r.ok(&ctx, "entries", json!({})).await,
                entries,
                "seed {seed}"
            );
            assert_eq!(heads_of(r, &ctx), heads);
        }
        // Writing after the merge builds on every head.
        let out = replicas[1]
            .call(&ctx, "set", json!({"key": "after", "value": "1"}))
            .await
            .unwrap();
        let d = all_deltas(
            &replicas[1],
            &ctx,
            &out.delta.into_iter().collect::<Vec<_>>(),
        );
        assert_eq!(
            d[0].delta.parents.iter().copied().collect::<HashSet<_>>(),
            heads
        );
    }
}

#[tokio::test]
async fn forged_and_tampered_deltas_are_rejected() {
    let a = engine(31);
    let b = engine(32);
    let app = a.install(mero_fixtures::KV_STORE).await;
    let ctx = a.create(app, 1, "").await.unwrap();
    join(&a, &b, &ctx).await;
    let out = a
        .call(&ctx, "set", json!({"key": "x", "value": "1"}))
        .await
        .unwrap();
    let good = all_deltas(&a, &ctx, &[out.delta.unwrap()]).remove(0);
    let root = b.root(&ctx);

    let mut tampered = good.clone();
    tampered.delta.events.clear();
    assert!(matches!(
        b.exec.apply_delta(tampered).await,
        Err(ExecError::Rejected(_))
    ));
    let forged = SignedDelta::sign(
        good.delta.clone(),
        &ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
    );
    assert!(matches!(
        b.exec.apply_delta(forged).await,
        Err(ExecError::Rejected(_))
    ));
    let mut future = good.delta.clone();
    future.hlc.millis += 3_600_000;
    let future = SignedDelta::sign(future, &ed25519_dalek::SigningKey::from_bytes(&[31; 32]));
    assert!(
        matches!(b.exec.apply_delta(future).await, Err(ExecError::Rejected(m)) if m.contains("ahead"))
    );
    let mut orphan = good.delta.clone();
    orphan.parents = vec![DeltaId([7; 32])];
    let orphan = SignedDelta::sign(orphan, &ed25519_dalek::SigningKey::from_bytes(&[31; 32]));
    assert_eq!(
        b.exec.apply_delta(orphan).await.unwrap(),
        Applied::MissingParents(vec![DeltaId([7; 32])])
    );
    assert_eq!(b.root(&ctx), root);

    assert!(matches!(
        b.exec.apply_delta(good.clone()).await.unwrap(),
        Applied::Merged { .. }
    ));
    assert_eq!(b.exec.apply_delta(good).await.unwrap(), Applied::Duplicate);
    assert_eq!(b.root(&ctx), a.root(&ctx));
}

/// Deltas refused for good are recorded only if their authors signed them
/// within the drift allowed: a forged or far-future body kept would go out
/// in this node's snapshots, and every joiner would refuse those.
#[tokio::test]
async fn only_signed_deltas_within_the_drift_are_recorded_as_refused() {
    let a = engine(33);
    let b = engine(34);
    let app = a.install(mero_fixtures::KV_STORE).await;
    let ctx = a.create(app, 1, "").await.unwrap();
    join(&a, &b, &ctx).await;
    let out = a
        .call(&ctx, "set", json!({"key": "x", "value": "1"}))
        .await
        .unwrap();
    let good = all_deltas(&a, &ctx, &[out.delta.unwrap()]).remove(0);
    let forged = SignedDelta::sign(
        good.delta.clone(),
        &ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
    );
    let mut future = good.delta.clone();
    future.hlc.millis += 3_600_000;
    let future = SignedDelta::sign(future, &ed25519_dalek::SigningKey::from_bytes(&[33; 32]));
    let root = b.root(&ctx);

    let recorded = b
        .exec
        .record_refused(ctx, vec![forged, future.clone(), good.clone()])
        .await
        .unwrap();
    assert_eq!(recorded, vec![good.delta.id()]);
    let kept: Vec<DeltaId> = b
        .exec
        .snapshot_of(&ctx)
        .unwrap()
        .refused
        .iter()
        .map(|d| d.delta.id())
        .collect();
    assert_eq!(kept, vec![good.delta.id()]);
    let store = b.store.snapshot().unwrap();
    assert!(store.has_delta(&ctx, &good.delta.id()).unwrap());
    assert!(!store.has_delta(&ctx, &future.delta.id()).unwrap());
    assert_eq!(b.root(&ctx), root, "a refused delta changes nothing");
}

#[test]
fn a_restarted_node_keeps_its_state_and_compiled_components() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, root) = {
        // Dropping the tokio runtime ends the executor and closes LMDB.
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let e = engine_at(dir.path(), 41);
            let app = e.install(mero_fixtures::KV_STORE).await;
            let ctx = e.create(app, 1, "").await.unwrap();
            for i in 0..20 {
                e.ok(&ctx, "set", json!({"key": format!("k{i}"), "value": "v"}))
                    .await;
            }
            assert_eq!(
                std::fs::read_dir(dir.path().join("compiled"))
                    .unwrap()
                    .count(),
                1
            );
            (ctx, e.root(&ctx))
        })
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let e = engine_at(dir.path(), 41);
        assert_eq!(e.root(&ctx), root);
        assert_eq!(e.ok(&ctx, "len", json!({})).await, json!(20));
        e.ok(&ctx, "set", json!({"key": "after-restart", "value": "v"}))
            .await;
        assert_eq!(e.ok(&ctx, "len", json!({})).await, json!(21));
        // The artifact was reused, not recompiled next to it.
        assert_eq!(
            std::fs::read_dir(dir.path().join("compiled"))
                .unwrap()
                .count(),
            1
        );
    });
}

#[tokio::test]
async fn another_component_runs_on_existing_state_in_a_buffer() {
    let e = engine(51);
    let kv = e.install(mero_fixtures::KV_STORE).await;
    let ctx = e.create(kv, 1, "").await.unwrap();
    e.ok(&ctx, "set", json!({"key": "a", "value": "1"})).await;
    let root = e.root(&ctx);

    let other = e
        .runtime
        .load(&std::fs::read(mero_fixtures::MISBEHAVE).unwrap())
        .await
        .unwrap();
    let snap = e.store.snapshot().unwrap();
    let env = CallEnv::new(
        ctx,
        e.exec.author(),
        "2.0.0".into(),
        mero_runtime::state_over(snap.context(ctx)),
        PrivateOverlay::new(snap.clone(), ctx),
        Clock::default(),
    );
    let (env, r) = e
        .runtime
        .call(
            &other,
            env,
            "set",
            json!({"key": "b", "value": "2"}).to_string(),
        )
        .await;
    r.unwrap();
    assert!(!env.ops.is_empty());
    // The buffer holds the writes; the store does not.
    assert_eq!(e.root(&ctx), root);
    let (env, r) = e
        .runtime
        .call(&other, env, "get", json!({"key": "b"}).to_string())
        .await;
    assert_eq!(r.unwrap(), json!("2"));
    // Dropping the buffer is the rollback. Committing its ops applies them.
    let mut w = e.store.write().unwrap();
    let new_root = mero_crdt::apply_ops(&mut w.context_state(ctx), &env.ops).unwrap();
    w.commit().unwrap();
    assert_ne!(new_root, root);
    assert_eq!(e.root(&ctx), new_root);
    assert_eq!(e.ok(&ctx, "get", json!({"key": "a"})).await, json!("1"));
}

/// Two replicas of a task board, `b` joined to `a`'s.
async fn task_board_pair() -> (Engine, Engine, ContextId) {
    let (a, b) = (engine(31), engine(32));
    let app = a.install(mero_fixtures::TASK_BOARD).await;
    b.install(mero_fixtures::TASK_BOARD).await;
    let ctx = a.create(app, 5, r#"{"title":"t"}"#).await.unwrap();
    join(&a, &b, &ctx).await;
    (a, b, ctx)
}

/// `a` adds task t1 (its delta carries a `TaskAdded` event).
async fn add_task(a: &Engine, ctx: &ContextId) -> mero_executor::CallOutcome {
    a.call(
        ctx,
        "add_task",
        json!({"id": "t1", "title": "x", "column": "todo"}),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_merged_deltas_handlers_are_stored_with_it_and_never_the_authors() {
    let (a, b, ctx) = task_board_pair().await;
    let added = add_task(&a, &ctx).await;
    let labelled = a
        .call(&ctx, "add_label", json!({"label": "l"}))
        .await
        .unwrap();
    // The author records nothing for its own events.
    assert!(
        a.store
            .snapshot()
            .unwrap()
            .pending_handlers(10)
            .unwrap()
            .is_empty()
    );
    let ids = [added.delta.unwrap(), labelled.delta.unwrap()];
    deliver(&b, all_deltas(&a, &ctx, &ids)).await;
    // The receiver has the TaskAdded handler to run, committed with the
    // delta; the label's delta has no event, so nothing for it.
    let pending = b.store.snapshot().unwrap().pending_handlers(10).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].method, "on_task_added");
    assert_eq!(pending[0].delta, ids[0].0);
    let args: serde_json::Value = serde_json::from_slice(&pending[0].data).unwrap();
    assert_eq!(args, json!({"id": "t1", "column": "todo"}));
    // Running it and forgetting it.
    b.ok(&ctx, &pending[0].method, args).await;
    let mut w = b.store.write().unwrap();
    assert!(w.delete_handler(&pending[0]).unwrap());
    w.commit().unwrap();
    assert!(
        b.store
            .snapshot()
            .unwrap()
            .pending_handlers(10)
            .unwrap()
            .is_empty()
    );
    let acks = b.ok(&ctx, "acknowledgements", json!({})).await;
    assert_eq!(acks.as_array().unwrap().len(), 1);
    assert_eq!(mero_runtime::handler_name("TaskAdded"), "on_task_added");
}

/// A member's delta with far more events than a call may emit queues
/// handlers for the first [`MAX_HANDLERS_PER_DELTA`] only: each run may
/// take up to the call deadline on every receiver.
#[tokio::test]
async fn a_delta_queues_a_bounded_number_of_handlers() {
    let (a, b, ctx) = task_board_pair().await;
    let added = add_task(&a, &ctx).await;
    let mut many = all_deltas(&a, &ctx, &[added.delta.unwrap()])
        .remove(0)
        .delta;
    assert_eq!(many.events.len(), 1);
    many.events = vec![many.events[0].clone(); MAX_HANDLERS_PER_DELTA * 3];
    let many = SignedDelta::sign(many, &ed25519_dalek::SigningKey::from_bytes(&[31; 32]));
    assert!(matches!(
        b.exec.apply_delta(many).await.unwrap(),
        Applied::Merged { .. }
    ));
    let pending = b
        .store
        .snapshot()
        .unwrap()
        .pending_handlers(usize::MAX)
        .unwrap();
    assert_eq!(pending.len(), MAX_HANDLERS_PER_DELTA);
    assert!(pending.iter().all(|h| h.method == "on_task_added"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_signed_together_each_verify_and_replicate() {
    // Concurrent calls commit in batches, and a batch's deltas share one
    // signature: each must still verify on its own, wherever it travels.
    let a = std::sync::Arc::new(engine(41));
    let b = engine(42);
    let app = a.install(mero_fixtures::KV_STORE).await;
    let ctx = a.create(app, 1, "").await.unwrap();
    join(&a, &b, &ctx).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            a.call(&ctx, "set", json!({"key": format!("k{i}"), "value": "v"}))
                .await
                .unwrap()
                .delta
                .unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let mut deltas = all_deltas(&a, &ctx, &ids);
    for d in &deltas {
        assert!(d.verify().is_ok(), "{:?}", d.proof);
    }
    let signatures: HashSet<[u8; 64]> = deltas.iter().map(|d| d.signature).collect();
    assert!(
        signatures.len() < deltas.len() && deltas.iter().any(|d| d.proof.size > 1),
        "64 concurrent calls should have been signed in batches"
    );

    // A delta with a batch-mate's proof is refused, and changes nothing.
    let shared = deltas.iter().position(|d| d.proof.size > 1).unwrap();
    let mate = deltas
        .iter()
        .position(|d| d.signature == deltas[shared].signature && d.proof != deltas[shared].proof)
        .unwrap();
    let mut moved = deltas[shared].clone();
    moved.proof = deltas[mate].proof.clone();
    let root = b.root(&ctx);
    assert!(matches!(
        b.exec.apply_delta(moved).await,
        Err(ExecError::Rejected(_))
    ));
    assert_eq!(b.root(&ctx), root);

    deltas.shuffle(&mut StdRng::seed_from_u64(7));
    deliver(&b, deltas).await;
    assert_eq!(b.root(&ctx), a.root(&ctx));
}

/// A replica's own snapshot joins another and gives the same root; one
/// with a far-future stamp, a wrong root or a head it does not hold is
/// refused before anything of it is joined.
#[tokio::test]
async fn a_snapshot_is_checked_before_it_is_joined() {
    let a = engine(31);
    let b = engine(32);
    let app = a.install(mero_fixtures::KV_STORE).await;
    let ctx = a.create(app, 1, "").await.unwrap();
    join(&a, &b, &ctx).await;
    a.ok(&ctx, "set", json!({"key": "k", "value": "v"})).await;
    let before = b.root(&ctx);
    let good = a.exec.snapshot_of(&ctx).unwrap();

    let mut far = good.clone();
    for op in &mut far.ops {
        if let mero_crdt::Entry::Register(r) = &mut op.entry {
            r.stamp.hlc.millis += 24 * 3600 * 1000;
        }
    }
    far.root_hash =
        mero_crdt::apply_ops(&mut mero_crdt::MemoryBackend::default(), &far.ops).unwrap();
    let mut wrong_root = good.clone();
    wrong_root.root_hash = [7; 32];
    let mut stray_head = good.clone();
    stray_head.heads.push(DeltaId([7; 32]));
    for forged in [far, wrong_root, stray_head] {
        let err = Executor::check_snapshot(forged).unwrap_err();
        assert!(
            matches!(&err, ExecError::Rejected(m) if m.contains("malformed snapshot")),
            "{err:?}"
        );
        assert_eq!(b.root(&ctx), before, "nothing of a refused snapshot stays");
    }
    let good = Executor::check_snapshot(good).unwrap();
    assert_eq!(b.exec.join_snapshot(ctx, good).await.unwrap(), a.root(&ctx));
    assert_eq!(b.ok(&ctx, "get", json!({"key": "k"})).await, json!("v"));
}
