//! Runtime benchmark: loading a component, the phases of one call on
//! wasmtime, the durable commit of its delta and the crdt merge rate; prints
//! medians and p99s. No executor runs: the context is written directly.
//!
//! `cargo bench -p mero-runtime --bench runtime` (add `-- quick` for fewer
//! iterations). Figures depend on the machine and its load; compare ratios.
//! Calls through the executor are `cargo bench -p mero-executor --bench executor`.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a benchmark fails fast")]

use std::time::Instant;

use ed25519_dalek::SigningKey;
use mero_crdt::collections::Mutator;
use mero_crdt::overlay::Overlay;
use mero_crdt::{
    Author, Clock, ContextId, Delta, DeltaId, Hlc, MemoryBackend, NodeId, Op, SignedDelta,
    apply_ops,
};
use mero_runtime::{CallEnv, PrivateOverlay, Runtime};
use mero_store::{Store, StoreConfig};
use mero_testkit::bench::{self, Stats, time};
use mero_testkit::engine::{Host, Limits};

/// A delta of `ops` on `ctx` after `parents`, signed with `key`.
fn delta(
    ctx: ContextId,
    key: &SigningKey,
    parents: Vec<DeltaId>,
    millis: u64,
    ops: Vec<Op>,
) -> SignedDelta {
    SignedDelta::sign(
        Delta {
            version: 1,
            context: ctx,
            author: Author(key.verifying_key().to_bytes()),
            parents,
            governance: Vec::new(),
            layout: 0,
            hlc: Hlc { millis, counter: 0 },
            ops,
            events: vec![],
        },
        key,
    )
}

/// Commits `ops` as the next delta of `ctx`, as the executor does after a
/// call.
fn commit_ops(store: &Store, ctx: ContextId, key: &SigningKey, ops: Vec<Op>) {
    let heads = store.snapshot().unwrap().heads(&ctx).unwrap();
    let d = delta(ctx, key, heads, mero_crdt::hlc::wall_millis(), ops);
    let mut w = store.write().unwrap();
    w.apply_delta(&d.delta.id(), &d).unwrap();
    w.commit().unwrap();
}

