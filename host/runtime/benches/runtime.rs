//! Engine benchmark: prints medians and p99s.
//!
//! `cargo bench -p mero-runtime --bench runtime` (add `-- quick` for fewer
//! iterations). Figures depend on the machine and its load; compare ratios.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a benchmark fails fast")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use mero_crdt::collections::Mutator;
use mero_crdt::overlay::Overlay;
use mero_crdt::{
    Author, Clock, ContextId, Delta, Hlc, MemoryBackend, NodeId, SignedDelta, apply_ops,
};
use mero_runtime::{CallEnv, Executor, NewContext, PrivateOverlay, Runtime, RuntimeConfig};
use mero_store::{ApplicationRecord, Store, StoreConfig};
use sha2::{Digest, Sha256};

struct Stats(Vec<Duration>);

impl Stats {
    fn pct(&mut self, p: f64) -> Duration {
        self.0.sort();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }
    fn line(mut self, name: &str) {
        let (p50, p99) = (self.pct(0.5), self.pct(0.99));
        println!(
            "{name:<58} p50 {:>9.1} µs   p99 {:>9.1} µs   (n={})",
            us(p50),
            us(p99),
            self.0.len()
        );
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn time<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed());
    }
    Stats(v)
}

fn config(dir: &std::path::Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(dir.join("compiled")),
        ..RuntimeConfig::default()
    }
}

struct Node {
    _dir: tempfile::TempDir,
    store: Store,
    runtime: Arc<Runtime>,
    exec: Executor,
    blob: [u8; 32],
}

async fn node(bytes: &[u8]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), &StoreConfig::default()).unwrap();
    let runtime = Runtime::new(config(dir.path())).unwrap();
    let exec = Executor::spawn(
        runtime.clone(),
        store.clone(),
        SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap();
    let blob: [u8; 32] = Sha256::digest(bytes).into();
    runtime.load(bytes).await.unwrap();
    let mut w = store.write().unwrap();
    w.put_blob(&blob, bytes).unwrap();
    w.put_application(&ApplicationRecord {
        id: blob,
        blob,
        size: bytes.len() as u64,
        source: "bench".into(),
        metadata: vec![],
        package: "kv-store".into(),
        version: "1".into(),
        state_version: 1,
        installed_at_millis: 0,
    })
    .unwrap();
    w.commit().unwrap();
    Node {
        _dir: dir,
        store,
        runtime,
        exec,
        blob,
    }
}

async fn context(n: &Node, id: u8) -> ContextId {
    n.exec
        .create_context(NewContext {
            id: ContextId([id; 32]),
            application: n.blob,
            blob: n.blob,
            app_version: "1".into(),
            group: None,
            name: None,
            init_args: String::new(),
        })
        .await
        .unwrap()
        .id
}

/// Fills a context with `keys` keys through signed deltas from another author.
async fn prefill(n: &Node, ctx: ContextId, keys: usize) {
    let key = SigningKey::from_bytes(&[9; 32]);
    let author = Author(key.verifying_key().to_bytes());
    let mut clock = Clock::starting_after(Hlc {
        millis: mero_crdt::hlc::wall_millis(),
        counter: 0,
    });
    let mut done = 0;
    while done < keys {
        let snap = n.store.snapshot().unwrap();
        let mut overlay = Overlay::new(snap.context(ctx));
        let mut ops = Vec::new();
        let mut m = Mutator::new(
            &mut overlay,
            author,
            &mut clock,
            mero_crdt::hlc::wall_millis(),
            &mut ops,
        );
        let end = (done + 20_000).min(keys);
        for i in done..end {
            let k = serde_json_key(i);
            m.put_register(
                &NodeId::root("items"),
                k.as_bytes(),
                format!("\"v{i}\"").into_bytes(),
            )
            .unwrap();
        }
        let delta = Delta {
            version: 1,
            context: ctx,
            author,
            parents: snap.heads(&ctx).unwrap(),
            governance: Vec::new(),
            hlc: clock.tick(mero_crdt::hlc::wall_millis()),
            ops,
            events: vec![],
        };
        drop(snap);
        n.exec
            .apply_delta(SignedDelta::sign(delta, &key))
            .await
            .unwrap();
        done = end;
    }
}

