//! Shared by the runtime's and the executor's benchmarks (the executor's
//! includes this file by path, so their figures are timed and printed
//! alike): p50/p99 timing, and a store holding the kv-store component next
//! to a runtime that has loaded it.

#![allow(dead_code, reason = "each benchmark uses a part")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mero_runtime::{Runtime, RuntimeConfig};
use mero_store::{ApplicationRecord, Store, StoreConfig};
use sha2::{Digest, Sha256};

pub(crate) struct Stats(pub(crate) Vec<Duration>);

impl Stats {
    fn pct(&mut self, p: f64) -> Duration {
        self.0.sort();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }
    pub(crate) fn line(mut self, name: &str) {
        let (p50, p99) = (self.pct(0.5), self.pct(0.99));
        println!(
            "{name:<58} p50 {:>9.1} µs   p99 {:>9.1} µs   (n={})",
            us(p50),
            us(p99),
            self.0.len()
        );
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(crate) async fn time<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed());
    }
    Stats(v)
}

/// What both benchmarks start from: their settings (`quick` as an argument
/// asks for fewer iterations), a tokio runtime with two workers, and the
/// kv-store component.
pub(crate) struct Setup {
    pub(crate) quick: bool,
    pub(crate) iters: usize,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) bytes: Vec<u8>,
}

pub(crate) fn setup() -> Setup {
    let quick = std::env::args().any(|a| a == "quick");
    Setup {
        quick,
        iters: if quick { 300 } else { 3000 },
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        bytes: std::fs::read(mero_fixtures::KV_STORE).unwrap(),
    }
}

pub(crate) fn config(dir: &std::path::Path) -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(dir.join("compiled")),
        ..RuntimeConfig::default()
    }
}

/// A store in a temp dir with a component stored in it (blob and
/// application record), and a runtime that has loaded it.
pub(crate) struct Installed {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) blob: [u8; 32],
}

pub(crate) async fn install(bytes: &[u8]) -> Installed {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), &StoreConfig::default()).unwrap();
    let runtime = Runtime::new(config(dir.path())).unwrap();
    let blob: [u8; 32] = Sha256::digest(bytes).into();
    runtime.load(bytes).await.unwrap();
    let mut w = store.write().unwrap();
    w.put_blob(&blob, bytes).unwrap();
    w.put_application(&ApplicationRecord {
        id: blob,
        blob,
        size: bytes.len() as u64,
        source: "bench".into(),
        metadata: vec![],
        package: "kv-store".into(),
        version: "1".into(),
        state_version: 1,
        installed_at_millis: 0,
    })
    .unwrap();
    w.commit().unwrap();
    Installed {
        dir,
        store,
        runtime,
        blob,
    }
}
