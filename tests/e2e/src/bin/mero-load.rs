//! Load generator for a node's JSON-RPC: N keep-alive clients call a
//! kv-store method as fast as they can for a while, then it prints calls/s
//! and latency percentiles.
//!
//! `mero-load --url http://127.0.0.1:2528 --token <TOKEN> --context <ID> --method set --clients 32 --seconds 10`
//! (the token defaults to `$MERO_TOKEN`; a node's root credential is in
//! `<node>/credential.json`)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark tool fails fast"
)]

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

struct Args {
    url: String,
    /// Bearer token (`--token`, else `$MERO_TOKEN`).
    token: String,
    context: String,
    method: String,
    clients: usize,
    seconds: u64,
}

fn args() -> Args {
    let mut a = Args {
        url: "http://127.0.0.1:2528".into(),
        token: std::env::var("MERO_TOKEN").unwrap_or_default(),
        context: String::new(),
        method: "set".into(),
        clients: 1,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = v,
            "--token" => a.token = v,
            "--context" => a.context = v,
            "--method" => a.method = v,
            "--clients" => a.clients = v.parse().unwrap(),
            "--seconds" => a.seconds = v.parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        a.method == "health" || !a.context.is_empty(),
        "--context is required"
    );
    a
}

async fn client(id: usize, a: &Args, until: Instant) -> Vec<Duration> {
    let authority = a
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut lat = Vec::new();
    let mut i = 0u64;
    while Instant::now() < until {
        let args = match a.method.as_str() {
            "set" => format!(r#"{{"key":"c{id}-{i}","value":"v{i}"}}"#),
            _ => format!(r#"{{"key":"warm-{}"}}"#, i % 100),
        };
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"execute","params":{{"contextId":"{}","method":"{}","argsJson":{args}}}}}"#,
            a.context, a.method
        );
        // `health` measures the HTTP floor: the same client and server, no call.
        let req = if a.method == "health" {
            hyper::Request::get("/admin-api/health")
                .header("host", &authority)
                .body(Full::new(Bytes::new()))
                .unwrap()
        } else {
            hyper::Request::post("/jsonrpc")
                .header("host", &authority)
                .header("authorization", format!("Bearer {}", a.token))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        };
        let t = Instant::now();
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        lat.push(t.elapsed());
        assert!(
            a.method == "nosuch" || !bytes.windows(8).any(|w| w == b"\"error\":"),
            "call failed: {}",
            String::from_utf8_lossy(&bytes)
        );
        i += 1;
    }
    lat
}

fn main() {
    let a = args();
    // One thread: the load generator shares the machine with the node, and
    // cross-thread wake-ups would be charged to every round trip.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let until = start + Duration::from_secs(a.seconds);
        let a = std::sync::Arc::new(a);
        let tasks: Vec<_> = (0..a.clients)
            .map(|id| {
                let a = a.clone();
                tokio::spawn(async move { client(id, &a, until).await })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = start.elapsed().as_secs_f64();
        all.sort();
        let pct = |p: f64| all[((all.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
        println!(
            "{:<4} clients={:<3} calls={:<7} {:>9.0} calls/s   p50 {:>7.3} ms   p99 {:>7.3} ms",
            a.method,
            a.clients,
            all.len(),
            all.len() as f64 / elapsed,
            pct(0.5),
            pct(0.99)
        );
    });
}
