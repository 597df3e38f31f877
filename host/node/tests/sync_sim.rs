//! A seeded simulation of the sync protocol: N in-process replicas (real
//! executors and stores, the task-board app with every collection type)
//! write concurrently while gossip is dropped, duplicated, delayed and
//! reordered, requests fail at random and one replica goes offline and comes
//! back. The protocol code under test is the node's own (`sync::ingest_held`
//! for gossip, `sync::resolve_pending` for parents still missing after a
//! grace period, `sync::sync_with` for anti-entropy, `sync::serve_context`
//! answering); only the network is simulated.
//! Every run must end with equal root hashes. `MERO_SIM_SEED=n` replays one
//! seed.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use mero_crdt::{ContextId, SignedDelta};
use mero_network::PeerId;
use mero_node::sync::{self, Fetch, Pending, Request, Response};
use mero_runtime::{Executor, NewContext, Runtime, RuntimeConfig};
use mero_store::{Store, StoreConfig};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

struct Replica {
    exec: Executor,
    pending: Pending,
    peer: PeerId,
    _dir: tempfile::TempDir,
}

/// The simulated network: requests reach the target replica's real request
/// handler, and fail at random.
struct SimNet {
    replicas: Arc<Vec<Replica>>,
    offline: Arc<Mutex<Option<usize>>>,
    rng: Mutex<StdRng>,
    fail_rate: f64,
}

impl Fetch for SimNet {
    async fn fetch(&self, peer: PeerId, req: Request) -> Result<Response, String> {
        let lost = self.rng.lock().unwrap().random_bool(self.fail_rate);
        let target = self
            .replicas
            .iter()
            .position(|r| r.peer == peer)
            .ok_or("unknown peer")?;
        if lost || *self.offline.lock().unwrap() == Some(target) {
            return Err("request lost".into());
        }
        Ok(sync::serve_context(&self.replicas[target].exec, &req, true))
    }
}

struct Message {
    due: u64,
    from: usize,
    to: usize,
    delta: SignedDelta,
}

async fn replica(runtime: &Arc<Runtime>, seed: u8) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
    let key = SigningKey::from_bytes(&[seed; 32]);
    let peer = mero_node::sync::peer_of(&key.verifying_key().to_bytes()).unwrap();
    Replica {
        exec: Executor::spawn(runtime.clone(), store, key).unwrap(),
        pending: Pending::default(),
        peer,
        _dir: dir,
    }
}

/// A random mutating call of the task board.
fn random_call(rng: &mut StdRng, who: usize) -> (&'static str, serde_json::Value) {
    let task = format!("t{}", rng.random_range(0..12));
    let column = ["todo", "doing", "done"][rng.random_range(0..3)];
    match rng.random_range(0..8) {
        0 | 1 => (
            "add_task",
            json!({"id": format!("{task}-{who}"), "title": "x", "column": column}),
        ),
        2 => (
            "move_task",
            json!({"id": format!("{task}-{}", rng.random_range(0..4)), "to": column}),
        ),
        3 => (
            "assign",
            json!({"id": format!("{task}-{}", rng.random_range(0..4)), "assignee": format!("r{who}")}),
        ),
        4 => (
            "complete",
            json!({"id": format!("{task}-{}", rng.random_range(0..4))}),
        ),
        5 => (
            "add_label",
            json!({"label": format!("l{}", rng.random_range(0..5))}),
        ),
        6 => (
            "remove_label",
            json!({"label": format!("l{}", rng.random_range(0..5))}),
        ),
        _ => ("rename", json!({"title": format!("board {who}")})),
    }
}

