//! What one WebSocket flooding large calls costs a node: the review's run
//! (400 `execute` calls of `update_if_exists` with a 0.9 MB value on keys
//! that do not exist, so nothing is stored; replies never read) against a
//! real node, printing the node's RSS before, at its peak and after, and
//! how long health took to answer meanwhile; five `spin` calls of the
//! misbehave app go first, as in the review (the first holds the executor,
//! the others only their own context, which then has a lane of its own).
//! The cap on calls in flight per
//! socket (`server.limits.ws_max_in_flight`) is what keeps the peak down.
//!
//! `cargo run --release -p mero-e2e --bin mero-ws-flood [MAX_IN_FLIGHT]`
//! (a large MAX_IN_FLIGHT, e.g. 100000, shows the node without the cap)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool fails fast"
)]

use std::time::{Duration, Instant};

use futures::SinkExt as _;
use mero_testkit::node::TestNode;
use serde_json::json;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let cap = std::env::args().nth(1);
    let setting = cap.map(|c| format!("server.limits.ws_max_in_flight={c}"));
    let node = TestNode::start_with(
        "node1",
        &setting.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let (_, _, ctx) = node.setup(mero_fixtures::KV_STORE);
    // As in the review: calls that spin hold the executor first, so the
    // flood's calls pile up in flight instead of finishing.
    let (_, _, spin_ctx) = node.setup(mero_fixtures::MISBEHAVE);
    let spinners: Vec<_> = (0..5)
        .map(|_| {
            let c = node.client();
            let (port, ctx) = (node.port, spin_ctx.clone());
            std::thread::spawn(move || {
                let body = json!({"jsonrpc": "2.0", "id": 1, "method": "execute",
                    "params": {"contextId": ctx, "method": "spin", "argsJson": {}}});
                let _ = c
                    .post(format!("http://127.0.0.1:{port}/jsonrpc"))
                    .json(&body)
                    .send();
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let pid = node.pid();
    let before = rss_kib(pid);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let value = "x".repeat(900_000);
    let started = Instant::now();
    let (ws, sent) = rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(node.ws_url())
            .await
            .unwrap();
        let mut sent = 0;
        for i in 0..400 {
            let req = json!({"id": i, "method": "execute", "params": {"contextId": ctx,
                "method": "update_if_exists", "argsJson": {"key": format!("k{i}"), "value": value}}});
            let send = ws.send(tokio_tungstenite::tungstenite::Message::Text(
                req.to_string().into(),
            ));
            if tokio::time::timeout(Duration::from_secs(10), send)
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        (ws, sent)
    });
    let t = Instant::now();
    let (status, _) = node.request("GET", "/admin-api/health", None);
    let health = t.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "sent {sent}/400 calls in {:.1} s; health {status} in {health:?}",
        started.elapsed().as_secs_f64()
    );
    println!(
        "RSS before {} MiB, peak {} MiB (+{} MiB), now {} MiB",
        before / 1024,
        peak / 1024,
        peak.saturating_sub(before) / 1024,
        rss_kib(pid) / 1024
    );
    drop(ws);
    for s in spinners {
        let _ = s.join();
    }
}
