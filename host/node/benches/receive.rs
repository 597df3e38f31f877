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
use mero_crdt::{ContextId, Delta, SignedDelta, VerifiedBatches};
use mero_executor::NewContext;
use mero_node::governance::{AppInfo, Namespace, OpId};
use mero_node::keys;
use mero_node::sync::{Gossip, Pending, Session, Step};
use mero_node::{StoreView, apply_through};
use mero_testkit::bench::{Stats, timed};
use mero_testkit::engine::{Engine, Host, Limits};
use mero_testkit::governance::{create_namespace, register_context};

/// A node with the kv-store installed, signing with `[key; 32]`; its
/// `standing` names `ns`'s heads.
async fn node(key: u8, ns: Option<&Namespace>) -> (Engine, [u8; 32]) {
    let heads: Vec<OpId> = ns
        .map(|n| n.heads.iter().copied().collect())
        .unwrap_or_default();
    let engine = Host::temp(Limits::Defaults).spawn_governed(
        SigningKey::from_bytes(&[key; 32]),
        Arc::new(move |_| Ok(heads.clone())),
    );
    let blob = engine
        .install_bytes(mero_fixtures::KV_STORE_BYTES, "bench")
        .await;
    (engine, blob)
}

/// Prints one guard's p50 and p99 per delta; returns the p50.
fn line(name: &str, timings: Vec<Duration>) -> Duration {
    Stats(timings).line(name)
}

/// A namespace created by `creator` with a context registered; returns it
/// and the context.
fn namespace(creator: &SigningKey) -> (Namespace, ContextId) {
    let app = AppInfo {
        id: [0; 32],
        blob: [0; 32],
        size: 0,
        package: "kv-store".into(),
        version: "1".into(),
        source: "bench".into(),
    };
    let (mut ns, _) = create_namespace(creator, 1, [3; 32], app);
    let (ctx, _) = register_context(&mut ns, creator, 2, [4; 32]);
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
    let (a, blob) = node(1, Some(&ns)).await;
    a.exec
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
            a.exec.call(
                &ctx,
                "set",
                format!(r#"{{"key":"key-{i}","value":"value number {i} of the benchmark"}}"#),
            )
        });
        for out in futures::future::join_all(calls).await {
            ids.push(out.unwrap().delta.unwrap());
        }
    }
    let snap = a.store.snapshot().unwrap();
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
    // As the executor checks them: the deltas of one commit batch share a
    // signature, checked once for all of them.
    let verified = VerifiedBatches::default();
    let batches = deltas
        .iter()
        .map(|d| d.signature)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let verify_once = line(
        &format!("verify, a batch's signature once ({batches} batches)"),
        deltas
            .iter()
            .map(|d| timed(|| d.verify_with(&verified).unwrap()).1)
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
    let (b, _) = node(2, None).await;
    b.exec.create_replica(meta).await.unwrap();
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
        let view = StoreView::new(&b.exec, ctx).unwrap();
        let mut step = session.offer(batch, &view, &judge_delta);
        drop(view);
        let r = loop {
            step = match step {
                Step::Apply(batch) => {
                    let outcomes = apply_through(&b.exec, batch).await;
                    let view = StoreView::new(&b.exec, ctx).unwrap();
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
    // p50s: the batch's one check is an outlier among its deltas, so the
    // signature's share is the mean, counted from the two lines above.
    let signature = verify.mul_f64(batches as f64 / deltas.len() as f64) + verify_once;
    let guards = signature + open + judge;
    println!(
        "receive path, {per_message} deltas a message: {:.0} deltas/s ({:.1} µs a delta; signature + opening + judging {:.1} µs of it, {:.0}%)",
        deltas.len() as f64 / took.as_secs_f64(),
        per.as_secs_f64() * 1e6,
        guards.as_secs_f64() * 1e6,
        guards.as_secs_f64() / per.as_secs_f64() * 100.0
    );
    b.exec.shutdown().await.unwrap();
    a.exec.shutdown().await.unwrap();
}