async fn run(seed: u64) {
    const N: usize = 4;
    const STEPS: u64 = 160;
    let mut rng = StdRng::seed_from_u64(seed);
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let bytes = std::fs::read(mero_fixtures::TASK_BOARD).unwrap();
    let app = runtime.load(&bytes).await.unwrap();
    let mut list = Vec::new();
    for i in 0..N {
        let r = replica(&runtime, i as u8 + 1).await;
        let mut w = r.exec.store().write().unwrap();
        w.put_blob(&app.hash(), &bytes).unwrap();
        w.commit().unwrap();
        list.push(r);
    }
    let replicas = Arc::new(list);
    let ctx = ContextId([42; 32]);
    let created = replicas[0]
        .exec
        .create_context(NewContext {
            id: ctx,
            application: [1; 32],
            blob: app.hash(),
            app_version: "1".into(),
            group: None,
            name: None,
            init_args: json!({"title": "sim"}).to_string(),
        })
        .await
        .unwrap();
    let meta = replicas[0]
        .exec
        .store()
        .snapshot()
        .unwrap()
        .context_meta(&ctx)
        .unwrap()
        .unwrap();
    for r in &replicas[1..] {
        assert!(r.exec.create_replica(meta.clone()).await.unwrap());
    }
    let offline = Arc::new(Mutex::new(None));
    let net = SimNet {
        replicas: replicas.clone(),
        offline: offline.clone(),
        rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
        fail_rate: 0.15,
    };
    let anyone = |_: &mero_crdt::Delta,
                  _: &[Vec<[u8; 32]>]|
     -> Result<(), mero_node::governance::Denial> { Ok(()) };
    let mut inflight: Vec<Message> = Vec::new();
    let genesis = replicas[0]
        .exec
        .store()
        .snapshot()
        .unwrap()
        .delta(&ctx, &created.delta)
        .unwrap()
        .unwrap();
    // One replica goes offline for a while; the last one joins late, from a
    // snapshot, so it holds deltas only folded into its state (peers asking
    // it for those must take a snapshot too).
    let gone = rng.random_range(0..N - 1);
    let late = N - 1;
    let joins_at = STEPS / 3;
    let (down, up) = (STEPS / 4, STEPS / 2);
    let mut stats: BTreeMap<&str, u64> = BTreeMap::new();
    let broadcast = |rng: &mut StdRng,
                     inflight: &mut Vec<Message>,
                     from: usize,
                     d: SignedDelta,
                     now: u64,
                     stats: &mut BTreeMap<&str, u64>| {
        for to in 0..N {
            if to == from {
                continue;
            }
            if rng.random_bool(0.25) {
                *stats.entry("dropped").or_default() += 1;
                continue;
            }
            let copies = if rng.random_bool(0.15) { 2 } else { 1 };
            *stats.entry("duplicated").or_default() += copies - 1;
            for _ in 0..copies {
                inflight.push(Message {
                    due: now + rng.random_range(0..12),
                    from,
                    to,
                    delta: d.clone(),
                });
            }
        }
    };
    broadcast(&mut rng, &mut inflight, 0, genesis, 0, &mut stats);
    for now in 0..STEPS {
        *offline.lock().unwrap() = if now < joins_at {
            Some(late)
        } else {
            (down..up).contains(&now).then_some(gone)
        };
        if now == joins_at {
            let from = (0..N - 1)
                .find(|i| *offline.lock().unwrap() != Some(*i))
                .unwrap();
            let mut tries = 0;
            while sync::join_snapshot(&replicas[late].exec, &net, replicas[from].peer, ctx)
                .await
                .is_err()
            {
                tries += 1;
                assert!(
                    tries < 50,
                    "seed {seed}: the late joiner never got a snapshot"
                );
            }
            *stats.entry("snapshots").or_default() += 1;
        }
        // Writes, a few per step, from random replicas (offline ones too:
        // they keep working locally).
        for _ in 0..rng.random_range(0..3) {
            let who = rng.random_range(0..N);
            let (method, args) = random_call(&mut rng, who);
            if who == late && now < joins_at {
                continue;
            }
            let Ok(out) = replicas[who]
                .exec
                .call(&ctx, method, args.to_string())
                .await
            else {
                continue;
            };
            if let Some(id) = out.delta {
                let d = replicas[who]
                    .exec
                    .store()
                    .snapshot()
                    .unwrap()
                    .delta(&ctx, &id)
                    .unwrap()
                    .unwrap();
                *stats.entry("writes").or_default() += 1;
                broadcast(&mut rng, &mut inflight, who, d, now, &mut stats);
            }
        }
        // Deliver what is due, in random order; messages to or from the
        // offline replica are lost.
        inflight.shuffle(&mut rng);
        let (due, later): (Vec<_>, Vec<_>) = inflight.into_iter().partition(|m| m.due <= now);
        inflight = later;
        for m in due {
            let off = *offline.lock().unwrap();
            if off == Some(m.to) || off == Some(m.from) {
                *stats.entry("lost offline").or_default() += 1;
                continue;
            }
            // As the node does with gossip: merge, hold what misses parents.
            let r = &replicas[m.to];
            let got = sync::ingest_held(
                &r.exec,
                &r.pending,
                replicas[m.from].peer,
                ctx,
                vec![m.delta],
                &anyone,
            )
            .await;
            assert_eq!(got.rejected, 0, "seed {seed}: {:?}", got.last_rejection);
        }
        // After a grace period the node fetches parents still missing.
        for (i, r) in replicas.iter().enumerate() {
            let off = *offline.lock().unwrap();
            if r.pending.waiting(&ctx) == 0 || off == Some(i) || !rng.random_bool(0.5) {
                continue;
            }
            let from = (i + rng.random_range(1..N)) % N;
            if off == Some(from) {
                continue;
            }
            *stats.entry("parent fetches").or_default() += 1;
            let got =
                sync::resolve_pending(&r.exec, &net, &r.pending, replicas[from].peer, ctx, &anyone)
                    .await;
            assert_eq!(got.rejected, 0, "seed {seed}: {:?}", got.last_rejection);
            if got.snapshot {
                *stats.entry("snapshots").or_default() += 1;
            }
        }
        // Now and then, anti-entropy between two online replicas.
        if rng.random_bool(0.1) {
            let (a, b) = (rng.random_range(0..N), rng.random_range(0..N));
            let off = *offline.lock().unwrap();
            if a != b && off != Some(a) && off != Some(b) {
                let _ = sync::sync_with(
                    &replicas[a].exec,
                    &net,
                    &replicas[a].pending,
                    replicas[b].peer,
                    ctx,
                    &anyone,
                )
                .await;
            }
        }
    }
    // Heal: messages still in flight are lost; anti-entropy rounds over a
    // network that still fails requests must bring everyone level.
    *offline.lock().unwrap() = None;
    let roots = || {
        replicas
            .iter()
            .map(|r| r.exec.store().snapshot().unwrap().root_hash(&ctx).unwrap())
            .collect::<Vec<_>>()
    };
    let mut rounds = 0;
    while roots().windows(2).any(|w| w[0] != w[1]) {
        rounds += 1;
        if rounds > 40 {
            for (i, r) in replicas.iter().enumerate() {
                let snap = r.exec.store().snapshot().unwrap();
                let ids = snap.delta_ids(&ctx).unwrap();
                let stubs = ids
                    .iter()
                    .filter(|d| snap.delta(&ctx, d).unwrap().is_none())
                    .count();
                eprintln!(
                    "replica {i}: heads {:?} deltas {} stubs {} board {}",
                    snap.heads(&ctx)
                        .unwrap()
                        .iter()
                        .map(|h| h.0[0])
                        .collect::<Vec<_>>(),
                    ids.len(),
                    stubs,
                    r.exec
                        .call(&ctx, "board", "{}".into())
                        .await
                        .unwrap()
                        .output
                );
            }
        }
        assert!(
            rounds <= 40,
            "seed {seed}: no convergence after {rounds} anti-entropy rounds: {:?} ({stats:?})",
            roots()
        );
        for a in 0..N {
            for b in 0..N {
                if a != b {
                    let _ = sync::sync_with(
                        &replicas[a].exec,
                        &net,
                        &replicas[a].pending,
                        replicas[b].peer,
                        ctx,
                        &anyone,
                    )
                    .await;
                }
            }
        }
    }
    // Same root means same state: every replica shows the same board.
    let boards: Vec<serde_json::Value> = {
        let mut v = Vec::new();
        for r in replicas.iter() {
            v.push(
                r.exec
                    .call(&ctx, "board", "{}".into())
                    .await
                    .unwrap()
                    .output,
            );
        }
        v
    };
    assert!(boards.windows(2).all(|w| w[0] == w[1]), "seed {seed}");
    assert!(
        stats.get("writes").copied().unwrap_or(0) > 50,
        "seed {seed}: {stats:?}"
    );
    eprintln!("seed {seed}: converged after {rounds} healing round(s); {stats:?}");
    for r in replicas.iter() {
        r.exec.shutdown().await.unwrap();
    }
}

#[test]
fn replicas_converge_despite_a_hostile_network() {
    let seeds: Vec<u64> = match std::env::var("MERO_SIM_SEED") {
        Ok(s) => vec![s.parse().unwrap()],
        Err(_) => (1..=8).collect(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for seed in seeds {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(300), run(seed))
                .await
                .unwrap_or_else(|_| panic!("seed {seed} timed out"));
        });
    }
}
