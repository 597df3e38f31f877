//! Upgrade benchmark: moving a context of 10,000 and 100,000 entries to the
//! next version of its app through the executor (migrate, check, commit),
//! with the peak RSS the upgrade adds.
//!
//! - `reshuffle`: scenario-invariant-reshuffle v1 -> v2, a migration that
//!   reads every entry, rewrites it under a new collection and drops the
//!   old one, and a check of count parity between the two.
//! - `check-pass`: scenario-migration-check-pass v1 -> v2, a migration that
//!   adds a field, and the same kind of check.
//!
//! Each run is a process of its own (the binary runs itself with `--one`),
//! so that no run reuses memory an earlier one freed: it fills a context,
//! writes it to LMDB, runs a dry run (migrate and check, nothing committed)
//! and then the upgrade, and reports the upgrade's time (until it is
//! durable), its parts from the executor's counters, and the peak RSS
//! growth over the upgrade and the flush of its writes to LMDB that
//! follows. The figures printed are medians over the runs, with the
//! slowest and fastest run.
//!
//! `cargo bench -p mero-executor --bench upgrade` (add `-- quick` for 10,000
//! entries only; `MERO_BENCH_RUNS=n` for n runs each, default 5). Figures
//! depend on the machine and its load; compare ratios.

#![allow(clippy::unwrap_used, clippy::panic, reason = "a benchmark fails fast")]

use std::sync::atomic::Ordering;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use mero_crdt::{Author, Hlc};
use mero_executor::{ExecStats, Upgrade};
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

