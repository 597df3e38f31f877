//! Event delivery benchmark on real release nodes on 127.0.0.1:
//! - latency from a `set` sent to node1 to its `ExecutionEvent` on a
//!   WebSocket subscriber of node2 (median and p99 over 200 trials);
//! - fan-out: how many WebSocket subscribers of one node keep up while
//!   calls make 1,000 app events a second (delivered share, latency,
//!   subscribers dropped).
//!
//! `cargo build --release -p merod -p meroctl && cargo build --release -p mero-e2e
//!  --bin mero-events-bench && target/release/mero-events-bench [--quick]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool fails fast"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use mero_testkit::node::{FAST_SYNC, TestNode, blocking_client, rpc};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn set(c: &reqwest::blocking::Client, port: u16, ctx: &str, key: &str, value: &str) {
    rpc(c, port, ctx, "set", json!({"key": key, "value": value}));
}

async fn subscribe(node: &TestNode, ctx: &str) -> Ws {
    let mut ws = tokio_tungstenite::connect_async(node.ws_url())
        .await
        .unwrap()
        .0;
    let req = json!({"id": 1, "method": "subscribe",
        "params": {"contextIds": [ctx], "eventTypes": ["ExecutionEvent"]}});
    ws.send(Message::Text(req.to_string().into()))
        .await
        .unwrap();
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("no subscribe reply")
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["id"] == 1 {
            assert!(v["result"].is_object(), "{v}");
            return ws;
        }
    }
}

/// The key and value of the next app event; `None` if the socket closed.
async fn next_event(ws: &mut Ws) -> Option<(String, String)> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).ok()?;
                let d = &v["result"]["data"]["data"];
                return Some((
                    d["key"].as_str()?.to_string(),
                    d["value"].as_str()?.to_string(),
                ));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn ms(mut v: Vec<u64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize] as f64 / 1e3
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Latency across nodes.
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    let trials = if quick { 50 } else { 200 };
    let c = blocking_client();
    let latencies = rt.block_on(async {
        let mut ws = subscribe(&n2, &ctx).await;
        let mut out = Vec::with_capacity(trials);
        for i in 0..trials {
            let key = format!("lat{i}");
            let t = Instant::now();
            tokio::task::block_in_place(|| set(&c, n1.port, &ctx, &key, "x"));
            loop {
                let (k, _) = next_event(&mut ws).await.expect("the socket closed");
                if k == key {
                    break;
                }
            }
            out.push(t.elapsed().as_micros() as u64);
        }
        out
    });
    println!(
        "set on node1 -> ExecutionEvent on a WebSocket of node2: p50 {:.2} ms, p99 {:.2} ms ({trials} trials)",
        ms(latencies.clone(), 0.5),
        ms(latencies, 0.99)
    );
    drop((n1, n2));

    // Fan-out on one node at 1,000 events/s.
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    let seconds = if quick { 2 } else { 5 };
    let sizes: &[usize] = if quick {
        &[10, 100]
    } else {
        &[10, 100, 500, 1000, 2000]
    };
    println!("subscribers  calls/s  delivered  p50 ms  p99 ms  dropped");
    for &subs in sizes {
        let (calls, delivered, lat, dropped) = rt.block_on(async {
            let mut sockets = Vec::with_capacity(subs);
            for _ in 0..subs {
                sockets.push(subscribe(&node, &ctx).await);
            }
            let stop = Arc::new(AtomicBool::new(false));
            let sent = Arc::new(AtomicU64::new(0));
            let readers: Vec<_> = sockets
                .into_iter()
                .map(|mut ws| {
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        let mut got = 0u64;
                        let mut lat = Vec::new();
                        loop {
                            let ev = tokio::select! {
                                ev = next_event(&mut ws) => ev,
                                () = tokio::time::sleep(Duration::from_millis(500)) => {
                                    if stop.load(Ordering::Relaxed) { return (got, lat, false) }
                                    continue;
                                }
                            };
                            let Some((_, v)) = ev else {
                                return (got, lat, true);
                            };
                            got += 1;
                            if let Ok(at) = v.parse::<u64>() {
                                lat.push(micros().saturating_sub(at));
                            }
                        }
                    })
                })
                .collect();
            // Four writers, paced to 1,000 calls (app events) a second.
            let started = Instant::now();
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let (ctx, sent, port) = (ctx.clone(), sent.clone(), node.port);
                    std::thread::spawn(move || {
                        let c = blocking_client();
                        let mut i = 0u64;
                        while started.elapsed() < Duration::from_secs(seconds) {
                            let due = started + Duration::from_micros((i * 4 + w) * 1_000);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            set(&c, port, &ctx, &format!("w{w}-{i}"), &micros().to_string());
                            sent.fetch_add(1, Ordering::Relaxed);
                            i += 1;
                        }
                    })
                })
                .collect();
            for w in writers {
                tokio::task::block_in_place(|| w.join().unwrap());
            }
            let took = started.elapsed().as_secs_f64();
            stop.store(true, Ordering::Relaxed);
            let mut delivered = 0u64;
            let mut lat = Vec::new();
            let mut dropped = 0;
            for r in readers {
                let (got, l, closed) = r.await.unwrap();
                delivered += got;
                lat.extend(l);
                dropped += usize::from(closed);
            }
            let sent = sent.load(Ordering::Relaxed);
            (
                sent as f64 / took,
                delivered as f64 / (sent * subs as u64) as f64,
                lat,
                dropped,
            )
        });
        println!(
            "{subs:>11}  {calls:>7.0}  {:>8.1}%  {:>6.2}  {:>6.2}  {dropped:>7}",
            delivered * 100.0,
            ms(lat.clone(), 0.5),
            ms(lat, 0.99)
        );
    }
}
