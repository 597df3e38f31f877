//! Replication benchmark on real release nodes on 127.0.0.1:
//! - latency from a `set` on node1 to the value readable on node2
//!   (median and p99 over 200 trials);
//! - time for a new member to join and catch up on a context of 10,000 and
//!   100,000 keys;
//! - sustained writes on node1 while node2 and node3 follow: calls/s, how far
//!   behind the followers stay, and how long they take to settle after.
//!
//! `cargo build --release -p merod -p meroctl && cargo build --release -p mero-e2e
//!  --bin mero-repl-bench && target/release/mero-repl-bench [--quick]`
//! (`--bin` applies to every package of one cargo invocation, hence two).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool fails fast"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mero_testkit::node::{
    FAST_SYNC, TestNode, assert_converged_within, blocking_client, rpc, token_for,
};
use mero_testkit::poll::poll_every;
use serde_json::{Value, json};

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3
}

/// Writes `n` keys with `clients` concurrent clients; returns calls/s.
fn fill(port: u16, ctx: &str, n: usize, clients: usize, prefix: &str) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (next, ctx, prefix) = (next.clone(), ctx.to_string(), prefix.to_string());
            std::thread::spawn(move || {
                let c = blocking_client();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        break;
                    }
                    rpc(
                        &c,
                        port,
                        &ctx,
                        "set",
                        json!({"key": format!("{prefix}{i}"), "value": "v"}),
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn delta_count(c: &reqwest::blocking::Client, port: u16, ctx: &str) -> u64 {
    let mut req = c.get(format!("http://127.0.0.1:{port}/admin-api/contexts/{ctx}"));
    // Without the node's token the answer is a 401, read as 0: every lag
    // then looked like none.
    let token = token_for(port);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let v: Value = req.send().unwrap().json().unwrap();
    v["data"]["deltaCount"].as_u64().unwrap_or(0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let c = blocking_client();

    // 1. Replication latency.
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    let trials = if quick { 50 } else { 200 };
    let mut lat = Vec::new();
    for i in 0..trials {
        let key = format!("lat{i}");
        let t = Instant::now();
        rpc(&c, n1.port, &ctx, "set", json!({"key": key, "value": "x"}));
        let replicated = poll_every(Duration::from_micros(200), Duration::from_secs(30), || {
            (rpc(&c, n2.port, &ctx, "get", json!({"key": key})) == json!("x")).then(|| t.elapsed())
        });
        lat.push(replicated.expect("never replicated"));
    }
    println!(
        "replication latency set@node1 -> readable@node2: p50 {:.2} ms  p99 {:.2} ms  (n={trials})",
        pct(lat.clone(), 0.5),
        pct(lat, 0.99)
    );
    drop((n1, n2));

    // 2. Join and catch up.
    for keys in if quick {
        vec![10_000]
    } else {
        vec![10_000, 100_000]
    } {
        let n1 = TestNode::start_with("node1", FAST_SYNC);
        let n2 = TestNode::start_with("node2", FAST_SYNC);
        let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
        let rate = fill(n1.port, &ctx, keys, 32, "k");
        let inv = n1.invite(&ns, &[]);
        let t = Instant::now();
        n2.join(&ns, &inv, &ctx);
        let joined = t.elapsed();
        assert_converged_within(&[&n1, &n2], &ctx, Duration::from_secs(600));
        let converged = t.elapsed();
        let len = rpc(&c, n2.port, &ctx, "len", json!({}));
        assert_eq!(len, json!(keys));
        // Whether node2 proved node1's snapshot from its signed deltas
        // (carried, or fetched apart when over 6 MiB), and what fetching
        // and proving them took, as node2 logged it.
        let log = n2.log();
        let proven = log.contains("proved the snapshot's entries");
        let took = |what: &str| {
            logged_ms(&log, what).map_or_else(|| "-".to_string(), |ms| format!("{ms} ms"))
        };
        println!(
            "join + catch up on {keys} keys: join-context returned in {:.2} s, equal roots after {:.2} s (filled at {rate:.0} sets/s; snapshot proven: {proven}; deltas fetched apart in {}, proved in {})",
            joined.as_secs_f64(),
            converged.as_secs_f64(),
            took("left out for its size"),
            took("proved the snapshot's entries"),
        );
    }

    // 3. Sustained writes with two followers.
    let n1 = TestNode::start_with("node1", FAST_SYNC);
    let n2 = TestNode::start_with("node2", FAST_SYNC);
    let n3 = TestNode::start_with("node3", FAST_SYNC);
    let (_, ns, ctx) = n1.setup(mero_fixtures::KV_STORE);
    // An invitation admits one key: one each.
    n2.join(&ns, &n1.invite(&ns, &[]), &ctx);
    n3.join(&ns, &n1.invite(&ns, &[]), &ctx);
    let secs = if quick { 5 } else { 15 };
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (done, ctx, ports) = (done.clone(), ctx.clone(), [n1.port, n2.port, n3.port]);
        std::thread::spawn(move || {
            let c = blocking_client();
            let mut lag = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let lead = delta_count(&c, ports[0], &ctx);
                for p in &ports[1..] {
                    lag.push(lead.saturating_sub(delta_count(&c, *p, &ctx)));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            lag
        })
    };
    let n = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let t = Instant::now();
    let writers: Vec<_> = (0..32)
        .map(|w| {
            let (n, ctx, port) = (n.clone(), ctx.clone(), n1.port);
            std::thread::spawn(move || {
                let c = blocking_client();
                let mut i = 0;
                while Instant::now() < until {
                    rpc(
                        &c,
                        port,
                        &ctx,
                        "set",
                        json!({"key": format!("s{w}-{i}"), "value": "v"}),
                    );
                    n.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for h in writers {
        h.join().unwrap();
    }
    let rate = n.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let settle = Instant::now();
    assert_converged_within(&[&n1, &n2, &n3], &ctx, Duration::from_secs(600));
    let settled = settle.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut lag = sampler.join().unwrap();
    lag.sort_unstable();
    println!(
        "sustained writes on node1 with 2 followers: {rate:.0} sets/s for {secs} s; follower lag p50 {} / max {} deltas; settled {:.2} s after the load stopped",
        lag[lag.len() / 2],
        lag[lag.len() - 1],
        settled.as_secs_f64()
    );
}

/// The `elapsed_ms` a node logged on its line containing `what`.
fn logged_ms(log: &str, what: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(what))?;
    let at = line.find("elapsed_ms=")? + "elapsed_ms=".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}
