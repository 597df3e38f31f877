//! Executor benchmark: calls end to end through the executor (execute, sign,
//! group commit, answer), one client and 32, and flat in the size of the
//! state; prints medians and p99s.
//!
//! `cargo bench -p mero-executor --bench executor` (add `-- quick` for fewer
//! iterations). Figures depend on the machine and its load; compare ratios.
//! One call on wasmtime alone is `cargo bench -p mero-runtime --bench runtime`.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a benchmark fails fast")]

use ed25519_dalek::SigningKey;
use mero_testkit::bench::{self, time};
use mero_testkit::engine::{Host, Limits, prefill_key};

fn main() {
    let setup = bench::setup();
    let (quick, iters, bytes) = (setup.quick, setup.iters, &setup.bytes);
    setup.rt.block_on(async {
        let n = Host::temp(Limits::Defaults).spawn(SigningKey::from_bytes(&[1; 32]));
        let blob = n.install_bytes(bytes, "bench").await;
        let ctx = n.create(blob, 1, "").await.unwrap();
        n.exec
            .call(&ctx, "set", r#"{"key":"a","value":"b"}"#.into())
            .await
            .unwrap();

        // End to end through the executor, one client.
        time(iters / 2, |i| {
            let exec = n.exec.clone();
            async move {
                exec.call(&ctx, "set", format!(r#"{{"key":"e{i}","value":"v"}}"#))
                    .await
                    .unwrap();
            }
        })
        .await
        .line("executor set (one client): execute + sign + commit");
        time(iters, |_| {
            let exec = n.exec.clone();
            async move {
                exec.call(&ctx, "get", r#"{"key":"a"}"#.into())
                    .await
                    .unwrap();
            }
        })
        .await
        .line("executor get (view on a snapshot)");

        // 32 concurrent clients: throughput with group commit.
        let calls = if quick { 2000 } else { 10_000 };
        let t = std::time::Instant::now();
        let c0 = n.commits();
        let mut tasks = Vec::new();
        for c in 0..32 {
            let exec = n.exec.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..calls / 32 {
                    exec.call(&ctx, "set", format!(r#"{{"key":"c{c}-{i}","value":"v"}}"#))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let el = t.elapsed();
        let commits = n.commits() - c0;
        println!(
            "{:<58} {:>9.0} calls/s   ({} calls in {} commits)\n",
            "executor set, 32 concurrent clients",
            (calls / 32 * 32) as f64 / el.as_secs_f64(),
            calls / 32 * 32,
            commits
        );

        // Flat in the size of the state.
        for (i, keys) in [100usize, 10_000, 100_000].into_iter().enumerate() {
            let ctx = n.create(blob, 10 + i as u8, "").await.unwrap();
            n.prefill(ctx, "items", keys, |i| format!("\"v{i}\"")).await;
            let probe = prefill_key(keys / 2);
            time(iters / 2, |j| {
                let exec = n.exec.clone();
                async move {
                    exec.call(&ctx, "set", format!(r#"{{"key":"new-{j}","value":"v"}}"#))
                        .await
                        .unwrap();
                }
            })
            .await
            .line(&format!("executor set with {keys:>6} keys in the context"));
            time(iters, |_| {
                let exec = n.exec.clone();
                let probe = probe.clone();
                async move {
                    let out = exec
                        .call(&ctx, "get", format!(r#"{{"key":"{probe}"}}"#))
                        .await
                        .unwrap();
                    assert!(out.output.is_string());
                }
            })
            .await
            .line(&format!("executor get with {keys:>6} keys in the context"));
        }
    });
}
