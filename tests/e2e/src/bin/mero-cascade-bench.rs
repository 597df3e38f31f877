//! Cascade benchmark on real release nodes on 127.0.0.1 (#20's goal: under
//! 10 s): a namespace with 10 open subgroups, 100 contexts of
//! migration-suite 1.0.0 holding 1,000 entries each, held by 3 nodes; one
//! cascade to 2.0.0 ordered on node1, timed from the trigger until each
//! node's `migration-status` reports every member migrated. Also prints
//! the HTTP floor (a health check) measured in the same run.
//!
//! `cargo build --release -p merod -p meroctl && cargo build --release -p mero-e2e
//!  --bin mero-cascade-bench && target/release/mero-cascade-bench [--quick]`
//! (`--quick`: 2 subgroups, 10 contexts of 100 entries, for a smoke run).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool fails fast"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mero_testkit::node::{FAST_SYNC, TestNode, assert_converged_within, blocking_client, rpc};
use mero_testkit::poll::poll_every;
use serde_json::{Value, json};

/// Writes `entries` items into each of `contexts` with `clients` threads;
/// returns calls/s.
fn fill(port: u16, contexts: &[String], entries: usize, clients: usize) -> f64 {
    let jobs: Arc<Vec<(String, usize)>> = Arc::new(
        contexts
            .iter()
            .flat_map(|c| (0..entries).map(move |i| (c.clone(), i)))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (jobs, next) = (jobs.clone(), next.clone());
            std::thread::spawn(move || {
                let c = blocking_client();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((ctx, n)) = jobs.get(i) else { break };
                    rpc(
                        &c,
                        port,
                        ctx,
                        "set_item",
                        json!({"key": format!("k{n:05}"), "value": "v"}),
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    jobs.len() as f64 / t.elapsed().as_secs_f64()
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (groups, per_group, entries) = if quick { (2, 5, 100) } else { (10, 10, 1000) };
    // `--entries N`: another size per context (the other figures stay).
    let entries = std::env::args()
        .skip_while(|a| a != "--entries")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(entries);
    let config: Vec<&str> = [FAST_SYNC, &["migration.heartbeat_ms=500"][..]].concat();
    let nodes: Vec<TestNode> = (1..=3)
        .map(|i| TestNode::start_with(&format!("node{i}"), &config))
        .collect();
    let n1 = &nodes[0];
    let (app, ns, _) = n1.setup(mero_fixtures::MIGRATION_SUITE_V1);
    let mut contexts = Vec::new();
    for g in 0..groups {
        let group = n1.meroctl_json(&[
            "namespace",
            "create-group",
            &ns,
            "--name",
            &format!("g{g}"),
        ])["groupId"]
            .as_str()
            .unwrap()
            .to_string();
        for _ in 0..per_group {
            contexts.push(
                n1.meroctl_json(&["context", "create", "-a", &app, "--group-id", &group])
                    ["contextId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    println!(
        "setup: {} groups, {} contexts of {entries} entries, 3 nodes",
        groups + 1,
        contexts.len()
    );
    let rate = fill(n1.port, &contexts, entries, 8);
    println!("fill: {rate:.0} set_item calls/s on node1");
    for n in &nodes[1..] {
        let first = contexts[0].clone();
        n.join(&ns, &n1.invite(&ns, &[]), &first);
    }
    let t = Instant::now();
    for c in &contexts {
        let refs: Vec<&TestNode> = nodes.iter().collect();
        assert_converged_within(&refs, c, Duration::from_secs(600));
    }
    println!(
        "followers caught up on every context in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The HTTP floor, in this run.
    let c = blocking_client();
    let floor: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            c.get(n1.url("/admin-api/health")).send().unwrap();
            t.elapsed()
        })
        .collect();
    println!("HTTP floor (GET health): median {:.3} ms", median_ms(floor));

    let v2 = n1.meroctl_json(&[
        "app",
        "install",
        "--path",
        mero_fixtures::MIGRATION_SUITE_V2_ADD_FIELD,
    ])["applicationId"]
        .as_str()
        .unwrap()
        .to_string();
    let all_migrated = |n: &TestNode| {
        let (code, v) = n.request(
            "GET",
            &format!("/admin-api/groups/{ns}/migration-status"),
            None,
        );
        code == 200 && v["rollup"]["allMigrated"] == Value::Bool(true) && v["targetVersion"] == 2
    };
    let started = Instant::now();
    n1.meroctl_json(&[
        "group",
        "upgrade",
        "trigger",
        &ns,
        "--target-application-id",
        &v2,
        "--cascade",
    ]);
    let mut done: Vec<Option<Duration>> = vec![None; nodes.len()];
    let reached = poll_every(Duration::from_millis(20), Duration::from_secs(600), || {
        for (i, n) in nodes.iter().enumerate() {
            if done[i].is_none() && all_migrated(n) {
                done[i] = Some(started.elapsed());
            }
        }
        done.iter().all(Option::is_some).then_some(())
    });
    if reached.is_none() {
        // What each node says, and what it warned of, to tell why.
        for n in &nodes {
            for route in ["migration-status", "cascade-status"] {
                let (_, v) = n.request("GET", &format!("/admin-api/groups/{ns}/{route}"), None);
                println!("{} {route}: {v}", n.name);
            }
            for line in n.log().lines().filter(|l| !l.contains(" INFO ")).take(40) {
                println!("{} log: {line}", n.name);
            }
        }
        panic!("the cascade did not reach allMigrated on every node in 10 minutes");
    }
    for (i, d) in done.iter().enumerate() {
        println!(
            "node{}: allMigrated {:.2} s after the trigger",
            i + 1,
            d.unwrap_or_default().as_secs_f64()
        );
    }
    let slowest = done.iter().flatten().max().copied().unwrap_or_default();
    println!(
        "cascade over {} contexts x {entries} entries on 3 nodes: {:.2} s to allMigrated everywhere",
        contexts.len(),
        slowest.as_secs_f64()
    );
    let refs: Vec<&TestNode> = nodes.iter().collect();
    for c in &contexts {
        assert_converged_within(&refs, c, Duration::from_secs(120));
    }
    println!("every context converged on one migrated root");
}