fn main() {
    let setup = bench::setup();
    let (quick, iters, bytes) = (setup.quick, setup.iters, &setup.bytes);
    setup.rt.block_on(async {
        println!("kv-store component: {} bytes\n", bytes.len());

        // Compile vs cached load.
        let dir = tempfile::tempdir().unwrap();
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..(if quick { 3 } else { 7 }) {
            let _ = std::fs::remove_dir_all(dir.path().join("compiled"));
            let r = Runtime::new(Limits::Defaults.runtime(dir.path())).unwrap();
            let t = Instant::now();
            r.load(bytes).await.unwrap();
            cold.push(t.elapsed());
            let r = Runtime::new(Limits::Defaults.runtime(dir.path())).unwrap();
            let t = Instant::now();
            r.load(bytes).await.unwrap();
            warm.push(t.elapsed());
        }
        Stats(cold).line("load: cold (compile + describe)");
        Stats(warm).line("load: cached artifact (deserialize + describe)");
        println!();

        let n = Host::temp(Limits::Defaults);
        let blob = n.install_bytes(bytes, "bench").await;
        let app = n.runtime.loaded(&blob).unwrap();
        let ctx = ContextId([1; 32]);
        let key = SigningKey::from_bytes(&[1; 32]);
        let env = |snap: &mero_store::Snapshot| {
            CallEnv::new(
                ctx,
                Author([1; 32]),
                "1".into(),
                mero_runtime::state_over(snap.context(ctx)),
                PrivateOverlay::new(snap.clone(), ctx),
                Clock::default(),
            )
        };
        // The context as `init` and one `set` leave it.
        let snap = n.store.snapshot().unwrap();
        let (genesis, r) = n.runtime.init(&app, env(&snap), String::new()).await;
        r.unwrap();
        commit_ops(&n.store, ctx, &key, genesis.ops);
        let snap = n.store.snapshot().unwrap();
        let (set, r) = n
            .runtime
            .call(&app, env(&snap), "set", r#"{"key":"a","value":"b"}"#.into())
            .await;
        r.unwrap();
        commit_ops(&n.store, ctx, &key, set.ops);

        // Phases of one call.
        time(iters, |_| async {
            n.runtime.instantiate_only(&app).await.unwrap()
        })
        .await
        .line("instantiate (fresh store + InstancePre) + drop");
        time(iters, |i| {
            let snap = n.store.snapshot().unwrap();
            let e = env(&snap);
            let runtime = n.runtime.clone();
            let app = app.clone();
            async move {
                let (_, r) = runtime
                    .call(&app, e, "set", format!(r#"{{"key":"k{i}","value":"v"}}"#))
                    .await;
                r.unwrap();
            }
        })
        .await
        .line("set: instantiate + execute on an overlay (no commit)");
        time(iters, |_| {
            let snap = n.store.snapshot().unwrap();
            let e = env(&snap);
            let runtime = n.runtime.clone();
            let app = app.clone();
            async move {
                let (_, r) = runtime.call(&app, e, "get", r#"{"key":"a"}"#.into()).await;
                r.unwrap();
            }
        })
        .await
        .line("get: instantiate + execute on a snapshot");

        // The durable commit on its own: one delta of a `set` per transaction.
        let sample = {
            let snap = n.store.snapshot().unwrap();
            let (env, r) = n
                .runtime
                .call(&app, env(&snap), "set", r#"{"key":"c","value":"d"}"#.into())
                .await;
            r.unwrap();
            env.ops
        };
        let mut commit = Vec::new();
        let mut heads = n.store.snapshot().unwrap().heads(&ctx).unwrap();
        for i in 0..(iters / 3).max(100) {
            let d = delta(ctx, &key, heads.clone(), i as u64, sample.clone());
            let id = d.delta.id();
            let t = Instant::now();
            let mut w = n.store.write().unwrap();
            w.apply_delta(&id, &d).unwrap();
            w.commit().unwrap();
            commit.push(t.elapsed());
            heads = vec![id];
        }
        Stats(commit).line("commit: apply one set's delta + durable commit");
        println!();

        // Merge throughput of the crdt crate: deltas of one `set` each.
        let author = Author([5; 32]);
        let mut clock = Clock::default();
        let count = if quick { 20_000 } else { 100_000 };
        let mut deltas = Vec::with_capacity(count);
        let mut scratch = MemoryBackend::default();
        for i in 0..count {
            let mut ops = Vec::new();
            let mut o = Overlay::new(&scratch);
            Mutator::new(&mut o, author, &mut clock, 1, &mut ops)
                .put_register(
                    &NodeId::root("items"),
                    format!("k{}", i % 50_000).as_bytes(),
                    b"v".to_vec(),
                )
                .unwrap();
            apply_ops(&mut scratch, &ops).unwrap();
            deltas.push(ops);
        }
        let mut mem = MemoryBackend::default();
        let t = Instant::now();
        for d in &deltas {
            apply_ops(&mut mem, d).unwrap();
        }
        println!(
            "{:<58} {:>9.0} deltas/s",
            "crdt merge into memory (2 ops per delta, root updated)",
            count as f64 / t.elapsed().as_secs_f64()
        );
        let store = Store::open(&n.dir.join("merge"), &StoreConfig::default()).unwrap();
        let t = Instant::now();
        let mut w = store.write().unwrap();
        for d in &deltas {
            apply_ops(&mut w.context_state(ContextId([3; 32])), d).unwrap();
        }
        w.commit().unwrap();
        println!(
            "{:<58} {:>9.0} deltas/s",
            "crdt merge into the store, one commit (log; LMDB later)",
            count as f64 / t.elapsed().as_secs_f64()
        );
    });
}
