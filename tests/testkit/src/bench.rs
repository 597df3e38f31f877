//! What the benchmarks share, so that their figures are taken and printed
//! alike: their arguments (`quick` asks for fewer iterations), a tokio
//! runtime with two workers, the kv-store component, and p50/p99 timing.

use std::future::Future;
use std::time::{Duration, Instant};

/// Timings of one measured operation.
pub struct Stats(pub Vec<Duration>);

impl Stats {
    /// The `p` quantile (0.0 to 1.0), nearest rank.
    pub fn pct(&mut self, p: f64) -> Duration {
        self.0.sort();
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }

    /// Prints `name` with the p50, the p99 and the count; returns the p50.
    pub fn line(mut self, name: &str) -> Duration {
        let (p50, p99) = (self.pct(0.5), self.pct(0.99));
        println!(
            "{name:<58} p50 {:>9.1} µs   p99 {:>9.1} µs   (n={})",
            micros(p50),
            micros(p99),
            self.0.len()
        );
        p50
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Times `n` runs of `f(i)`, one after another.
pub async fn time<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await;
        v.push(t.elapsed());
    }
    Stats(v)
}

/// Times one run of a synchronous `f`.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

/// What a benchmark starts from.
pub struct Setup {
    /// `quick` was given: fewer iterations.
    pub quick: bool,
    /// Iterations of a timed operation: 300 if quick, else 3,000.
    pub iters: usize,
    /// A multi-threaded tokio runtime with two workers.
    pub rt: tokio::runtime::Runtime,
    /// The kv-store component.
    pub bytes: Vec<u8>,
}

/// Reads the arguments, builds the runtime and reads the kv-store component.
pub fn setup() -> Setup {
    let quick = std::env::args().any(|a| a == "quick");
    Setup {
        quick,
        iters: if quick { 300 } else { 3000 },
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        bytes: mero_fixtures::KV_STORE_BYTES.to_vec(),
    }
}