/// CPU time this process has used (all threads), in ms: on a machine
/// others load too, a steadier measure of the work than the wall clock.
fn cpu_ms() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` fills the struct it is given.
    #[allow(unsafe_code, reason = "one libc call")]
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// Resets the peak-RSS mark to the current RSS (Linux).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Hands memory the heap holds but does not use back to the system, so
/// that the upgrade's growth is not hidden by what filling the context
/// left free.
fn trim_heap() {
    // SAFETY: `malloc_trim` only releases free memory of glibc's heap.
    #[allow(unsafe_code, reason = "one glibc call, for a fair baseline")]
    unsafe {
        libc::malloc_trim(0);
    }
}

struct Case {
    name: &'static str,
    key: &'static str,
    v1: &'static [u8],
    v2: &'static [u8],
    field: &'static str,
    value: fn(usize) -> String,
}

const CASES: [Case; 2] = [
    Case {
        name: "reshuffle (rewrites every entry)",
        key: "reshuffle",
        v1: mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V1_BYTES,
        v2: mero_fixtures::SCENARIO_INVARIANT_RESHUFFLE_V2_BYTES,
        field: "per_item_counts",
        value: |i| (i % 7 + 1).to_string(),
    },
    Case {
        name: "check-pass (adds a field)",
        key: "check-pass",
        v1: mero_fixtures::SCENARIO_MIGRATION_CHECK_PASS_V1_BYTES,
        v2: mero_fixtures::SCENARIO_MIGRATION_CHECK_PASS_V2_BYTES,
        field: "items",
        value: |i| format!("\"v{i}\""),
    },
];

/// One run's figures, in ms and MiB.
#[derive(Clone, Copy, Default)]
struct Run {
    upgrade: f64,
    cpu: f64,
    dry_run: f64,
    migrate: f64,
    check: f64,
    store: f64,
    durable: f64,
    peak: f64,
    writes: f64,
}

const FIELDS: usize = 9;

impl Run {
    fn to_line(self) -> String {
        let v = [
            self.upgrade,
            self.cpu,
            self.dry_run,
            self.migrate,
            self.check,
            self.store,
            self.durable,
            self.peak,
            self.writes,
        ];
        let v: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
        format!("RUN {}", v.join(" "))
    }

    fn from_line(line: &str) -> Option<Run> {
        let v: Vec<f64> = line
            .strip_prefix("RUN ")?
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [
            upgrade,
            cpu,
            dry_run,
            migrate,
            check,
            store,
            durable,
            peak,
            writes,
        ] = <[f64; FIELDS]>::try_from(v).ok()?;
        Some(Run {
            upgrade,
            cpu,
            dry_run,
            migrate,
            check,
            store,
            durable,
            peak,
            writes,
        })
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let case = CASES.iter().find(|c| c.key == args[i + 1]).unwrap();
        let n = args[i + 2].parse().unwrap();
        println!("{}", one(case, n).to_line());
        return;
    }
    let quick = args.iter().any(|a| a == "quick");
    let runs: usize = std::env::var("MERO_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let sizes: &[usize] = if quick { &[10_000] } else { &[10_000, 100_000] };
    let exe = std::env::current_exe().unwrap();
    println!("median of {runs} runs, each in a process of its own [fastest .. slowest]");
    for case in &CASES {
        for &n in sizes {
            let all: Vec<Run> = (0..runs)
                .map(|_| {
                    let out = std::process::Command::new(&exe)
                        .args(["--one", case.key, &n.to_string()])
                        .output()
                        .unwrap();
                    let text = String::from_utf8_lossy(&out.stdout);
                    text.lines().find_map(Run::from_line).unwrap_or_else(|| {
                        panic!(
                            "run failed: {}{}",
                            text,
                            String::from_utf8_lossy(&out.stderr)
                        )
                    })
                })
                .collect();
            report(case.name, n, &all);
        }
    }
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let mid = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    (mid, v[0], v[v.len() - 1])
}

fn report(name: &str, n: usize, runs: &[Run]) {
    let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    let (upgrade, fast, slow) = m(|r| r.upgrade);
    let (dry, dry_fast, dry_slow) = m(|r| r.dry_run);
    let (peak, peak_lo, peak_hi) = m(|r| r.peak);
    println!(
        "{name:<34} {n:>7} entries  upgrade {upgrade:>6.0} ms [{fast:.0} .. {slow:.0}]  \
         dry run {dry:>6.0} ms [{dry_fast:.0} .. {dry_slow:.0}]  \
         peak RSS +{peak:.0} MiB [{peak_lo:.0} .. {peak_hi:.0}]  {:.0} writes",
        m(|r| r.writes).0
    );
    println!(
        "{:<34} {:>7}          CPU {:.0} ms; migrate {:.0} ms, check {:.1} ms, store {:.0} ms, durable write {:.0} ms",
        "",
        "",
        m(|r| r.cpu).0,
        m(|r| r.migrate).0,
        m(|r| r.check).0,
        m(|r| r.store).0,
        m(|r| r.durable).0,
    );
}

fn nanos(n: &std::sync::atomic::AtomicU64) -> f64 {
    n.load(Ordering::Relaxed) as f64 / 1e6
}

/// One run of `case` over `n` entries.
fn one(case: &Case, n: usize) -> Run {
    let setup = bench::setup();
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
        let v1 = e.install_bytes(case.v1, "v1").await;
        e.install_bytes(case.v2, "v2").await;
        let v2 = migrations.load(case.v2).await.unwrap();
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
            cut: None,
        };
        let ctx = e.create(v1, 11, "").await.unwrap();
        e.prefill(ctx, case.field, n, case.value).await;
        // A state at rest: in LMDB, as after any flush.
        e.store.flush().unwrap();

        let t = Instant::now();
        e.exec.upgrade(&ctx, upgrade(true)).await.unwrap();
        let dry_run = t.elapsed().as_secs_f64() * 1e3;

        let stats: &ExecStats = e.exec.stats();
        let before = |n: &std::sync::atomic::AtomicU64| nanos(n);
        let (m0, c0, s0, w0) = (
            before(&stats.migrate_nanos),
            before(&stats.check_nanos),
            before(&stats.migration_store_nanos),
            before(&stats.write_nanos),
        );
        trim_heap();
        let (rss_before, _) = rss();
        reset_peak();
        let t = Instant::now();
        let cpu = cpu_ms();
        let done = e.exec.upgrade(&ctx, upgrade(false)).await.unwrap();
        let took = t.elapsed().as_secs_f64() * 1e3;
        let cpu = cpu_ms() - cpu;
        // Until LMDB holds the writes, the store holds them in memory too.
        e.store.flush().unwrap();
        let (_, peak) = rss();
        Run {
            upgrade: took,
            cpu,
            dry_run,
            migrate: nanos(&stats.migrate_nanos) - m0,
            check: nanos(&stats.check_nanos) - c0,
            store: nanos(&stats.migration_store_nanos) - s0,
            durable: nanos(&stats.write_nanos) - w0,
            peak: (peak - rss_before).max(0.0),
            writes: done.writes as f64,
        }
    })
}
