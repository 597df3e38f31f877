//! The receive path of replicated deltas, with its two guards on: what
//! checking an author's signature, opening sealed gossip and judging the
//! author's authority cost per delta, and how many deltas per second one
//! node merges from sealed gossip (open, decode, judge, verify, merge,
//! commit).
//!
//! `cargo bench -p mero-node --bench receive` (add `-- quick` for fewer
//! deltas). Figures depend on the machine and its load; compare ratios.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a benchmark fails fast")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use mero_crdt::{ContextId, Delta, SignedDelta};
use mero_executor::{Executor, NewContext};
use mero_node::governance::{AppInfo, Body, Namespace, OpId, scoped_id};
use mero_node::sync::{Gossip, Pending, Session, Step};
use mero_node::{StoreView, apply_through};
use mero_node::{caps, keys};
use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::{ApplicationRecord, Store, StoreConfig};
use sha2::{Digest, Sha256};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn line(name: &str, mut v: Vec<Duration>) -> Duration {
    let (p50, p99) = (pct(&mut v, 0.5), pct(&mut v, 0.99));
    println!(
        "{name:<48} p50 {:>7.1} µs   p99 {:>7.1} µs   (n={})",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        v.len()
    );
    p50
}

fn timed<T>(mut f: impl FnMut() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

/// A node with the kv-store installed; `standing` names `ns`'s heads.
fn node(dir: &std::path::Path, key: u8, ns: Option<Namespace>) -> (Store, Executor, [u8; 32]) {
    let bytes = std::fs::read(mero_fixtures::KV_STORE).unwrap();
    let store = Store::open(&dir.join("db"), &StoreConfig::default()).unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.join("compiled")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let heads: Vec<OpId> = ns
        .map(|n| n.heads.iter().copied().collect())
        .unwrap_or_default();
    let exec = Executor::spawn_governed(
        runtime,
        store.clone(),
        SigningKey::from_bytes(&[key; 32]),
        Arc::new(move |_| Ok(heads.clone())),
    )
    .unwrap();
    let blob: [u8; 32] = Sha256::digest(&bytes).into();
    let mut w = store.write().unwrap();
    w.put_blob(&blob, &bytes).unwrap();
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
    (store, exec, blob)
}

/// A namespace created by `creator` with a context registered; returns it
/// and the context.
fn namespace(creator: &SigningKey) -> (Namespace, ContextId) {
    let (mut ns, create) = Namespace::create(
        creator,
        1,
        Body::Create {
            nonce: [3; 32],
            name: None,
            app: AppInfo {
                id: [0; 32],
                blob: [0; 32],
                size: 0,
                package: "kv-store".into(),
                version: "1".into(),
                source: "bench".into(),
            },
            default_capabilities: caps::DEFAULT,
            addrs: vec![],
        },
    )
    .unwrap();
    ns.apply(&create).unwrap();
    let salt = [4; 32];
    let ctx = ContextId(scoped_id(
        &ns.id,
        &creator.verifying_key().to_bytes(),
        &salt,
    ));
    let register = ns
        .make(
            creator,
            2,
            Body::ContextRegistered {
                context: ctx.0,
                name: None,
                group: ns.id,
                salt,
            },
        )
        .unwrap();
    ns.apply(&register).unwrap();
    (ns, ctx)
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n: usize = if quick { 400 } else { 3_000 };
    let per_message = 16;
    let author = SigningKey::from_bytes(&[1; 32]);
    let (ns, ctx) = namespace(&author);
    let key = [7u8; 32];

    // The author: `n` kv-store sets, 32 at a time, each a signed delta.
    let a = tempfile::tempdir().unwrap();
    let (a_store, a_exec, blob) = node(a.path(), 1, Some(ns.clone()));
    a_exec
        .create_context(NewContext {
            id: ctx,
            application: blob,
            blob,
            app_version: "1".into(),
            group: Some(ns.id),
            name: None,
            init_args: String::new(),
        })
        .await
        .unwrap();
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(32) {
        let calls = chunk.iter().map(|i| {
            a_exec.call(
                &ctx,
                "set",
                format!(r#"{{"key":"key-{i}","value":"value number {i} of the benchmark"}}"#),
            )
        });
        for out in futures::future::join_all(calls).await {
            ids.push(out.unwrap().delta.unwrap());
        }
    }
    let snap = a_store.snapshot().unwrap();
    let mut deltas: Vec<SignedDelta> = ids
        .iter()
        .map(|id| snap.delta(&ctx, id).unwrap().unwrap())
        .collect();
    // The genesis delta first, so the receiver can merge them all.
    let genesis = snap
        .delta_ids(&ctx)
        .unwrap()
        .into_iter()
        .find(|id| !ids.contains(id))
        .unwrap();
    deltas.insert(0, snap.delta(&ctx, &genesis).unwrap().unwrap());
    let meta = snap.context_meta(&ctx).unwrap().unwrap();
    drop(snap);
    let bytes: Vec<Vec<u8>> = deltas.iter().map(SignedDelta::to_bytes).collect();
    println!(
        "{} deltas of one kv-store `set` each, {} bytes on average",
        deltas.len(),
        bytes.iter().map(Vec::len).sum::<usize>() / bytes.len()
    );

    // Each guard alone, per delta.
    let verify = line(
        "verify the author's signature",
        deltas
            .iter()
            .map(|d| timed(|| d.verify().unwrap()).1)
            .collect(),
    );
    let sealed: Vec<keys::Sealed> = bytes
        .iter()
        .map(|b| keys::seal(&ns.id, 0, &key, b).unwrap())
        .collect();
    let open = line(
        "open sealed gossip (ChaCha20-Poly1305)",
        sealed
            .iter()
            .map(|s| timed(|| keys::open(&key, s).unwrap()).1)
            .collect(),
    );
    let parents: Vec<Vec<OpId>> = vec![ns.heads.iter().copied().collect()];
    let judge = line(
        "judge the author at the governance it names",
        deltas
            .iter()
            .map(|d| {
                timed(|| {
                    ns.judge(
                        &d.delta.author.0,
                        &d.delta.context.0,
                        &d.delta.governance,
                        &parents,
                    )
                    .unwrap()
                })
                .1
            })
            .collect(),
    );
    line(
        "decode a delta",
        bytes
            .iter()
            .map(|b| timed(|| SignedDelta::from_bytes(b).unwrap()).1)
            .collect(),
    );

    // The whole receive path on a fresh replica: sealed messages of
    // `per_message` deltas, merged as the node's gossip inbox merges them.
    let messages: Vec<keys::Sealed> = bytes
        .chunks(per_message)
        .map(|c| {
            let plain = borsh::to_vec(&Gossip::Deltas(c.to_vec())).unwrap();
            keys::seal(&ns.id, 0, &key, &plain).unwrap()
        })
        .collect();
    let b = tempfile::tempdir().unwrap();
    let (_b_store, b_exec, _) = node(b.path(), 2, None);
    b_exec.create_replica(meta).await.unwrap();
    let pending = Pending::default();
    let judge_delta =
        |d: &Delta, p: &[Vec<OpId>]| ns.judge(&d.author.0, &d.context.0, &d.governance, p);
    let start = Instant::now();
    let mut merged = 0;
    for m in &messages {
        let plain = keys::open(&key, m).unwrap();
        let Gossip::Deltas(list) = borsh::from_slice::<Gossip>(&plain).unwrap() else {
            panic!("not deltas")
        };
        let batch: Vec<SignedDelta> = list
            .iter()
            .map(|b| SignedDelta::from_bytes(b).unwrap())
            .collect();
        // As the node's driver carries a gossip session out.
        let mut session = Session::gossip(ctx, &pending);
        let view = StoreView::new(&b_exec, ctx).unwrap();
        let mut step = session.offer(batch, &view, &judge_delta);
        drop(view);
        let r = loop {
            step = match step {
                Step::Apply(batch) => {
                    let outcomes = apply_through(&b_exec, batch).await;
                    let view = StoreView::new(&b_exec, ctx).unwrap();
                    session.applied(outcomes, &view, &judge_delta)
                }
                Step::Done(r) => break r.unwrap(),
                other => panic!("a gossip session asked for {other:?}"),
            };
        };
        assert_eq!(r.rejected, 0, "{:?}", r.last_rejection);
        merged += r.merged;
    }
    let took = start.elapsed();
    assert_eq!(merged as usize, deltas.len());
    let per = took / deltas.len() as u32;
    println!(
        "receive path, {per_message} deltas a message: {:.0} deltas/s ({:.1} µs a delta; signature + opening + judging {:.1} µs of it, {:.0}%)",
        deltas.len() as f64 / took.as_secs_f64(),
        per.as_secs_f64() * 1e6,
        (verify + open + judge).as_secs_f64() * 1e6,
        (verify + open + judge).as_secs_f64() / per.as_secs_f64() * 100.0
    );
    b_exec.shutdown().await.unwrap();
    a_exec.shutdown().await.unwrap();
}
