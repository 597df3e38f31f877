//! Upgrade benchmark: moving a context of 10,000 and 100,000 entries to the
//! next version of its app through the executor (migrate, check, commit),
//! with the peak RSS the upgrade adds.
//!
//! - `reshuffle`: scenario-invariant-reshuffle v1 -> v2, a migration that
//!   reads every entry and rewrites it under a new collection.
//! - `check-pass`: scenario-migration-check-pass v1 -> v2, a migration that
//!   adds a field and a check of count parity between the frozen and the
//!   staged state; its dry run (migrate and check, no commit) is timed too.
//!
//! `cargo bench -p mero-executor --bench upgrade` (add `-- quick` for 10,000
//! entries only). Figures depend on the machine and its load; compare ratios.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a benchmark fails fast")]

use std::time::Instant;

use ed25519_dalek::SigningKey;
use mero_crdt::{Author, Hlc};
use mero_executor::Upgrade;
use mero_runtime::{Runtime, RuntimeConfig};
use mero_testkit::bench;
use mero_testkit::engine::{Host, Limits};

/// Resident and peak resident memory, in MiB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak-RSS mark to the current RSS (Linux).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Case {
    name: &'static str,
    v1: &'static [u8],
    v2: &'static [u8],
    field: &'static str,
    value: fn(usize) -> String,
}

fn main() {
    let setup = bench::setup();
    let sizes: &[usize] = if setup.quick {
        &[10_000]
    } else {
        &[10_000, 100_000]
    };
    let cases = [
        Case {
            name: "reshuffle (rewrites every entry)",
            v1: mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1_BYTES,
            v2: mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2_BYTES,
            field: "per_item_counts",
            value: |i| (i % 7 + 1).to_string(),
        },
        Case {
            name: "check-pass (adds a field, checks parity)",
            v1: mero_fixtures::SCENARIO_MIGRATION_CHECK_PASS_V1_BYTES,
            v2: mero_fixtures::SCENARIO_MIGRATION_CHECK_PASS_V2_BYTES,
            field: "items",
            value: |i| format!("\"v{i}\""),
        },
    ];
    setup.rt.block_on(async {
        let host = Host::temp(Limits::Defaults);
        let migrations = Runtime::new(
            RuntimeConfig {
                cache_dir: Some(host.dir.join("compiled")),
                ..RuntimeConfig::default()
            }
            .deterministic(mero_runtime::DEFAULT_MIGRATION_FUEL),
        )
        .unwrap();
        let e = host.spawn(SigningKey::from_bytes(&[1; 32]));
        let mut id = 10u8;
        for case in &cases {
            let v1 = e.install_bytes(case.v1, "v1").await;
            e.install_bytes(case.v2, "v2").await;
            let v2 = migrations.load(case.v2).await.unwrap();
            for &n in sizes {
                let upgrade = |dry_run| Upgrade {
                    application: v2.hash(),
                    app: v2.clone(),
                    runtime: migrations.clone(),
                    app_version: "2.0.0".into(),
                    migrate_from: Some(1),
                    author: Author([7; 32]),
                    barrier: Hlc {
                        millis: mero_crdt::hlc::wall_millis() + 1,
                        counter: 0,
                    },
                    dry_run,
                };
                id += 1;
                let ctx = e.create(v1, id, "").await.unwrap();
                e.prefill(ctx, case.field, n, case.value).await;
                if case.field == "items" {
                    let t = Instant::now();
                    e.exec.upgrade(&ctx, upgrade(true)).await.unwrap();
                    println!(
                        "{:<46} {:>7} entries   {:>8.0} ms",
                        format!("{}: dry run", case.name),
                        n,
                        t.elapsed().as_secs_f64() * 1e3
                    );
                }
                let (before, _) = rss();
                reset_peak();
                let t = Instant::now();
                let done = e.exec.upgrade(&ctx, upgrade(false)).await.unwrap();
                let took = t.elapsed();
                let (_, peak) = rss();
                println!(
                    "{:<46} {:>7} entries   {:>8.0} ms   {:>6} writes   peak RSS +{:.0} MiB",
                    format!("{}: upgrade", case.name),
                    n,
                    took.as_secs_f64() * 1e3,
                    done.writes,
                    (peak - before).max(0.0)
                );
            }
        }
    });
}
