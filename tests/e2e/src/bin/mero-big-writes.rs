//! The review's big writes (#19 item 6, security review §3.2): 30 clients
//! at once each call the misbehave app's `big_value(9000000)`, which
//! stores a 9 MB value it makes itself, on one context of a real node,
//! over JSON-RPC. Prints how many were answered and how long they took,
//! and the node's RSS before, at its peak (`VmHWM`) and after. The
//! executor's byte cap per batch (32 MiB of arguments and merged values)
//! is what keeps the peak down; the goal is under 500 MB.
//!
//! `cargo run --release -p mero-e2e --bin mero-big-writes [CLIENTS]` (after
//! `cargo build --release -p merod -p meroctl`; drop `--release` for a dev
//! build's figure)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool fails fast"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mero_testkit::node::TestNode;
use mero_testkit::proc::status_kib;
use serde_json::json;

/// Clients writing at once, unless the first argument says otherwise.
const CLIENTS: usize = 30;
const VALUE_BYTES: usize = 9_000_000;

fn main() {
    let clients: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(CLIENTS);
    let node = TestNode::start("node1");
    let (_, _, ctx) = node.setup(mero_fixtures::MISBEHAVE);
    let pid = node.pid();
    let (before, peak_before) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
    let url = format!("http://127.0.0.1:{}/jsonrpc", node.port);
    // The heap's peak, apart from file pages mapped (LMDB's, the log's),
    // which the kernel takes back under pressure: sampled, as /proc keeps
    // a peak of the total only.
    let done = Arc::new(AtomicBool::new(false));
    let anon_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, anon_peak) = (done.clone(), anon_peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                anon_peak.fetch_max(status_kib(pid, "RssAnon:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let anon_before = status_kib(pid, "RssAnon:");
    let started = Instant::now();
    let writers: Vec<_> = (0..clients)
        .map(|i| {
            let body = json!({"jsonrpc": "2.0", "id": i, "method": "execute",
                "params": {"contextId": ctx, "method": "big_value",
                    "argsJson": {"bytes": VALUE_BYTES}}})
            .to_string();
            let (client, url) = (node.client(), url.clone());
            std::thread::spawn(move || {
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .ok()?;
                let v: serde_json::Value = resp.json().ok()?;
                v.get("error").is_none().then_some(())
            })
        })
        .collect();
    let ok = writers
        .into_iter()
        .map(std::thread::JoinHandle::join)
        .filter(|answer| matches!(answer, Ok(Some(()))))
        .count();
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (peak, after) = (status_kib(pid, "VmHWM:"), status_kib(pid, "VmRSS:"));
    let (anon_peak, anon_after) = (
        anon_peak.load(Ordering::Relaxed),
        status_kib(pid, "RssAnon:"),
    );
    println!(
        "{clients} x `big_value({VALUE_BYTES})`: {ok} answered without error in {:.1} s",
        took.as_secs_f64()
    );
    println!(
        "node RSS before {} MiB (peak so far {} MiB), peak {} MiB (+{} MiB over before), after {} MiB",
        before / 1024,
        peak_before / 1024,
        peak / 1024,
        peak.saturating_sub(before) / 1024,
        after / 1024
    );
    println!(
        "of which heap (RssAnon): before {} MiB, peak {} MiB (+{} MiB), after {} MiB; file pages after {} MiB",
        anon_before / 1024,
        anon_peak / 1024,
        anon_peak.saturating_sub(anon_before) / 1024,
        anon_after / 1024,
        status_kib(pid, "RssFile:") / 1024
    );
}
