//! The review's big writes (#19 item 6, security review §3.2): 30 clients
//! at once each call the misbehave app's `big_value(9000000)`, which
//! stores a 9 MB value it makes itself, on one context of a real node,
//! over JSON-RPC. Run twice: on a node alone, and on a node with a second
//! member beside it (to which each delta is announced, then served).
//! Prints how many were answered and how long they took, how long the
//! member took to converge, the writer's RSS before, at its peak (`VmHWM`)
//! and right after, its heap (`RssAnon`, sampled) at its peak, right after
//! and two seconds after convergence, and the member's peaks. The
//! executor's byte cap per batch (32 MiB of arguments and merged values)
//! keeps the writer's peak down; the goal is under 500 MB.
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

use std::time::{Duration, Instant};

use mero_testkit::node::{TestNode, assert_converged_within};
use mero_testkit::proc::{Peak, status_kib};
use serde_json::json;

/// Clients writing at once, unless the first argument says otherwise.
const CLIENTS: usize = 30;
const VALUE_BYTES: usize = 9_000_000;

fn main() {
    let clients: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(CLIENTS);
    for with_member in [false, true] {
        run(clients, with_member);
    }
}

fn run(clients: usize, with_member: bool) {
    let node = TestNode::start("node1");
    let (_, ns, ctx) = node.setup(mero_fixtures::MISBEHAVE);
    let member = with_member.then(|| {
        let n2 = TestNode::start("node2");
        n2.join(&ns, &node.invite(&ns, &[]), &ctx);
        n2
    });
    let pid = node.pid();
    let (before, anon_before) = (status_kib(pid, "VmRSS:"), status_kib(pid, "RssAnon:"));
    // The heap's peak, apart from file pages mapped (LMDB's, the log's),
    // which the kernel takes back under pressure.
    let heap = Peak::watch(pid, "RssAnon:");
    let member_heap = member.as_ref().map(|m| Peak::watch(m.pid(), "RssAnon:"));
    let started = Instant::now();
    let ok = node.calls_at_once(&ctx, "big_value", &json!({"bytes": VALUE_BYTES}), clients);
    let took = started.elapsed();
    let (after, anon_after) = (status_kib(pid, "VmRSS:"), status_kib(pid, "RssAnon:"));
    let converged = member.as_ref().map(|m| {
        assert_converged_within(&[&node, m], &ctx, Duration::from_secs(300));
        started.elapsed()
    });
    std::thread::sleep(Duration::from_secs(2));
    let anon_settled = status_kib(pid, "RssAnon:");
    let anon_peak = heap.finish();
    let peak = status_kib(pid, "VmHWM:");

    let mib = |kib: u64| kib / 1024;
    println!(
        "\n{}: {clients} x `big_value({VALUE_BYTES})`, {ok} answered without error in {:.1} s{}",
        if with_member {
            "with a member beside it"
        } else {
            "alone"
        },
        took.as_secs_f64(),
        converged.map_or(String::new(), |t| format!(
            "; the member converged {:.1} s after the first call",
            t.as_secs_f64()
        ))
    );
    println!(
        "  writer RSS: before {} MiB, peak {} MiB (+{} MiB), right after {} MiB",
        mib(before),
        mib(peak),
        mib(peak.saturating_sub(before)),
        mib(after)
    );
    println!(
        "  writer heap (RssAnon): before {} MiB, peak {} MiB, right after {} MiB, settled {} MiB",
        mib(anon_before),
        mib(anon_peak),
        mib(anon_after),
        mib(anon_settled)
    );
    if let (Some(m), Some(h)) = (&member, member_heap) {
        let heap_peak = h.finish();
        println!(
            "  member: RSS peak {} MiB, heap peak {} MiB",
            mib(status_kib(m.pid(), "VmHWM:")),
            mib(heap_peak)
        );
    }
}
