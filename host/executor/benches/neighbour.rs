//! Neighbour benchmark: the latency of a kv-store `set` on one context
//! while another context's method loops to its deadline over and over,
//! beside the same `set`s with nothing else running. The spinner's first
//! call moves it to a lane of its own (see the executor's `lane` module);
//! the figures are taken after it, while its later calls spin.
//!
//! `cargo bench -p mero-executor --bench neighbour` (`-- quick` for fewer
//! calls). Prints the median, p99 and slowest `set` of each run. Figures
//! depend on the machine and its load; compare the two rows.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a benchmark fails fast")]

use std::time::{Duration, Instant};

use mero_testkit::bench;
use mero_testkit::engine::engine;
use serde_json::json;

fn figures(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), ms[ms.len() - 1])
}

fn main() {
    let setup = bench::setup();
    let n = if setup.quick { 100 } else { 500 };
    setup.rt.block_on(async {
        let e = engine(21);
        let kv = e.install(mero_fixtures::KV_STORE).await;
        let misbehave = e.install(mero_fixtures::MISBEHAVE).await;
        let other = e.create(kv, 1, "").await.unwrap();
        let spinner = e.create(misbehave, 2, "").await.unwrap();
        let sets = |label: &'static str| {
            let e = &e;
            async move {
                let mut ms = Vec::with_capacity(n);
                for i in 0..n {
                    let t = Instant::now();
                    e.ok(&other, "set", json!({"key": format!("k{i}"), "value": "v"}))
                        .await;
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                    // A client's pace, not a flood: each call waits for a
                    // batch of its own.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let (p50, p99, max) = figures(ms);
                println!(
                    "{label:<34} {n} sets: median {p50:.2} ms, p99 {p99:.2} ms, slowest {max:.2} ms"
                );
            }
        };
        sets("alone").await;
        // Its first long call moves the spinner to a lane of its own.
        let _ = e.call(&spinner, "spin", json!({})).await;
        let spinning = async {
            loop {
                let _ = e.call(&spinner, "spin", json!({})).await;
            }
        };
        tokio::select! {
            () = sets("beside a context spinning to 3 s") => {}
            () = spinning => {}
        }
    });
}
