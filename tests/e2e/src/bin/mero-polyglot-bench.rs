//! The Rust, Python and JS kv-stores side by side: cold compile and cached
//! load of each component (the node's runtime, in-process), and per-call
//! latency and calls/s of `set` and `get` through a real node's JSON-RPC,
//! with the HTTP floor (`/admin-api/health`) measured in the same run and
//! the node's RSS with the three apps loaded and after the calls.
//!
//! `scripts/build-polyglot-apps && cargo build --release -p merod -p meroctl
//! -p mero-e2e --bin mero-polyglot-bench && target/release/mero-polyglot-bench [quick]`
//! (it drives the `merod` built beside it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool fails fast"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mero_testkit::bench::Stats;
use mero_testkit::engine::{Host, Limits};
use mero_testkit::node::TestNode;
use serde_json::json;

/// The three components: (name, path).
fn components() -> Vec<(&'static str, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/polyglot");
    let mut out = vec![("rust", mero_fixtures::KV_STORE.to_string())];
    for lang in ["py", "js"] {
        let p = dir.join(format!("kv-store-{lang}.wasm"));
        assert!(
            p.exists(),
            "{} is missing: run scripts/build-polyglot-apps",
            p.display()
        );
        out.push((lang, p.to_string_lossy().into_owned()));
    }
    out
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `n` runs of `f`: (p50, calls/s).
fn run(n: usize, mut f: impl FnMut(usize)) -> (Duration, f64) {
    let mut v = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f(i);
        v.push(t.elapsed());
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    (Stats(v).pct(0.5), rate)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let n = if quick { 200 } else { 2000 };
    let comps = components();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Compile once, then load the cached artifact in a fresh runtime (what a
    // restarted node does).
    println!("| app | component | cold compile | cached load |");
    println!("|---|---|---|---|");
    for (name, path) in &comps {
        let bytes = std::fs::read(path).unwrap();
        let cold = Host::temp(Limits::Defaults);
        let t = Instant::now();
        rt.block_on(cold.runtime.load(&bytes)).unwrap();
        let compile = t.elapsed();
        let mut loads = Vec::new();
        for _ in 0..3 {
            let warm = Host::temp(Limits::Defaults);
            for e in std::fs::read_dir(cold.dir.join("compiled")).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), warm.dir.join("compiled").join(e.file_name())).unwrap();
            }
            let t = Instant::now();
            rt.block_on(warm.runtime.load(&bytes)).unwrap();
            loads.push(t.elapsed());
        }
        println!(
            "| {name} | {:.1} MB | {:.0} ms | {:.1} ms |",
            bytes.len() as f64 / 1e6,
            ms(compile),
            ms(Stats(loads).pct(0.5))
        );
    }

    // What compiling the three left behind in this process (the node's
    // runtime does the same on a first install).
    println!();
    println!(
        "bench process RSS after compiling and loading the three: {:.0} MiB",
        rss_mib(std::process::id())
    );

    // Through a node: one context per app, one keep-alive client.
    let node = TestNode::start("polyglot-bench");
    let idle = rss_mib(node.pid());
    let ctxs: Vec<(&str, String)> = comps
        .iter()
        .map(|(name, path)| (*name, node.setup(path).2))
        .collect();
    for (_, ctx) in &ctxs {
        node.call(ctx, "set", json!({"key": "warm", "value": "up"}));
    }
    let loaded = rss_mib(node.pid());
    let http = node.client();
    let health = node.url("/admin-api/health");
    let (floor, floor_rate) = run(n, |_| {
        assert!(http.get(&health).send().unwrap().status().is_success());
    });
    println!();
    println!(
        "HTTP floor (/admin-api/health): p50 {:.3} ms, {floor_rate:.0}/s (n={n})",
        ms(floor)
    );
    println!();
    println!("| app | `set` p50 | `set` calls/s | `get` p50 | `get` calls/s |");
    println!("|---|---|---|---|---|");
    for (name, ctx) in &ctxs {
        let (set, set_rate) = run(n, |i| {
            node.call(
                ctx,
                "set",
                json!({"key": format!("k{}", i % 100), "value": format!("v{i}")}),
            );
        });
        let (get, get_rate) = run(n, |i| {
            node.call(ctx, "get", json!({"key": format!("k{}", i % 100)}));
        });
        println!(
            "| {name} | {:.3} ms | {set_rate:.0} | {:.3} ms | {get_rate:.0} |",
            ms(set),
            ms(get)
        );
    }
    println!();
    println!(
        "node RSS: {idle:.0} MiB fresh, {loaded:.0} MiB with the three apps loaded, {:.0} MiB after the calls",
        rss_mib(node.pid())
    );
}