fn serde_json_key(i: usize) -> String {
    format!("key-{i:08}")
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let iters = if quick { 300 } else { 3000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bytes = std::fs::read(mero_fixtures::KV_STORE).unwrap();
    rt.block_on(async {
        println!("kv-store component: {} bytes\n", bytes.len());

        // Compile vs cached load.
        let dir = tempfile::tempdir().unwrap();
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for _ in 0..(if quick { 3 } else { 7 }) {
            let _ = std::fs::remove_dir_all(dir.path().join("compiled"));
            let r = Runtime::new(config(dir.path())).unwrap();
            let t = Instant::now();
            r.load(&bytes).await.unwrap();
            cold.push(t.elapsed());
            let r = Runtime::new(config(dir.path())).unwrap();
            let t = Instant::now();
            r.load(&bytes).await.unwrap();
            warm.push(t.elapsed());
        }
        Stats(cold).line("load: cold (compile + describe)");
        Stats(warm).line("load: cached artifact (deserialize + describe)");
        println!();

        let n = node(&bytes).await;
        let app = n.runtime.loaded(&n.blob).unwrap();
        let ctx = context(&n, 1).await;
        n.exec
            .call(&ctx, "set", r#"{"key":"a","value":"b"}"#.into())
            .await
            .unwrap();

        // Phases of one call.
        time(iters, |_| async {
            n.runtime.instantiate_only(&app).await.unwrap()
        })
        .await
        .line("instantiate (fresh store + InstancePre) + drop");
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
        let key = SigningKey::from_bytes(&[1; 32]);
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
            let d = SignedDelta::sign(
                Delta {
                    version: 1,
                    context: ctx,
                    author: Author(key.verifying_key().to_bytes()),
                    parents: heads.clone(),
                    governance: Vec::new(),
                    hlc: Hlc {
                        millis: i as u64,
                        counter: 0,
                    },
                    ops: sample.clone(),
                    events: vec![],
                },
                &key,
            );
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

        // End to end through the executor, one client.
        time(iters / 2, |i| {
            let exec = n.exec.clone();
            async move {
                exec.call(&ctx, "set", format!(r#"{{"key":"e{i}","value":"v"}}"#))
                    .await
                    .unwrap();
            }
        })
        .await
        .line("executor set (one client): execute + sign + commit");
        time(iters, |_| {
            let exec = n.exec.clone();
            async move {
                exec.call(&ctx, "get", r#"{"key":"a"}"#.into())
                    .await
                    .unwrap();
            }
        })
        .await
        .line("executor get (view on a snapshot)");

        // 32 concurrent clients: throughput with group commit.
        let calls = if quick { 2000 } else { 10_000 };
        let t = Instant::now();
        let c0 = n
            .exec
            .stats()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut tasks = Vec::new();
        for c in 0..32 {
            let exec = n.exec.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..calls / 32 {
                    exec.call(&ctx, "set", format!(r#"{{"key":"c{c}-{i}","value":"v"}}"#))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let el = t.elapsed();
        let commits = n
            .exec
            .stats()
            .commits
            .load(std::sync::atomic::Ordering::Relaxed)
            - c0;
        println!(
            "{:<58} {:>9.0} calls/s   ({} calls in {} commits)\n",
            "executor set, 32 concurrent clients",
            (calls / 32 * 32) as f64 / el.as_secs_f64(),
            calls / 32 * 32,
            commits
        );

        // Flat in the size of the state.
        for (i, keys) in [100usize, 10_000, 100_000].into_iter().enumerate() {
            let ctx = context(&n, 10 + i as u8).await;
            prefill(&n, ctx, keys).await;
            let probe = serde_json_key(keys / 2);
            time(iters / 2, |j| {
                let exec = n.exec.clone();
                async move {
                    exec.call(&ctx, "set", format!(r#"{{"key":"new-{j}","value":"v"}}"#))
                        .await
                        .unwrap();
                }
            })
            .await
            .line(&format!("executor set with {keys:>6} keys in the context"));
            time(iters, |_| {
                let exec = n.exec.clone();
                let probe = probe.clone();
                async move {
                    let out = exec
                        .call(&ctx, "get", format!(r#"{{"key":"{probe}"}}"#))
                        .await
                        .unwrap();
                    assert!(out.output.is_string());
                }
            })
            .await
            .line(&format!("executor get with {keys:>6} keys in the context"));
        }
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
        let store = Store::open(&n._dir.path().join("merge"), &StoreConfig::default()).unwrap();
        let t = Instant::now();
        let mut w = store.write().unwrap();
        for d in &deltas {
            apply_ops(&mut w.context_state(ContextId([3; 32])), d).unwrap();
        }
        w.commit().unwrap();
        println!(
            "{:<58} {:>9.0} deltas/s",
            "crdt merge into LMDB, one transaction (root updated)",
            count as f64 / t.elapsed().as_secs_f64()
        );
    });
}
